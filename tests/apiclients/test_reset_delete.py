import json

from apiclients.models import ApiClient, AuditAction, AuditEvent
from tests.apiclients.helpers import (
    AUDIT_URL,
    HTMX,
    LIST_URL,
    delete_url,
    detail_url,
    edit_data,
    edit_url,
    reset_url,
    secret_in,
    text,
)


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
    response = alice_client.post(reset_url(client), headers=HTMX)
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
    response = alice_client.post(reset_url(client))
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
    response = alice_client.post(delete_url(client), headers=HTMX)
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
    response = alice_client.post(delete_url(client))
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    page = text(alice_client.get(LIST_URL))
    assert "Deleted “SIEM export”." in page


def test_htmx_posts_are_never_redirected(alice_client, make_api_client):
    client, _ = make_api_client()
    for response in (
        alice_client.post(edit_url(client), edit_data(client, name="x"), headers=HTMX),
        alice_client.post(reset_url(client), headers=HTMX),
        alice_client.post(delete_url(client), headers=HTMX),
    ):
        assert response.status_code in (200, 204)
        assert "Location" not in response
        assert "HX-Trigger" in response
