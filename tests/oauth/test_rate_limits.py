"""Rate limits and brute-force protection on the token, introspection and
revocation endpoints (oauth.throttle), and failures audited without flooding
the audit log."""

import logging
from unittest import mock
from urllib.parse import urlencode

import pytest

from apiclients.models import AuditAction, AuditEvent
from tests.oauth.conftest import basic, get_token, post

NOW = 1_800_000_000.0  # the start of a minute, a 5-minute and a 10-minute window


@pytest.fixture
def clock():
    """time.time(), moved by hand: every window starts afresh when it moves."""
    now = [NOW]
    with mock.patch("time.time", side_effect=lambda: now[0]):
        yield now


@pytest.fixture
def limits(settings):
    """Small request limits; failures are not limited."""
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_CLIENT": 3}
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_IP": 5}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT_AND_IP": 0}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_IP": 0}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT": 0}
    return settings


@pytest.fixture
def failure_limits(settings):
    """Small failure limits; requests are not limited."""
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_CLIENT": 0}
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_IP": 0}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT_AND_IP": 3}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_IP": 5}
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT": 4}
    return settings


def token(client, client_id, secret, ip="192.0.2.10", path="/v1/oauth", **form):
    return post(
        client,
        path,
        urlencode({"grant_type": "client_credentials", **form}),
        HTTP_AUTHORIZATION=basic(client_id, secret),
        REMOTE_ADDR=ip,
    )


def assert_too_many(response, *, within: int):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == "too_many_requests"
    assert "Retry after" in body["error_description"]
    assert 1 <= int(response["Retry-After"]) <= within
    assert response["RateLimit-Remaining"] == "0"
    assert response["RateLimit-Limit"].isdigit()
    assert response["RateLimit-Policy"].endswith(f";w={within}")


# Requests per client and per address ------------------------------------------


def test_a_client_over_its_limit_gets_429_and_others_do_not(
    client, limits, clock, siem, make_api_client
):
    api_client, secret = siem
    other, other_secret = make_api_client("Other")
    for _ in range(3):
        assert token(client, api_client.client_id, secret, ip="192.0.2.1").status_code == 200

    refused = token(client, api_client.client_id, secret, ip="192.0.2.2")

    assert_too_many(refused, within=60)
    assert token(client, other.client_id, other_secret, ip="192.0.2.3").status_code == 200


def test_the_limit_resets_with_the_window(client, limits, clock, siem):
    api_client, secret = siem
    for _ in range(3):
        token(client, api_client.client_id, secret)
    assert token(client, api_client.client_id, secret).status_code == 429

    clock[0] += 60

    assert token(client, api_client.client_id, secret).status_code == 200


def test_an_address_over_its_limit_gets_429_whatever_the_client(
    client, limits, clock, make_api_client
):
    made = [make_api_client(f"Integration {i}") for i in range(6)]
    statuses = [token(client, c.client_id, s, ip="198.51.100.7").status_code for c, s in made]

    assert statuses == [200, 200, 200, 200, 200, 429]
    c, s = made[-1]
    assert token(client, c.client_id, s, ip="198.51.100.8").status_code == 200


