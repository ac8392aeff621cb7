"""Failure lockouts as an admin sees them, and as an attacker cannot use
them: shown in the client's drawer and the audit log, lifted by an admin,
and never a way to make an integration with its correct secret fail."""

import re
from urllib.parse import urlencode

from django.test import Client

from apiclients.models import AuditAction, AuditEvent
from tests.apiclients.helpers import detail_url, htmx, text
from tests.conftest import PASSWORD
from tests.oauth.conftest import basic, post

ATTACKER = "203.0.113.66"


def _seen(response) -> str:
    """The words on the page, as a reader sees them."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def _token(client_id, secret, ip):
    return post(
        Client(),
        "/v1/oauth",
        urlencode({"grant_type": "client_credentials"}),
        HTTP_AUTHORIZATION=basic(client_id, secret),
        REMOTE_ADDR=ip,
    )


def _lock_out(api_client, settings, failures=3):
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT_AND_IP": failures}
    for _ in range(failures):
        assert _token(api_client.client_id, "acsec_wrong", ATTACKER).status_code == 401
    assert _token(api_client.client_id, "acsec_wrong", ATTACKER).status_code == 429


def test_a_lockout_is_shown_in_the_drawer_and_the_audit_log(
    alice_client, make_api_client, settings
):
    api_client, _ = make_api_client()
    _lock_out(api_client, settings)

    drawer = _seen(alice_client.get(detail_url(api_client), headers=htmx()))

    assert "Locked out." in drawer
    assert f"3 failed attempts from {ATTACKER} in 5 minutes; locked until" in drawer
    assert "Lift lockout" in drawer
    event = AuditEvent.objects.get(action=AuditAction.LOCKED_OUT)
    assert event.client_id == api_client.client_id
    assert event.source_ip == ATTACKER
    assert event.details["failures"] == 3
    log = _seen(alice_client.get("/administration/audit-log/"))
    assert "Locked out" in log
    assert f"3 failed attempts from {ATTACKER} in 5 minutes" in log


def test_an_admin_lifts_a_lockout_and_failures_count_afresh(
    alice_client, make_api_client, settings
):
    api_client, _ = make_api_client()
    _lock_out(api_client, settings)
    lift = f"/administration/integrations/api-clients/{api_client.client_id}/lift-lockout/"

    confirm = alice_client.get(f"{lift}?address={ATTACKER}")
    assert ATTACKER in text(confirm)
    done = alice_client.post(lift, {"address": ATTACKER}, headers=htmx())

    assert done.status_code == 204
    assert _token(api_client.client_id, "acsec_wrong", ATTACKER).status_code == 401
    assert "Locked out." not in text(alice_client.get(detail_url(api_client), headers=htmx()))
    lifted = AuditEvent.objects.get(action=AuditAction.LOCKOUT_LIFTED)
    assert lifted.actor == "alice"
    assert lifted.details == {"address": ATTACKER}


def test_a_bad_address_to_lift_is_a_clear_error(alice_client, make_api_client):
    api_client, _ = make_api_client()
    lift = f"/administration/integrations/api-clients/{api_client.client_id}/lift-lockout/"

    response = alice_client.post(lift, {"address": "not-an-address"})

    assert response.status_code == 200
    assert "That is not an IP address" in text(response)
    assert not AuditEvent.objects.filter(action=AuditAction.LOCKOUT_LIFTED).exists()


def test_an_auditor_sees_a_lockout_and_cannot_lift_it(bob_client, make_api_client, settings):
    api_client, _ = make_api_client()
    _lock_out(api_client, settings)
    lift = f"/administration/integrations/api-clients/{api_client.client_id}/lift-lockout/"

    drawer = _seen(bob_client.get(detail_url(api_client), headers=htmx()))

    assert "Locked out." in drawer
    assert "Lift lockout" not in drawer
    assert bob_client.post(lift, {"address": ATTACKER}).status_code == 403
    assert _token(api_client.client_id, "acsec_wrong", ATTACKER).status_code == 429


def test_an_attacker_at_one_address_cannot_make_an_integration_fail(
    alice, make_api_client, settings
):
    """1,000 failed token requests (made-up client IDs and the victim's own)
    and 200 failed sign-ins from one address: the integration, with its
    correct secret, from another address or from that same one, and the
    admin signing in from their usual address, go on working."""
    api_client, secret = make_api_client()
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_IP": 0, "RATE_LIMIT_PER_CLIENT": 0}
    assert (
        Client(REMOTE_ADDR="192.0.2.10")
        .post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        .status_code
        == 302
    )
    statuses = set()
    for i in range(1000):
        client_id = api_client.client_id if i % 2 else f"key-madeup{i:013d}"
        _token(client_id, "acsec_" + "x" * 43, ATTACKER)
        if i % 100 == 0:
            statuses.add(_token(api_client.client_id, secret, "192.0.2.10").status_code)
            statuses.add(_token(api_client.client_id, secret, ATTACKER).status_code)
    for _ in range(200):
        Client(REMOTE_ADDR=ATTACKER).post(
            "/accounts/login/", {"username": "alice", "password": "guess"}
        )

    assert statuses == {200}
    assert _token(api_client.client_id, secret, "192.0.2.10").status_code == 200
    assert _token(api_client.client_id, secret, ATTACKER).status_code == 200
    assert _token(api_client.client_id, "acsec_" + "x" * 43, ATTACKER).status_code == 429
    signed_in = Client(REMOTE_ADDR="192.0.2.10").post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD}
    )
    assert signed_in.status_code == 302
