import base64
import logging
import time
from unittest import mock
from urllib.parse import urlencode

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apiclients import usage
from apiclients.models import AuditAction, AuditEvent
from apiclients.services import api_client_update
from oauth import keys
from tests.oauth.conftest import FORM, JSON, basic, post


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def assert_token_response(response, scope="audit-log:read users:read"):
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == scope
    assert claims_of(body["access_token"])["scope"] == scope
    return body


# The requests of Code42's documentation ----------------------------------


def test_it_issues_a_token_for_the_incydr_curl(client, siem):
    # curl -X POST -u '<ClientID>:<Secret>' -d "" <request_url>/v1/oauth
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert_token_response(response)


def test_it_issues_a_token_for_the_crashplan_curl(client, siem):
    # curl -X POST -u ... -H "Accept: application/json" ".../api/v3/oauth/token?grant_type=..."
    api_client, secret = siem
    response = client.generic(
        "POST",
        "/api/v3/oauth/token?grant_type=client_credentials",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        HTTP_ACCEPT="application/json",
    )
    assert_token_response(response)


def test_it_issues_a_token_for_the_cisco_json_request(client, siem):
    api_client, secret = siem
    body = {
        "client_id": api_client.client_id,
        "client_password": secret,
        "grant_type": "client_credentials",
    }
    assert_token_response(post(client, "/v1/oauth", body, content_type=JSON))


def test_it_issues_a_token_for_the_cisco_curl(client, siem):
    api_client, secret = siem
    response = post(
        client,
        "/v1/oauth",
        "grant_type=client_credentials",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        HTTP_ACCEPT="application/json",
    )
    assert_token_response(response)


def test_it_accepts_client_secret_in_a_json_body(client, siem):
    api_client, secret = siem
    body = {"client_id": api_client.client_id, "client_secret": secret}
    body["grant_type"] = "client_credentials"
    assert_token_response(post(client, "/v1/oauth", body, content_type=JSON))


def test_it_accepts_form_credentials(client, siem):
    api_client, secret = siem
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": secret,
        }
    )
    assert_token_response(post(client, "/v1/oauth", form))


def test_it_accepts_form_encoded_basic_credentials(client, siem):
    # RFC 6749 2.3.1 form-encodes both parts before Base64.
    api_client, secret = siem
    encoded = base64.b64encode(f"{api_client.client_id}:{secret}".replace("-", "%2D").encode())
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION="Basic " + encoded.decode())
    assert_token_response(response)


def test_it_allows_the_same_client_id_in_the_body_beside_basic(client, siem):
    api_client, secret = siem
    form = urlencode({"grant_type": "client_credentials", "client_id": api_client.client_id})
    response = post(
        client, "/v1/oauth", form, HTTP_AUTHORIZATION=basic(api_client.client_id, secret)
    )
    assert_token_response(response)


def test_the_lifetime_is_configurable(client, siem, settings):
    settings.OAUTH = {**settings.OAUTH, "TOKEN_LIFETIME": 300}
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.json()["expires_in"] == 300
    claims = claims_of(response.json()["access_token"])
    assert claims["exp"] - claims["iat"] == 300


def test_it_answers_a_get_with_a_json_405(client):
    response = client.get("/v1/oauth")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


# Client authentication ----------------------------------------------------


