"""Rotation with overlap, expiry and hygiene at a glance, in the console."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apiclients import usage
from apiclients.models import ApiClient, AuditAction, AuditEvent
from apiclients.services import api_client_rotate_secret
from tests.apiclients.helpers import (
    CREATE_URL,
    HTMX,
    LIST_URL,
    SUDO,
    detail_url,
    edit_data,
    edit_url,
    form_data,
    secret_in,
    text,
)


def rotate_url(client):
    return reverse("apiclients:rotate_secret", args=[client.client_id])


def revoke_url(client):
    return reverse("apiclients:revoke_old_secret", args=[client.client_id])


def test_rotating_reveals_a_new_secret_and_keeps_the_old_one_for_the_overlap(
    alice_client, make_api_client
):
    client, old = make_api_client()
    response = alice_client.post(rotate_url(client), {"overlap": "7d", **SUDO}, headers=HTMX)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    new = secret_in(response)
    assert new != old
    assert "The old secret keeps working until" in text(response)
    client.refresh_from_db()
    now = timezone.now()
    assert client.check_secret(new) and client.check_previous_secret(old, now)
    left = client.previous_secret_expires_at - now
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
    assert AuditEvent.objects.filter(action=AuditAction.SECRET_ROTATED).count() == 1


def test_an_unknown_overlap_is_a_form_error_and_changes_nothing(alice_client, make_api_client):
    client, old = make_api_client()
    response = alice_client.post(rotate_url(client), {"overlap": "forever", **SUDO}, headers=HTMX)
    assert response.status_code == 200
    assert "Choose how long the old secret keeps working." in text(response)
    client.refresh_from_db()
    assert client.check_secret(old) and not client.previous_secret_digest


def test_the_drawer_shows_two_live_secrets_and_offers_to_revoke_the_old_one(
    alice_client, bob_client, alice, make_api_client
):
    client, _ = make_api_client()
    api_client_rotate_secret(client=client, grace=dt.timedelta(hours=24), actor=alice)
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "Two secrets are live." in body
    assert "Revoke old secret now" in body
    # The notice says it; no badge repeating it.
    assert "2 secrets live" not in body
    auditor = text(bob_client.get(detail_url(client), headers=HTMX))
    assert "Two secrets are live." in auditor
    assert "Revoke old secret now" not in auditor


def test_revoking_the_old_secret_in_a_dialog_ends_the_overlap(alice_client, alice, make_api_client):
    client, old = make_api_client()
    api_client_rotate_secret(client=client, grace=dt.timedelta(hours=24), actor=alice)
    response = alice_client.post(revoke_url(client), headers=HTMX)
    assert response.status_code == 204
    assert "apiClientsChanged" in response["HX-Trigger"]
    client.refresh_from_db()
    assert not client.check_previous_secret(old, timezone.now())
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "Two secrets are live." not in body


def test_a_client_can_be_created_with_an_expiry_date(alice_client):
    day = timezone.localdate() + dt.timedelta(days=10)
    response = alice_client.post(CREATE_URL, form_data(expires_on=day.isoformat()), headers=HTMX)
    assert response.status_code == 200
    client = ApiClient.objects.get()
    # Works through that day, stops at the midnight that ends it.
    assert timezone.localtime(client.expires_at).date() == day + dt.timedelta(days=1)
    assert timezone.localtime(client.expires_at).time() == dt.time.min


@pytest.mark.parametrize("days", [0, -3])
def test_an_expiry_date_must_be_in_the_future(alice_client, days):
    day = timezone.localdate() + dt.timedelta(days=days)
    response = alice_client.post(
        CREATE_URL, form_data(name="Kept name", expires_on=day.isoformat()), headers=HTMX
    )
    body = text(response)
    assert "Choose a date after today" in body
    assert 'value="Kept name"' in body
    assert not ApiClient.objects.exists()


def test_editing_keeps_an_expiry_and_can_clear_it(alice_client, make_api_client):
    when = timezone.now() + dt.timedelta(days=40)
    client, _ = make_api_client(expires_at=when)
    alice_client.post(edit_url(client), edit_data(client, description="x"))
    client.refresh_from_db()
    assert client.expires_at is not None
    alice_client.post(edit_url(client), edit_data(client, expires_on=""))
    client.refresh_from_db()
    assert client.expires_at is None


def test_the_list_marks_expiry_old_secrets_and_rotations(
    alice_client, alice, make_api_client, settings
):
    settings.SECRET_ROTATION_REMINDER_DAYS = 90
    now = timezone.now()
    soon, _ = make_api_client("Soon", expires_at=now + dt.timedelta(days=3, hours=1))
    make_api_client("Gone", expires_at=now - dt.timedelta(hours=1))
    old, _ = make_api_client("Old secret")
    ApiClient.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=213))
    rotating, _ = make_api_client("Rotating")
    api_client_rotate_secret(client=rotating, grace=dt.timedelta(days=1), actor=alice)
    make_api_client("Fine")

    body = text(alice_client.get(LIST_URL))
    assert "Expires in 3 days" in body
    assert ">Expired<" in body
    assert "Secret 213 days old" in body
    assert "2 secrets live" in body
    fine_row = re.search(r"<tr>(?:(?!</tr>).)*>Fine</a>(?:(?!</tr>).)*</tr>", body, re.S).group(0)
    assert "badge--warning" not in fine_row and "badge--danger" not in fine_row


def _names(response) -> set[str]:
    return set(re.findall(r'hx-push-url="true">([^<]+)</a>', text(response)))


def test_the_list_filters_find_clients_that_need_attention(alice_client, make_api_client):
    now = timezone.now()
    make_api_client("Expiring", expires_at=now + dt.timedelta(days=5))
    make_api_client("Expired", expires_at=now - dt.timedelta(days=1))
    stale, _ = make_api_client("Stale")
    ApiClient.objects.filter(pk=stale.pk).update(
        created_at=now - dt.timedelta(days=400), last_redeemed_at=now - dt.timedelta(days=120)
    )
    fresh, _ = make_api_client("Fresh")
    ApiClient.objects.filter(pk=fresh.pk).update(last_redeemed_at=now - dt.timedelta(days=1))
    old_unused, _ = make_api_client("Old never used")
    ApiClient.objects.filter(pk=old_unused.pk).update(created_at=now - dt.timedelta(days=100))
    make_api_client("New never used", is_active=False)

    def shown(show):
        return _names(alice_client.get(LIST_URL, {"show": show}))

    assert shown("expiring") == {"Expiring"}
    assert shown("expired") == {"Expired"}
    assert shown("never-redeemed") == {"Expiring", "Expired", "Old never used", "New never used"}
    assert shown("unused") == {"Stale", "Old never used"}
    assert shown("old-secret") == {"Stale", "Old never used"}
    assert shown("inactive") == {"New never used"}
    assert "Fresh" in shown("nonsense")  # unknown filter: everything


def test_a_filter_with_no_results_says_so(alice_client, make_api_client):
    make_api_client()
    body = text(alice_client.get(LIST_URL, {"show": "expired"}))
    assert "No API clients: expired" in body
    assert "Show all API clients" in body


def test_the_drawer_draws_the_daily_token_counts(alice_client, make_api_client):
    client, _ = make_api_client()
    now = timezone.now()
    for _ in range(7):
        usage.token_counted(client.pk, now)
    usage.flush()
    for _ in range(3):
        usage.token_counted(client.pk, now - dt.timedelta(days=2))
    usage.flush()
    usage.token_counted(client.pk, now)  # still pending in this process

    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "11 tokens, at most 8 a day" in body
    bars = re.findall(r'<rect class="chart__bar"[^>]*height="([\d.]+)"', body)
    assert len(bars) == 2
    assert max(float(h) for h in bars) == 72.0
    assert f"{now:%b} {now.day}: 8 tokens" in body
    assert 'aria-label="Tokens issued per day over the last 30 days: 11 in total"' in body


def test_the_drawer_says_how_old_the_secret_is(alice_client, make_api_client, settings):
    settings.SECRET_ROTATION_REMINDER_DAYS = 90
    client, _ = make_api_client()
    ApiClient.objects.filter(pk=client.pk).update(
        secret_reset_at=timezone.now() - dt.timedelta(days=213)
    )
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "Secret last reset 213 days ago: time to rotate it" in body
