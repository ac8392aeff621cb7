import json
import re
import time
from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apiclients.models import ApiClient, AuditAction, AuditEvent
from tests.apiclients.helpers import (
    AUDIT_URL,
    HTMX,
    LIST_URL,
    SECRET_RE,
    SUDO,
    delete_url,
    detail_url,
    edit_data,
    edit_url,
    reset_url,
    secret_in,
    text,
)
from tests.conftest import PASSWORD


def rotate_url(client) -> str:
    return reverse("apiclients:rotate_secret", args=[client.client_id])


def test_reset_dialog_warns_before_resetting(alice_client, make_api_client):
    client, secret = make_api_client("SIEM export")
    body = text(alice_client.get(reset_url(client), headers=HTMX))
    assert '<dialog id="reset-api-secret"' in body
    assert "Reset API secret" in body
    assert "lose authentication immediately" in body
    assert ">Reset secret</button>" in body
    client.refresh_from_db()
    assert client.check_secret(secret)  # a GET changes nothing


def test_reset_reveals_a_new_secret_for_the_same_client_id(alice_client, alice, make_api_client):
    client, old = make_api_client()
    response = alice_client.post(reset_url(client), SUDO, headers=HTMX)
    assert response.status_code == 200
    new = secret_in(response)
    body = text(response)
    assert new != old
    assert f'value="{client.client_id}" readonly' in body
    assert "This is the only time the secret is displayed." in body
    assert "no-store" in response["Cache-Control"]
    assert "apiClientsChanged" in json.loads(response["HX-Trigger"])

    client.refresh_from_db()
    assert client.check_secret(new)
    assert not client.check_secret(old)
    assert client.secret_reset_at is not None
    assert client.updated_by == alice
    assert AuditEvent.objects.filter(action=AuditAction.SECRET_RESET).count() == 1


def test_reset_without_htmx_shows_the_reveal_page(alice_client, make_api_client):
    client, old = make_api_client()
    response = alice_client.post(reset_url(client), SUDO)
    assert response.status_code == 200
    assert "<html" in text(response)
    assert secret_in(response) != old
    assert "no-store" in response["Cache-Control"]


def test_delete_dialog_warns_that_integrations_break(alice_client, make_api_client):
    client, _ = make_api_client("SIEM export")
    body = text(alice_client.get(delete_url(client), headers=HTMX))
    assert '<dialog id="delete-api-client"' in body
    assert "SIEM export" in body
    assert "Integrations and scripts that use this API client will break" in body
    assert ">Delete</button>" in body
    assert ApiClient.objects.filter(pk=client.pk).exists()


def test_delete_removes_the_client_and_keeps_its_history(alice_client, make_api_client):
    client, _ = make_api_client("SIEM export")
    response = alice_client.post(delete_url(client), SUDO, headers=HTMX)
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert events["apiClientsChanged"] == {"deleted": client.client_id}
    assert "closeDialog" in events
    assert not ApiClient.objects.filter(pk=client.pk).exists()

    assert alice_client.get(detail_url(client)).status_code == 404
    assert "SIEM export" not in text(alice_client.get(LIST_URL))
    history = text(alice_client.get(AUDIT_URL + f"?client={client.client_id}"))
    assert "Deleted" in history and "Created" in history and "SIEM export" in history


def test_delete_without_htmx_redirects_to_the_list(alice_client, make_api_client):
    client, _ = make_api_client("SIEM export")
    response = alice_client.post(delete_url(client), SUDO)
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    page = text(alice_client.get(LIST_URL))
    assert "Deleted “SIEM export”." in page


def test_htmx_posts_are_never_redirected(alice_client, make_api_client):
    client, _ = make_api_client()
    for response in (
        alice_client.post(edit_url(client), edit_data(client, name="x"), headers=HTMX),
        alice_client.post(reset_url(client), SUDO, headers=HTMX),
        alice_client.post(delete_url(client), SUDO, headers=HTMX),
    ):
        assert response.status_code in (200, 204)
        assert "Location" not in response
        assert "HX-Trigger" in response


# Sudo mode: the password again before reset, rotation and delete -----------------


def test_a_reset_asks_for_the_password_and_a_wrong_one_changes_nothing(
    alice_client, make_api_client
):
    client, secret = make_api_client()
    dialog = text(alice_client.get(reset_url(client), headers=HTMX))
    assert "Confirm with your password" in dialog
    assert 'autocomplete="current-password"' in dialog

    response = alice_client.post(reset_url(client), {"password": "nope"}, headers=HTMX)
    assert response.status_code == 200
    body = text(response)
    assert "That is not your password" in body
    assert 'aria-invalid="true"' in body
    assert not SECRET_RE.search(body)
    client.refresh_from_db()
    assert client.check_secret(secret)

    empty = text(alice_client.post(reset_url(client), {}, headers=HTMX))
    assert "Enter your password to confirm" in empty
    client.refresh_from_db()
    assert client.check_secret(secret)