def test_more_than_one_authentication_method_is_invalid_request(client, siem):
    api_client, secret = siem
    form = urlencode({"client_id": api_client.client_id, "client_secret": secret})
    response = post(
        client,
        "/v1/oauth?grant_type=client_credentials",
        form,
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_client_secret_and_client_password_together_are_invalid_request(client, siem):
    api_client, secret = siem
    body = {
        "grant_type": "client_credentials",
        "client_id": api_client.client_id,
        "client_secret": secret,
        "client_password": secret,
    }
    response = post(client, "/v1/oauth", body, content_type=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_different_client_id_in_the_body_beside_basic_is_invalid_request(
    client, siem, make_api_client
):
    api_client, secret = siem
    other, _ = make_api_client("Other")
    form = urlencode({"grant_type": "client_credentials", "client_id": other.client_id})
    response = post(
        client, "/v1/oauth", form, HTTP_AUTHORIZATION=basic(api_client.client_id, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_no_credentials_is_invalid_client(client, db):
    response = post(client, "/v1/oauth", "grant_type=client_credentials")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"] == 'Basic realm="oauth"'


def _failures(client, siem, make_api_client):
    """Four refused requests: unknown client, wrong secret, inactive, wrong IP."""
    api_client, secret = siem
    inactive, inactive_secret = make_api_client("Inactive", is_active=False)
    fenced, fenced_secret = make_api_client("Fenced", ip_allowlist=["10.0.0.0/8"])
    unknown_secret = "acsec_" + "A" * 43
    attempts = {
        "unknown": ("key-doesnotexist0000000", unknown_secret),
        "wrong_secret": (api_client.client_id, unknown_secret),
        "inactive": (inactive.client_id, inactive_secret),
        "ip_not_allowed": (fenced.client_id, fenced_secret),
    }
    return {
        name: post(
            client,
            "/v1/oauth",
            "",
            HTTP_AUTHORIZATION=basic(client_id, client_secret),
            REMOTE_ADDR="192.0.2.7",
        )
        for name, (client_id, client_secret) in attempts.items()
    }


def test_unknown_wrong_secret_inactive_and_refused_address_look_the_same(
    client, siem, make_api_client
):
    responses = _failures(client, siem, make_api_client)
    seen = {
        (r.status_code, r.content, r["WWW-Authenticate"], r["Cache-Control"])
        for r in responses.values()
    }
    assert len(seen) == 1
    status, content, challenge, cache_control = seen.pop()
    assert status == 401
    assert challenge == 'Basic realm="oauth"'
    assert cache_control == "no-store"
    assert b'"error": "invalid_client"' in content


def test_failed_requests_are_audited_in_the_clients_tenant(client, siem, make_api_client, caplog):
    caplog.set_level(logging.INFO)
    _failures(client, siem, make_api_client)
    events = AuditEvent.objects.filter(action=AuditAction.TOKEN_FAILED).order_by("id")
    assert [(e.details["reason"], e.source_ip) for e in events] == [
        ("wrong_secret", "192.0.2.7"),
        ("inactive", "192.0.2.7"),
        ("ip_not_allowed", "192.0.2.7"),
    ]
    api_client, _ = siem
    assert events[0].actor == api_client.client_id
    assert events[0].client_id == api_client.client_id
    assert events[0].tenant_id == api_client.tenant_id
    # The unknown client has no tenant: it is logged, not audited.
    assert "key-doesnotexist0000000" in caplog.text
    assert "192.0.2.7" in caplog.text


def test_no_secret_is_ever_logged_audited_or_echoed(client, siem, make_api_client, caplog):
    caplog.set_level(logging.DEBUG)
    api_client, secret = siem
    responses = [
        post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret + "x")),
        post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic("key-nobody", secret)),
        # ID and secret swapped, as people do.
        post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(secret, api_client.client_id)),
        post(
            client,
            "/v1/oauth",
            urlencode(
                {"client_id": api_client.client_id, "client_secret": secret, "scope": secret}
            ),
        ),
        post(client, f"/v1/oauth?client_secret={secret}", ""),
        post(client, "/v1/oauth", {"client_id": "x", "client_secret": secret}, content_type=JSON),
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 400, 400, 400]
    assert all(secret.encode() not in r.content for r in responses)
    assert secret not in caplog.text
    for event in AuditEvent.objects.all():
        assert secret not in str(event.details) and secret not in event.actor


def test_the_ip_restriction_lets_listed_addresses_in(client, make_api_client):
    fenced, secret = make_api_client(ip_allowlist=["10.0.0.0/8", "2001:db8::1"])
    auth = basic(fenced.client_id, secret)
    for address in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::1"]:
        response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address)
        assert response.status_code == 200, address
    refused = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth, REMOTE_ADDR="11.0.0.1")
    assert refused.status_code == 401


def test_an_unparseable_ip_restriction_fails_closed(client, make_api_client):
    fenced, secret = make_api_client(ip_allowlist=["not-an-address", "10.0.0.300"])
    response = post(
        client,
        "/v1/oauth",
        "",
        HTTP_AUTHORIZATION=basic(fenced.client_id, secret),
        REMOTE_ADDR="10.0.0.1",
    )
    assert response.status_code == 401


