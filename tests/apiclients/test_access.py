"""One table walks every console URL and method with every member of the cast.

anonymous -> sign in; charlie (no role) -> the helpful 403 page; bob (auditor)
-> reads 200, every mutating GET and POST 403; alice (admin) -> works; dave
(admin of another tenant) -> Acme's client is a 404, his own lists work.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse

from apiclients.models import ApiClient
from tests.apiclients.helpers import (
    AUDIT_URL,
    CREATE_URL,
    EXPORT_URL,
    LIST_URL,
    SUDO,
    delete_url,
    detail_url,
    edit_data,
    edit_url,
    form_data,
    reset_url,
    text,
)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: Callable
    mutating: bool
    data: Callable | None = None
    alice: int = 200
    on_client: bool = False  # dave must get a 404

    def __str__(self):
        return self.name


def _none(client):
    return {}


def _url(name, client):
    return reverse(f"apiclients:{name}", args=[client.client_id])


CASES = [
    Case("home GET", "get", lambda c: reverse("apiclients:home"), False, alice=302),
    Case("list GET", "get", lambda c: LIST_URL, False),
    Case("list POST", "post", lambda c: LIST_URL, False, _none, alice=405),
    Case("create GET", "get", lambda c: CREATE_URL, True),
    Case("create POST", "post", lambda c: CREATE_URL, True, lambda c: form_data(name="New one")),
    Case("detail GET", "get", detail_url, False, on_client=True),
    Case("detail POST", "post", detail_url, False, _none, alice=405, on_client=True),
    Case("edit GET", "get", edit_url, True, on_client=True),
    Case(
        "edit POST",
        "post",
        edit_url,
        True,
        lambda c: edit_data(c, name="Renamed"),
        alice=302,
        on_client=True,
    ),
    Case("reset GET", "get", reset_url, True, on_client=True),
    Case("reset POST", "post", reset_url, True, lambda c: dict(SUDO), on_client=True),
    Case("rotate GET", "get", lambda c: _url("rotate_secret", c), True, on_client=True),
    Case(
        "rotate POST",
        "post",
        lambda c: _url("rotate_secret", c),
        True,
        lambda c: {"overlap": "24h", **SUDO},
        on_client=True,
    ),
    Case("revoke old GET", "get", lambda c: _url("revoke_old_secret", c), True, on_client=True),
    Case(
        "revoke old POST",
        "post",
        lambda c: _url("revoke_old_secret", c),
        True,
        _none,
        alice=302,
        on_client=True,
    ),
    Case("lift lockout GET", "get", lambda c: _url("lift_lockout", c), True, on_client=True),
    Case(
        "lift lockout POST",
        "post",
        lambda c: _url("lift_lockout", c),
        True,
        lambda c: {"address": "203.0.113.9"},
        alice=302,
        on_client=True,
    ),
    Case("delete GET", "get", delete_url, True, on_client=True),
    Case("delete POST", "post", delete_url, True, lambda c: dict(SUDO), alice=302, on_client=True),
    Case("audit log GET", "get", lambda c: AUDIT_URL, False),
    Case("audit log POST", "post", lambda c: AUDIT_URL, False, _none, alice=405),
    Case("audit CSV GET", "get", lambda c: AUDIT_URL + "?format=csv", False),
    Case("audit export GET", "get", lambda c: EXPORT_URL, False),
    Case("audit export POST", "post", lambda c: EXPORT_URL, False, _none, alice=405),
]

ROLES = ["anonymous", "charlie", "bob", "alice", "dave"]


def expected_status(role: str, case: Case) -> int:
    if role == "anonymous":
        return 302
    if role == "charlie":
        return 403
    if role == "bob":
        return 403 if case.mutating else case.alice
    if role == "dave" and case.on_client and case.alice != 405:
        return 404
    return case.alice


@pytest.fixture
def browser_for(client, charlie_client, bob_client, alice_client, dave_client):
    return {
        "anonymous": client,
        "charlie": charlie_client,
        "bob": bob_client,
        "alice": alice_client,
        "dave": dave_client,
    }


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("role", ROLES)
def test_every_url_and_method_answers_each_role_as_it_should(
    role, case, browser_for, make_api_client
):
    acme_client, secret = make_api_client("Acme SIEM")
    before = ApiClient.objects.get(pk=acme_client.pk)
    web = browser_for[role]
    url = case.url(acme_client)
    if case.method == "get":
        response = web.get(url)
    else:
        response = web.post(url, case.data(acme_client))

    expected = expected_status(role, case)
    assert response.status_code == expected, (role, case.name, response.status_code)

    if expected == 302 and role == "anonymous":
        assert response["Location"].startswith("/accounts/login/?next=")
    if expected == 403:
        body = text(response)
        if role == "charlie":
            assert "You need the Customer Cloud Admin role" in body
            assert "charlie" in body
        else:
            assert "Auditor" in body
    if expected == 404:
        assert "Acme SIEM" not in text(response)
    if role == "dave" and expected == 200:
        assert "Acme SIEM" not in text(response)
        assert acme_client.client_id not in text(response)

    # Whoever was refused changed nothing.
    if expected in (302, 403, 404, 405) and not (role == "alice" and expected == 302):
        after = ApiClient.objects.get(pk=acme_client.pk)
        assert (after.name, after.secret_digest, after.version) == (
            before.name,
            before.secret_digest,
            before.version,
        )
        assert after.check_secret(secret)


def test_auditor_cannot_reset_secret(bob_client, make_api_client):
    client, secret = make_api_client()
    response = bob_client.post(reset_url(client), headers={"HX-Request": "true"})
    assert response.status_code == 403
    client.refresh_from_db()
    assert client.check_secret(secret)
    assert "acsec_" not in text(response)


def test_auditor_cannot_delete_or_edit(bob_client, make_api_client):
    client, _ = make_api_client()
    assert bob_client.post(delete_url(client)).status_code == 403
    assert bob_client.post(edit_url(client), edit_data(client, name="X")).status_code == 403
    client.refresh_from_db()
    assert client.name == "SIEM export"


def test_auditor_sees_no_mutating_controls(bob_client, make_api_client):
    client, _ = make_api_client()
    for url in (LIST_URL, detail_url(client)):
        body = text(bob_client.get(url))
        assert client.name in body
        for label in (
            "Create new API client",
            "Edit API client",
            "Reset API secret",
            "Delete API client",
            'hx-post="',
        ):
            assert label not in body, (url, label)
        assert "read-only access" in body
    drawer = text(bob_client.get(detail_url(client), headers={"HX-Request": "true"}))
    assert "Edit API client" not in drawer and "Delete API client" not in drawer


def test_admin_sees_every_action(alice_client, make_api_client):
    client, _ = make_api_client()
    body = text(alice_client.get(LIST_URL))
    for label in (
        "Create new API client",
        "Edit API client",
        "Reset API secret",
        "Delete API client",
    ):
        assert label in body


def test_another_tenants_admin_gets_404_not_403(dave_client, make_api_client):
    client, _ = make_api_client()
    assert dave_client.get(detail_url(client)).status_code == 404
    for url in (edit_url(client), reset_url(client), delete_url(client)):
        assert dave_client.get(url).status_code == 404
        assert dave_client.post(url, {}).status_code == 404
    assert ApiClient.objects.filter(pk=client.pk).exists()


def test_the_role_page_of_a_user_without_a_role_offers_no_console_links(charlie_client):
    response = charlie_client.get(LIST_URL)
    assert response.status_code == 403
    body = text(response)
    assert "You need the Customer Cloud Admin role" in body
    # Nothing that would only refuse them again: no navigation, no link home.
    assert 'aria-label="Console"' not in body
    assert f'href="{LIST_URL}"' not in body and 'href="/administration/audit-log/"' not in body
    assert '<a class="brand"' not in body
    assert ">Sign in as someone else</button>" in body


def test_an_auditor_keeps_the_navigation_on_the_role_page(bob_client, make_api_client):
    body = text(bob_client.get(CREATE_URL))
    assert 'aria-label="Console"' in body and ">Back to API Clients</a>" in body