def test_a_correct_password_is_not_asked_again_for_a_few_minutes(alice_client, make_api_client):
    first, _ = make_api_client("First")
    second, _ = make_api_client("Second")
    assert SECRET_RE.search(text(alice_client.post(reset_url(first), SUDO, headers=HTMX)))
    dialog = text(alice_client.get(delete_url(second), headers=HTMX))
    assert "Confirm with your password" not in dialog
    response = alice_client.post(delete_url(second), {}, headers=HTMX)
    assert response.status_code == 204
    assert not ApiClient.objects.filter(pk=second.pk).exists()


def test_sudo_mode_ends_after_its_window(alice_client, make_api_client, settings):
    client, _ = make_api_client()
    alice_client.post(reset_url(client), SUDO, headers=HTMX)
    session = alice_client.session
    session["console_sudo_until"] = time.time() - 1
    session.save()
    assert "Confirm with your password" in text(alice_client.get(delete_url(client)))

    settings.CONSOLE_SUDO_SECONDS = 0  # ask every time
    alice_client.post(reset_url(client), SUDO, headers=HTMX)
    assert "Confirm with your password" in text(alice_client.get(delete_url(client)))


def test_wrong_passwords_are_limited_like_sign_in(alice_client, make_api_client, settings):
    settings.LOGIN_FAILURES_PER_USER_AND_IP = 2
    client, secret = make_api_client()
    for _ in range(2):
        alice_client.post(reset_url(client), {"password": "guess"}, headers=HTMX)
    # Over the limit even the right password is not checked.
    page = alice_client.post(reset_url(client), SUDO)
    assert page.status_code == 429
    assert re.search(r"Too many wrong passwords\. Try again in \d+ minutes?\.", text(page))
    in_dialog = alice_client.post(reset_url(client), SUDO, headers=HTMX)
    assert in_dialog.status_code == 200
    assert "Too many wrong passwords" in text(in_dialog)
    client.refresh_from_db()
    assert client.check_secret(secret)
    # The same counters as the sign-in page.
    signin = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert signin.status_code == 429


def test_rotation_asks_for_the_password_too(alice_client, make_api_client):
    client, secret = make_api_client()
    response = alice_client.post(rotate_url(client), {"overlap": "1h"}, headers=HTMX)
    assert "Enter your password to confirm" in text(response)
    client.refresh_from_db()
    assert not client.previous_secret_digest and client.check_secret(secret)


def test_reset_and_delete_name_the_last_use(alice_client, make_api_client):
    client, _ = make_api_client()
    assert "never redeemed its secret" in text(alice_client.get(delete_url(client)))
    ApiClient.objects.filter(pk=client.pk).update(
        last_redeemed_at=timezone.now() - timedelta(minutes=1)
    )
    for url in (reset_url(client), delete_url(client)):
        body = text(alice_client.get(url))
        assert (
            "Last redeemed" in body
            and "It was used in the last 24 hours: an integration probably depends on it." in body
        )


def test_deleting_a_client_used_today_takes_its_name_typed(alice_client, make_api_client):
    client, _ = make_api_client("Splunk SIEM export")
    ApiClient.objects.filter(pk=client.pk).update(
        last_redeemed_at=timezone.now() - timedelta(hours=2)
    )
    assert "Type <strong" in text(alice_client.get(delete_url(client), headers=HTMX))
    wrong = alice_client.post(delete_url(client), {**SUDO, "confirm_name": "splunk"}, headers=HTMX)
    assert wrong.status_code == 200
    assert "Type “Splunk SIEM export” exactly as shown" in text(wrong)
    assert ApiClient.objects.filter(pk=client.pk).exists()
    done = alice_client.post(
        delete_url(client), {**SUDO, "confirm_name": "Splunk SIEM export"}, headers=HTMX
    )
    assert done.status_code == 204
    assert not ApiClient.objects.filter(pk=client.pk).exists()


def test_a_client_unused_for_a_day_is_deleted_without_typing_its_name(
    alice_client, make_api_client
):
    client, _ = make_api_client()
    ApiClient.objects.filter(pk=client.pk).update(
        last_redeemed_at=timezone.now() - timedelta(days=2)
    )
    assert "to confirm</label>" not in text(alice_client.get(delete_url(client)))
    assert alice_client.post(delete_url(client), SUDO, headers=HTMX).status_code == 204