def test_a_client_with_an_empty_ip_restriction_is_reachable_from_anywhere(client, siem):
    api_client, secret = siem
    response = post(
        client,
        "/v1/oauth",
        "",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200


def test_a_deactivated_client_gets_no_token_and_a_reactivated_one_does(client, siem, alice):
    api_client, secret = siem
    auth = basic(api_client.client_id, secret)
    api_client_update(client=api_client, actor=alice, is_active=False)
    assert post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth).status_code == 401
    api_client_update(client=api_client, actor=alice, is_active=True)
    assert post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth).status_code == 200


# grant_type -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path,body,content_type",
    [
        ("/v1/oauth", "grant_type=password", FORM),
        ("/v1/oauth", {"grant_type": "authorization_code"}, JSON),
        ("/v1/oauth?grant_type=refresh_token", "", FORM),
    ],
)
def test_any_other_grant_type_is_unsupported(client, siem, path, body, content_type):
    api_client, secret = siem
    response = post(
        client,
        path,
        body,
        content_type=content_type,
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "path,body",
    [
        # A body that says nothing about the grant.
        ("/v1/oauth", "scope=users%3Aread"),
        ("/v1/oauth", "grant_type="),
        # The query string and the body disagree.
        ("/v1/oauth?grant_type=client_credentials", "grant_type=password"),
    ],
)
def test_a_missing_or_conflicting_grant_type_is_invalid_request(client, siem, path, body):
    api_client, secret = siem
    response = post(client, path, body, HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# scope ----------------------------------------------------------------------


def test_a_requested_scope_narrows_the_token(client, siem):
    api_client, secret = siem
    response = post(
        client,
        "/v1/oauth",
        "grant_type=client_credentials&scope=users%3Aread",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert_token_response(response, scope="users:read")


def test_no_scope_means_every_grant(client, make_api_client):
    api_client, secret = make_api_client(grants=["alerts:write", "alerts:read", "users:read"])
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert_token_response(response, scope="alerts:read alerts:write users:read")


@pytest.mark.parametrize("scope", ["users:write", "users:read alerts:read", "oauth:read", "*"])
def test_a_scope_beyond_the_grants_is_invalid_scope(client, siem, scope):
    api_client, secret = siem
    response = post(
        client,
        "/v1/oauth",
        urlencode({"grant_type": "client_credentials", "scope": scope}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_FAILED)
    assert event.details["reason"] == "invalid_scope"


# Malformed requests ------------------------------------------------------------


MALFORMED = {
    "oversized body": dict(body="grant_type=client_credentials&x=" + "a" * 17_000),
    "invalid JSON": dict(body='{"grant_type": ', content_type=JSON),
    "JSON array": dict(body="[]", content_type=JSON),
    "JSON number as a value": dict(body='{"grant_type": 1}', content_type=JSON),
    "deeply nested JSON": dict(body="[" * 10_000, content_type=JSON),
    "repeated JSON key": dict(
        body='{"grant_type": "client_credentials", "grant_type": "client_credentials"}',
        content_type=JSON,
    ),
    "non-UTF-8 body": dict(body=b"grant_type=client_credentials&scope=\xff\xfe"),
    "non-UTF-8 percent escape": dict(body="grant_type=client_credentials&scope=%ff"),
    "non-UTF-8 query string": dict(path="/v1/oauth?grant_type=%ff"),
    "repeated parameter": dict(body="grant_type=client_credentials&grant_type=client_credentials"),
    "too many parameters": dict(body="&".join(f"p{i}=1" for i in range(100))),
    "plain text": dict(body="grant_type=client_credentials", content_type="text/plain"),
    "multipart": dict(body="--x\r\n\r\n--x--", content_type="multipart/form-data; boundary=x"),
    "XML": dict(body="<grant_type/>", content_type="application/xml"),
    "bad base64": dict(auth="Basic not*base64!"),
    "non-ASCII base64": dict(auth="Basic ünïcode"),
    "Basic without a colon": dict(auth="Basic " + base64.b64encode(b"just-an-id").decode()),
    "Basic that is not UTF-8": dict(auth="Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode()),
    "secret in the query string": dict(path="/v1/oauth?client_secret=acsec_x"),
    "invalid Content-Length": dict(extra={"CONTENT_LENGTH": "lots"}),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_are_invalid_request_never_500(client, siem, case):
    api_client, secret = siem
    response = post(
        client,
        case.get("path", "/v1/oauth"),
        case.get("body", ""),
        content_type=case.get("content_type", FORM),
        HTTP_AUTHORIZATION=case.get("auth", basic(api_client.client_id, secret)),
        **case.get("extra", {}),
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]


def test_an_unsupported_authorization_scheme_is_invalid_client(client, db):
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION="Bearer abc")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "client_id", ["a" * 65, "key-\x00", "kéy", " ", "key-x' OR '1'='1", "\u202e"]
)
def test_odd_client_ids_are_simply_unknown_clients(client, db, client_id):
    form = urlencode({"client_id": client_id, "client_secret": "acsec_" + "A" * 43})
    response = post(client, "/v1/oauth", "grant_type=client_credentials&" + form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_secret_without_a_client_id_is_invalid_request(client, db):
    response = post(client, "/v1/oauth", "grant_type=client_credentials&client_secret=x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_the_database_being_down_is_a_json_503(client, siem, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("oauth.clients.client_and_revocation", broken)
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"]


def test_an_unexpected_error_is_a_json_500_without_details(client, siem, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something internal /path/to/file")

    monkeypatch.setattr("oauth.views.token_issue", broken)
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert b"internal" not in response.content


# last redeemed and queries ------------------------------------------------------


def test_it_sets_last_redeemed(client, siem):
    api_client, secret = siem
    assert api_client.last_redeemed_at is None
    before = timezone.now()
    post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    api_client.refresh_from_db()
    assert api_client.last_redeemed_at >= before
    # Redeeming is not an edit: last modified stays.
    assert api_client.updated_at < before


def test_a_failed_request_does_not_set_last_redeemed(client, siem):
    api_client, secret = siem
    post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret + "x"))
    api_client.refresh_from_db()
    assert api_client.last_redeemed_at is None


def test_a_token_costs_one_select_and_last_redeemed_one_update_per_interval(client, siem, settings):
    settings.OAUTH = {**settings.OAUTH, "LAST_REDEEMED_INTERVAL": 5}
    api_client, secret = siem
    auth = basic(api_client.client_id, secret)
    keys.signing_key()  # the key is loaded once per process, not per request

    with CaptureQueriesContext(connection) as first:
        assert post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth).status_code == 200
    # The write per interval: the clients still there, last redeemed, then
    # the day's token count (an UPDATE, or the first INSERT of the day).
    assert _writes(first)[:5] == [
        "SELECT",
        "SELECT",
        "UPDATE",
        "UPDATE tokendailycount",
        "INSERT tokendailycount",
    ]
    assert [q["sql"].split()[0] for q in second.captured_queries] == ["SELECT"]

    # Once the interval has passed, the next token writes again.
    later_clock = time.monotonic() + 5 * 1.2
    with (
        mock.patch.object(usage.time, "monotonic", return_value=later_clock),
        CaptureQueriesContext(connection) as later,
    ):
        assert post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=auth).status_code == 200
    # With the usage log's rows of the interval (apiclients.usagelog), after
    # the response: the clients still there, then a row per minute, address,
    # agent and outcome (an UPDATE, or the first INSERT of its minute).
    assert _writes(later)[:4] == ["SELECT", "SELECT", "UPDATE", "UPDATE tokendailycount"]
    assert _writes(later)[4:] in (
        ["SELECT", "UPDATE usagelogentry", "INSERT usagelogentry"],
        ["SELECT", "UPDATE usagelogentry"],
    )


def _writes(captured) -> list[str]:
    """The statements, naming the token-count table when they touch it."""
    names = []
    for q in captured.captured_queries:
        verb = q["sql"].split()[0]
        if verb in ("SAVEPOINT", "RELEASE"):
            continue
        table = next((t for t in ("tokendailycount", "usagelogentry") if t in q["sql"]), None)
        names.append(f"{verb} {table}" if table else verb)
    return names


def test_the_token_path_never_touches_the_session(client, siem):
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    assert "csrftoken" not in response.cookies
    assert "Cookie" not in response.get("Vary", "")
