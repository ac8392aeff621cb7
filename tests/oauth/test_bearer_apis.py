import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apiclients.accounts import user_create
from apiclients.models import AuditEvent, Role
from apiclients.services import api_client_delete, api_client_reset_secret, api_client_update
from oauth import keys
from tests.oauth.conftest import basic, bearer, get_token, post


@pytest.fixture
def token(client, siem):
    api_client, secret = siem
    return get_token(client, api_client, secret)


def _mint(siem, settings, *, key=None, kid=None, headers=None, **overrides) -> str:
    """A token signed like ours, with claims changed."""
    api_client, _ = siem
    signing = keys.signing_key()
    now = int(time.time())
    claims = {
        "iss": settings.BASE_URL,
        "sub": api_client.client_id,
        "client_id": api_client.client_id,
        "aud": settings.BASE_URL + "/v1",
        "iat": now,
        "exp": now + 900,
        "jti": "minted-jti-0000000001",
        "scope": "users:read audit-log:read",
        "tid": str(api_client.tenant_id),
        "sgen": api_client.secret_generation,
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(
        claims,
        key or signing.private_key,
        algorithm="ES256",
        headers=headers or {"kid": kid or signing.kid, "typ": "at+jwt"},
    )


def assert_invalid_token(response):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert response.json()["error"] == "invalid_token"


# /v1/users -------------------------------------------------------------------


def test_the_documented_users_request_lists_the_tenants_users(
    client, token, alice, bob, charlie, dave
):
    response = client.get("/v1/users?active=true&blocked=false&pageSize=100", **bearer(token))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert [u["username"] for u in body["users"]] == ["alice", "bob", "charlie"]
    assert body["totalCount"] == 3
    assert body["page"] == 1 and body["pageSize"] == 100
    alice_row = body["users"][0]
    assert alice_row["role"] == "cloud-admin"
    assert alice_row["active"] is True and alice_row["blocked"] is False
    assert alice_row["userId"] == str(alice.pk)
    assert "password" not in alice_row


def test_the_crashplan_path_serves_the_same_list(client, token, alice):
    response = client.get("/api/v3/users?active=true&blocked=false&pageSize=100", **bearer(token))
    assert response.status_code == 200
    assert [u["username"] for u in response.json()["users"]] == ["alice"]


def test_active_and_blocked_filter_on_whether_a_user_may_sign_in(client, token, alice, bob):
    bob.is_active = False
    bob.save()
    names = lambda query: [  # noqa: E731
        u["username"] for u in client.get("/v1/users" + query, **bearer(token)).json()["users"]
    ]
    assert names("") == ["alice", "bob"]
    assert names("?active=true") == ["alice"]
    assert names("?active=false") == ["bob"]
    assert names("?blocked=true") == ["bob"]
    assert names("?blocked=false&active=TRUE") == ["alice"]


def test_users_are_paged(client, token, alice):
    for i in range(4):
        user_create(username=f"user{i}", tenant_name="Acme", role=Role.NONE, password="x")
    page2 = client.get("/v1/users?pageSize=2&page=2", **bearer(token)).json()
    assert [u["username"] for u in page2["users"]] == ["user1", "user2"]
    assert page2["totalCount"] == 5
    beyond = client.get("/v1/users?pageSize=2&page=9", **bearer(token)).json()
    assert beyond["users"] == [] and beyond["totalCount"] == 5


@pytest.mark.parametrize(
    "query",
    ["pageSize=501", "pageSize=0", "pageSize=ten", "page=0", "page=-1", "active=yes", "blocked=1"],
)
def test_bad_parameters_are_a_json_400(client, token, query):
    response = client.get("/v1/users?" + query, **bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_another_tenants_users_are_never_listed(client, make_api_client, dave, alice):
    globex_client, secret = make_api_client("Globex SIEM", actor=dave)
    token = get_token(client, globex_client, secret)
    body = client.get("/v1/users", **bearer(token)).json()
    assert [u["username"] for u in body["users"]] == ["dave"]


# Authentication -------------------------------------------------------------


def test_no_credentials_get_a_bearer_challenge(client, db):
    response = client.get("/v1/users")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"] == "invalid_token"


def test_basic_authentication_is_refused(client, siem):
    api_client, secret = siem
    response = client.get("/v1/users", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert_invalid_token(response)


@pytest.mark.parametrize(
    "make_token",
    [
        lambda s, st: "not.a.jwt",
        lambda s, st: "",
        lambda s, st: _mint(s, st, exp=int(time.time()) - 1, iat=int(time.time()) - 901),
        lambda s, st: _mint(s, st, iss="https://evil.example.com"),
        lambda s, st: _mint(s, st, aud="https://other.example.com/v1"),
        lambda s, st: _mint(s, st, tid="00000000-0000-0000-0000-000000000000"),
        lambda s, st: _mint(s, st, sgen=None),
        lambda s, st: _mint(s, st, sgen="1"),
        lambda s, st: _mint(s, st, headers={"kid": keys.signing_key().kid}),
        lambda s, st: _mint(s, st, kid="unknown-kid"),
        lambda s, st: _mint(s, st, key=ec.generate_private_key(ec.SECP256R1())),
        lambda s, st: jwt.encode({"sub": "x"}, None, algorithm="none"),
        lambda s, st: jwt.encode({"sub": "x"}, "secret", algorithm="HS256"),
    ],
    ids=[
        "garbage",
        "empty",
        "expired",
        "wrong issuer",
        "wrong audience",
        "another tenant",
        "no secret generation",
        "secret generation as a string",
        "not an access token (typ)",
        "unknown kid",
        "forged with another key",
        "alg none",
        "HS256",
    ],
)
def test_invalid_tokens_are_refused(client, siem, settings, make_token):
    response = client.get("/v1/users", **bearer(make_token(siem, settings)))
    assert_invalid_token(response)


def test_a_tampered_token_is_refused(client, token):
    header, payload, signature = token.split(".")
    forged_payload = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    response = client.get("/v1/users", **bearer(f"{header}.{forged_payload}.{signature}"))
    assert_invalid_token(response)


def test_a_minted_token_with_the_right_claims_is_accepted(client, siem, settings):
    # The control for the test above: the mint itself is sound.
    response = client.get("/v1/users", **bearer(_mint(siem, settings)))
    assert response.status_code == 200


def test_a_token_for_another_issuer_base_url_is_refused(client, token, settings):
    settings.BASE_URL = "https://moved.example.com"
    assert_invalid_token(client.get("/v1/users", **bearer(token)))


def test_a_token_issued_before_a_reset_is_refused_after_it(client, siem, alice):
    api_client, old_secret = siem
    token = get_token(client, api_client, old_secret)
    assert client.get("/v1/users", **bearer(token)).status_code == 200

    _, new_secret = api_client_reset_secret(client=api_client, actor=alice)

    assert_invalid_token(client.get("/v1/users", **bearer(token)))
    refused = post(
        client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, old_secret)
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    new_token = get_token(client, api_client, new_secret)
    assert client.get("/v1/users", **bearer(new_token)).status_code == 200


def test_a_token_of_a_deactivated_client_is_refused(client, siem, token, alice):
    api_client, _ = siem
    api_client_update(client=api_client, actor=alice, is_active=False)
    assert_invalid_token(client.get("/v1/users", **bearer(token)))


def test_a_token_of_a_deleted_client_is_refused(client, siem, token, alice):
    api_client, _ = siem
    api_client_delete(client=api_client, actor=alice)
    assert_invalid_token(client.get("/v1/users", **bearer(token)))


def test_a_missing_scope_is_403_insufficient_scope(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret, scope="audit-log:read")
    response = client.get("/v1/users", **bearer(token))
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="users:read"'
    )
    assert response.json()["error"] == "insufficient_scope"
    assert client.get("/v1/audit-log", **bearer(token)).status_code == 200


def test_a_grant_removed_in_the_console_leaves_issued_tokens_at_once(client, siem, token, alice):
    api_client, _ = siem
    api_client_update(client=api_client, actor=alice, grants=["audit-log:read"])
    assert client.get("/v1/users", **bearer(token)).status_code == 403
    assert client.get("/v1/audit-log", **bearer(token)).status_code == 200


def test_the_apis_answer_only_get(client, token):
    response = client.post("/v1/users", **bearer(token))
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


def test_a_bearer_request_costs_one_query_for_authentication(client, token, alice):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/v1/users?pageSize=100", **bearer(token))
    assert response.status_code == 200
    # One for the client (with the revocation check inside it), one for the page
    # (with its total).
    assert len(queries.captured_queries) == 2, [q["sql"] for q in queries.captured_queries]
    assert "oauth_revokedtoken" in queries.captured_queries[0]["sql"]


# /v1/audit-log ------------------------------------------------------------------


def test_the_audit_log_pages_newest_first_with_a_cursor(client, siem, make_api_client, token):
    for i in range(4):
        make_api_client(f"client {i}")
    response = client.get("/v1/audit-log?pageSize=2", **bearer(token))
    assert response.status_code == 200
    first = response.json()
    assert [e["clientName"] for e in first["events"]] == ["client 3", "client 2"]
    second = client.get(
        f"/v1/audit-log?pageSize=2&cursor={first['nextCursor']}", **bearer(token)
    ).json()
    assert [e["clientName"] for e in second["events"]] == ["client 1", "client 0"]
    third = client.get(
        f"/v1/audit-log?pageSize=2&cursor={second['nextCursor']}", **bearer(token)
    ).json()
    assert [e["clientName"] for e in third["events"]] == ["SIEM export"]
    assert third["nextCursor"] is None
    event = third["events"][0]
    assert event["action"] == "client.created"
    assert event["actor"] == "alice"
    assert set(event) == {
        "id",
        "time",
        "action",
        "actor",
        "sourceIp",
        "clientId",
        "clientName",
        "details",
    }


def test_the_audit_log_includes_failed_token_requests(client, siem, token):
    api_client, secret = siem
    post(
        client,
        "/v1/oauth",
        "",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret + "x"),
        REMOTE_ADDR="198.51.100.4",
    )
    body = client.get("/v1/audit-log?action=token.failed", **bearer(token)).json()
    assert [(e["actor"], e["sourceIp"]) for e in body["events"]] == [
        (api_client.client_id, "198.51.100.4")
    ]


def test_the_audit_log_filters(client, siem, make_api_client, token):
    other, _ = make_api_client("other")
    by_client = client.get(f"/v1/audit-log?clientId={other.client_id}", **bearer(token)).json()
    assert [e["clientName"] for e in by_client["events"]] == ["other"]
    future = client.get("/v1/audit-log?since=2999-01-01T00:00:00Z", **bearer(token)).json()
    assert future["events"] == []
    past = client.get("/v1/audit-log?until=2000-01-01T00:00:00", **bearer(token)).json()
    assert past["events"] == []


@pytest.mark.parametrize(
    "query",
    [
        "cursor=nonsense",
        "cursor=WzEsMl0",
        "action=client.exploded",
        "since=yesterday",
        "pageSize=501",
    ],
)
def test_bad_audit_log_parameters_are_a_json_400(client, token, query):
    response = client.get("/v1/audit-log?" + query, **bearer(token))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_another_tenants_audit_events_are_never_listed(client, siem, make_api_client, dave):
    make_api_client("Globex secret project", actor=dave)
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    events = client.get("/v1/audit-log", **bearer(token)).json()["events"]
    assert events and all(e["clientName"] != "Globex secret project" for e in events)
    assert AuditEvent.objects.filter(client_name="Globex secret project").exists()


def test_the_audit_log_needs_its_scope(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret, scope="users:read")
    response = client.get("/v1/audit-log", **bearer(token))
    assert response.status_code == 403
    assert 'scope="audit-log:read"' in response["WWW-Authenticate"]


def test_an_ip_restriction_added_later_stops_tokens_already_issued(client, siem, token, alice):
    api_client, _ = siem
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/v1/users", **bearer(token), **outside).status_code == 200

    api_client_update(client=api_client, actor=alice, ip_allowlist=["192.0.2.0/24"])

    refused = client.get("/v1/users", **bearer(token), **outside)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    # The same token from an allowed address still works, on every API.
    inside = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/v1/users", **bearer(token), **inside).status_code == 200
    assert client.get("/v1/audit-log", **bearer(token), **inside).status_code == 200
    assert client.get("/v1/audit-log", **bearer(token), **outside).status_code == 401


def test_the_restriction_at_use_sees_the_client_behind_a_trusted_proxy(
    client, siem, token, alice, settings
):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    api_client, _ = siem
    api_client_update(client=api_client, actor=alice, ip_allowlist=["192.0.2.10"])
    via_proxy = {"REMOTE_ADDR": "127.0.0.1"}
    allowed = client.get(
        "/v1/users", **bearer(token), **via_proxy, HTTP_X_FORWARDED_FOR="192.0.2.10"
    )
    assert allowed.status_code == 200
    other = client.get("/v1/users", **bearer(token), **via_proxy, HTTP_X_FORWARDED_FOR="192.0.2.11")
    assert other.status_code == 401


@pytest.mark.django_db
def test_audit_log_takes_any_utc_offset_python_accepts(client, make_api_client):
    """PostgreSQL refuses offsets past 15:59; they are sent in UTC."""
    from oauth.clients import client_record
    from oauth.tokens import token_issue

    api_client, _ = make_api_client("SIEM", grants=["audit-log:read"])
    record = client_record(api_client.client_id)
    token = token_issue(client=record, generation=1, scopes=["audit-log:read"]).access_token
    r = client.get(
        "/v1/audit-log",
        {"until": "2030-11-30T18:11:24-22:17", "since": "0247-11-30T18:11:24+23:59"},
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert r.status_code == 200
    assert [e["action"] for e in r.json()["events"]] == ["client.created"]
