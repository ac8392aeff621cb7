"""Requests no browser of ours sends, found by the hardening fuzz tests: they
get a page or an inline error, never a 500."""

import pytest
from django.test import Client

from tests.apiclients.helpers import HTMX, detail_url, edit_data, edit_url, text


@pytest.fixture
def alice_raw(alice) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


@pytest.mark.parametrize("back", ["http://[", "http://[::1", "https://[x]:bad/"])
def test_a_malformed_back_url_closes_the_drawer_onto_the_list(alice_raw, make_api_client, back):
    client, _ = make_api_client()
    response = alice_raw.get(detail_url(client), {"back": back})
    assert response.status_code == 200
    assert 'href="/administration/integrations/api-clients/"' in text(response)


def test_a_malformed_htmx_current_url_closes_the_drawer_onto_the_list(alice_raw, make_api_client):
    client, _ = make_api_client()
    response = alice_raw.get(detail_url(client), headers={**HTMX, "HX-Current-URL": "http://["})
    assert response.status_code == 200


def test_a_back_url_with_a_scheme_is_not_followed(alice_raw, make_api_client):
    # Under https, browsers read "http:/administration/..." as the host
    # "administration".
    client, _ = make_api_client()
    back = "http:/administration/integrations/api-clients/?q=x"
    response = alice_raw.get(detail_url(client), {"back": back})
    assert response.status_code == 200
    assert "http:/administration" not in text(response)


@pytest.mark.parametrize("version", [None, "", "x", "0"])
def test_an_edit_without_a_valid_version_says_to_reload(alice_raw, make_api_client, version):
    client, _ = make_api_client()
    data = edit_data(client, name="Renamed")
    if version is None:
        del data["version"]
    else:
        data["version"] = version
    response = alice_raw.post(edit_url(client), data)
    assert response.status_code == 200
    assert "Reload the page and edit again" in text(response)
    client.refresh_from_db()
    assert client.name == "SIEM export"


@pytest.mark.parametrize("action", ["", "edit/", "reset-secret/", "rotate-secret/", "delete/"])
@pytest.mark.parametrize("segment", ["%00", "key-%00", "a" * 65, "%FF"])
def test_a_client_id_that_cannot_exist_is_a_404(alice_raw, action, segment):
    # A NUL byte reached PostgreSQL and made it a 500.
    for method in ("get", "post"):
        response = getattr(alice_raw, method)(
            f"/administration/integrations/api-clients/{segment}/{action}"
        )
        assert response.status_code in (404, 405)


def test_a_search_with_a_nul_byte_finds_what_the_rest_matches(alice_raw, make_api_client):
    make_api_client("SIEM export")
    response = alice_raw.get("/administration/integrations/api-clients/", {"q": "SIEM\x00"})
    assert response.status_code == 200
    assert "SIEM export" in text(response)
