import json

from django.contrib.auth import get_user_model

from apiclients.models import AuditAction, AuditEvent
from apiclients.services import api_client_update
from tests.apiclients.helpers import HTMX, detail_url, edit_data, edit_url, text


def test_edit_dialog_is_filled_with_the_saved_values(alice_client, make_api_client):
    client, _ = make_api_client(
        "SOAR", description="Closes alerts", grants=["alerts:read"], ip_allowlist=["10.0.0.0/8"]
    )
    body = text(alice_client.get(edit_url(client), headers=HTMX))
    assert '<dialog id="edit-api-client"' in body
    assert "Edit API client" in body
    assert 'value="SOAR"' in body
    assert "Closes alerts</textarea>" in body
    assert 'value="alerts:read" id="grant-alerts-read" checked' in body
    assert 'value="alerts:write" id="grant-alerts-write">' in body
    assert 'value="restricted" checked' in body
    assert "10.0.0.0/8</textarea>" in body
    assert 'name="version" value="1"' in body
    assert client.client_id in body  # shown, not editable


def test_edit_saves_and_closes_the_dialog_with_events(alice_client, alice, make_api_client):
    client, secret = make_api_client("SIEM export")
    response = alice_client.post(
        edit_url(client),
        edit_data(client, name="SIEM nightly", grants=["users:read"]),
        headers=HTMX,
    )
    assert response.status_code == 204
    assert response.content == b""
    events = json.loads(response["HX-Trigger"])
    assert list(events)[:2] == ["apiClientsChanged", "closeDialog"]
    assert events["showToast"] == {"message": "Saved “SIEM nightly”."}

    client.refresh_from_db()
    assert (client.name, client.grants, client.version) == ("SIEM nightly", ["users:read"], 2)
    assert client.updated_by == alice
    assert client.check_secret(secret)  # editing never touches the secret
    edited = AuditEvent.objects.get(action=AuditAction.EDITED)
    assert edited.details["changes"]["name"] == ["SIEM export", "SIEM nightly"]


def test_edit_without_htmx_redirects_to_the_details(alice_client, make_api_client):
    client, _ = make_api_client()
    response = alice_client.post(edit_url(client), edit_data(client, name="Renamed"))
    assert response.status_code == 302
    assert response["Location"] == detail_url(client)
    page = text(alice_client.get(response["Location"]))
    assert "Saved “Renamed”." in page


def test_edit_page_works_without_htmx(alice_client, make_api_client):
    client, _ = make_api_client()
    body = text(alice_client.get(edit_url(client)))
    assert "<html" in body and "<dialog" not in body
    assert f'href="{detail_url(client)}">Cancel</a>' in body


def test_deactivating_is_audited_as_such(alice_client, make_api_client):
    client, _ = make_api_client()
    alice_client.post(edit_url(client), edit_data(client, status="inactive"), headers=HTMX)
    client.refresh_from_db()
    assert client.is_active is False
    assert AuditEvent.objects.filter(action=AuditAction.DEACTIVATED).count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.EDITED).exists()


def test_a_conflicting_edit_keeps_both_versions_and_overwrites_nothing(
    alice_client, make_api_client
):
    client, _ = make_api_client("SIEM export", grants=["alerts:read"])
    stale = edit_data(client, name="Alice's name", description="Alice's description")
    # Someone else saves first.
    carol = get_user_model().objects.create_user("carol")
    api_client_update(client=client, actor=carol, name="Carol's name", grants=["cases:read"])

    response = alice_client.post(edit_url(client), stale, headers=HTMX)
    assert response.status_code == 200
    body = text(response)
    assert "carol saved changes to this API client while you were editing it." in body
    assert "Your changes are below and have not been saved." in body
    # Alice's input is still in the form...
    assert 'value="Alice&#x27;s name"' in body
    assert "Alice&#x27;s description</textarea>" in body
    # ...beside what is saved now.
    assert "Carol&#x27;s name" in body
    assert "Cases read" in body
    assert "differs from yours" in body
    assert 'name="version" value="2"' in body
    client.refresh_from_db()
    assert client.name == "Carol's name"
    assert "HX-Trigger" not in response

    # Saving again, knowingly, against the version now shown, wins.
    again = dict(stale, version=2)
    assert alice_client.post(edit_url(client), again, headers=HTMX).status_code == 204
    client.refresh_from_db()
    assert client.name == "Alice's name"


def test_renaming_to_a_taken_name_is_refused_ignoring_case(alice_client, make_api_client):
    make_api_client("HR sync")
    client, _ = make_api_client("SIEM export")
    response = alice_client.post(
        edit_url(client), edit_data(client, name="hr SYNC", description="typed"), headers=HTMX
    )
    body = text(response)
    assert response.status_code == 200
    assert "An API client named “hr SYNC” already exists." in body
    assert 'value="hr SYNC"' in body and "typed</textarea>" in body
    client.refresh_from_db()
    assert client.name == "SIEM export"


def test_a_client_may_change_the_case_of_its_own_name(alice_client, make_api_client):
    client, _ = make_api_client("siem export")
    response = alice_client.post(
        edit_url(client), edit_data(client, name="SIEM Export"), headers=HTMX
    )
    assert response.status_code == 204
    client.refresh_from_db()
    assert client.name == "SIEM Export"


def test_invalid_ip_on_edit_keeps_the_dialog_open(alice_client, make_api_client):
    client, _ = make_api_client()
    response = alice_client.post(
        edit_url(client),
        edit_data(client, ip_mode="restricted", ip_allowlist="300.1.1.1"),
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "“300.1.1.1” is not a valid IP address or CIDR range." in text(response)
    client.refresh_from_db()
    assert client.ip_allowlist == []


def test_a_conflict_with_your_own_other_window_says_so(alice_client, alice, make_api_client):
    client, _ = make_api_client("SIEM export")
    stale = edit_data(client, name="From window one")
    api_client_update(client=client, actor=alice, name="From window two")
    body = text(alice_client.post(edit_url(client), stale, headers=HTMX))
    assert "You (in another window) saved changes to this API client" in body
    client.refresh_from_db()
    assert client.name == "From window two"