def test_requests_without_credentials_count_against_the_address(client, limits, clock):
    statuses = [
        post(client, "/v1/oauth", "", REMOTE_ADDR="198.51.100.9").status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_malformed_requests_count_against_the_address(client, limits, clock):
    statuses = [
        post(client, "/v1/oauth", "grant_type=password", REMOTE_ADDR="198.51.100.9").status_code
        for _ in range(6)
    ]
    assert statuses == [400] * 5 + [429]


def test_a_token_response_says_how_much_is_left(client, limits, clock, siem):
    api_client, secret = siem
    response = token(client, api_client.client_id, secret)

    assert response.status_code == 200
    # The tighter of the two limits: 3 per client, of which 1 is used.
    assert response["RateLimit-Limit"] == "3"
    assert response["RateLimit-Remaining"] == "2"
    assert response["RateLimit-Policy"] == "3;w=60"
    assert "Retry-After" not in response


def test_introspection_and_revocation_are_limited_apart_from_the_token_endpoint(
    client, limits, clock, make_api_client
):
    api_client, secret = make_api_client(grants=["users:read", "introspection:read"])
    issued = get_token(client, api_client, secret)
    for path in ("/v1/oauth/introspect", "/v1/oauth/revoke"):
        statuses = [
            post(
                client,
                path,
                urlencode({"token": issued}),
                HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429], path


def test_a_limit_of_zero_is_no_limit(client, limits, clock, siem):
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_CLIENT": 0}
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_IP": 0}
    api_client, secret = siem
    statuses = {token(client, api_client.client_id, secret).status_code for _ in range(8)}
    assert statuses == {200}


# Failed authentications ------------------------------------------------------------


def test_guessing_from_one_address_is_answered_429_once_over_the_limit(
    client, failure_limits, clock, siem
):
    api_client, secret = siem
    for _ in range(3):
        assert token(client, api_client.client_id, "acsec_wrong").status_code == 401

    refused = token(client, api_client.client_id, "acsec_wrong")

    assert_too_many(refused, within=300)
    assert "failed authentication" in refused.json()["error_description"]
    # The lock ends with the window.
    clock[0] += 300
    assert token(client, api_client.client_id, "acsec_wrong").status_code == 401


def test_a_lockout_never_refuses_the_correct_secret(client, failure_limits, clock, siem):
    api_client, secret = siem
    for _ in range(20):
        token(client, api_client.client_id, "acsec_wrong", ip="192.0.2.10")
    assert token(client, api_client.client_id, "acsec_wrong").status_code == 429

    # From the attacker's address, and from anywhere else.
    assert token(client, api_client.client_id, secret, ip="192.0.2.10").status_code == 200
    assert token(client, api_client.client_id, secret, ip="198.51.100.1").status_code == 200


def test_unknown_and_known_clients_are_locked_out_alike(client, failure_limits, clock, siem):
    api_client, _ = siem
    responses = {}
    for client_id in (api_client.client_id, "key-doesnotexist0000000"):
        for _ in range(3):
            token(client, client_id, "acsec_wrong", ip="203.0.113.5")
        responses[client_id] = token(client, client_id, "acsec_wrong", ip="203.0.113.5")
    seen = {(r.status_code, r.content) for r in responses.values()}
    assert len(seen) == 1
    assert seen.pop()[0] == 429


def test_made_up_client_ids_from_one_address_lock_out_no_real_client(
    client, failure_limits, clock, make_api_client
):
    for i in range(50):
        token(client, f"key-madeup{i:013d}", "acsec_wrong", ip="203.0.113.6")
    # A client created afterwards, calling from that same address.
    c, s = make_api_client("Created afterwards")
    assert token(client, c.client_id, s, ip="203.0.113.6").status_code == 200
    assert token(client, c.client_id, s, ip="203.0.113.7").status_code == 200
    # The guessing address itself stays slowed down.
    assert (
        token(client, "key-madeup9999999999999", "acsec_wrong", ip="203.0.113.6").status_code == 429
    )


def test_guessing_spread_over_many_addresses_is_answered_429_everywhere_but_the_secret_works(
    client, failure_limits, clock, siem
):
    api_client, secret = siem
    for i in range(4):
        ip = f"203.0.113.{i + 20}"
        assert token(client, api_client.client_id, "acsec_wrong", ip=ip).status_code == 401

    # A fifth address guessing is told nothing more...
    assert token(client, api_client.client_id, "acsec_wrong", ip="203.0.113.50").status_code == 429
    # ...while the integration goes on working, from anywhere.
    assert token(client, api_client.client_id, secret, ip="192.0.2.10").status_code == 200
    assert token(client, api_client.client_id, secret, ip="203.0.113.51").status_code == 200


def test_failed_introspection_counts_as_a_guess_too(client, failure_limits, clock, siem):
    api_client, secret = siem
    for _ in range(3):
        response = post(
            client,
            "/v1/oauth/introspect",
            urlencode({"token": "x"}),
            HTTP_AUTHORIZATION=basic(api_client.client_id, "acsec_wrong"),
            REMOTE_ADDR="192.0.2.10",
        )
        assert response.status_code == 401
    assert token(client, api_client.client_id, "acsec_wrong").status_code == 429


# The audit log ---------------------------------------------------------------------


def failures():
    return list(AuditEvent.objects.filter(action=AuditAction.TOKEN_FAILED).order_by("id"))


def test_repeated_failures_are_audited_once_per_interval_with_a_count(client, limits, clock, siem):
    # Nothing refused: only the audit log.
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_CLIENT": 0}
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_IP": 0}
    api_client, _ = siem
    for _ in range(25):
        assert token(client, api_client.client_id, "acsec_wrong").status_code == 401

    events = failures()
    assert len(events) == 1
    assert events[0].details == {"reason": "wrong_secret", "endpoint": "token"}

    clock[0] += 600
    token(client, api_client.client_id, "acsec_wrong")

    events = failures()
    assert len(events) == 2
    assert events[1].details == {
        "reason": "wrong_secret",
        "endpoint": "token",
        "suppressed_failures": 24,
    }
    assert events[1].source_ip == "192.0.2.10"


def test_each_address_is_audited_apart(client, clock, siem):
    api_client, _ = siem
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.1"):
        token(client, api_client.client_id, "acsec_wrong", ip=ip)
    assert [e.source_ip for e in failures()] == ["192.0.2.1", "192.0.2.2"]


def test_a_lockout_is_audited_once_per_interval(client, failure_limits, clock, siem):
    # The lock outlasts an audit interval.
    failure_limits.OAUTH = {**failure_limits.OAUTH, "FAILURE_WINDOW": 1200}
    api_client, secret = siem
    for _ in range(3):
        token(client, api_client.client_id, "acsec_wrong")
    for _ in range(5):
        assert token(client, api_client.client_id, "acsec_wrong").status_code == 429
    clock[0] += 600
    for _ in range(5):
        assert token(client, api_client.client_id, "acsec_wrong").status_code == 429

    events = failures()
    assert [e.details["reason"] for e in events] == ["wrong_secret", "too_many_failures"]
    assert events[1].details["suppressed_failures"] == 2 + 5
    assert events[1].client_id == api_client.client_id
    assert events[1].tenant_id == api_client.tenant_id


def test_unknown_clients_are_logged_once_per_interval(client, db, limits, clock, caplog):
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_CLIENT": 0}
    limits.OAUTH = {**limits.OAUTH, "RATE_LIMIT_PER_IP": 0}
    caplog.set_level(logging.WARNING, logger="oauth")
    for _ in range(20):
        token(client, "key-doesnotexist0000000", "acsec_wrong")
    clock[0] += 600
    token(client, "key-doesnotexist0000000", "acsec_wrong")

    lines = [r.getMessage() for r in caplog.records if "unknown client" in r.getMessage()]
    assert len(lines) == 2
    assert "19 more since the last report" in lines[1]


# The cache unavailable ------------------------------------------------------------


def test_without_the_cache_tokens_are_still_issued_and_failures_audited(
    client, failure_limits, siem, caplog
):
    from redis.exceptions import ConnectionError as RedisDown

    from oauth import throttle

    api_client, secret = siem
    down = mock.Mock(side_effect=RedisDown("Connection refused"))
    caplog.set_level(logging.ERROR, logger="oauth")
    with (
        mock.patch.object(throttle.ratelimit, "count_many", down),
        mock.patch.object(throttle.ratelimit, "hit", down),
        mock.patch.object(throttle, "_last_warning", [float("-inf")]),
    ):
        ok = token(client, api_client.client_id, secret)
        wrong = [token(client, api_client.client_id, "acsec_wrong").status_code for _ in range(5)]

    assert ok.status_code == 200
    assert "RateLimit-Limit" not in ok
    assert wrong == [401] * 5  # the secret is still checked; nothing is locked out
    assert len(failures()) == 5  # nothing to aggregate with: every one is written
    outage = [r for r in caplog.records if "Rate limits are not enforced" in r.getMessage()]
    assert len(outage) == 1  # once a minute, not once a request
