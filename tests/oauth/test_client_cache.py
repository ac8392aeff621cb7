"""Clients in each worker's memory (oauth.clientcache), on a real Redis.

What an admin relies on: once the console has confirmed a reset, a
deactivation, a new IP restriction or a deletion, no worker accepts what was
true before; the secret is still checked on every request; without Redis
every request reads the database again."""

import datetime as dt
import time

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apiclients.models import ApiClient
from apiclients.services import (
    api_client_delete,
    api_client_reset_secret,
    api_client_rotate_secret,
    api_client_update,
)
from oauth import clientcache
from tests.hardening.servers import (
    TcpProxy,
    app_env,
    drop_database,
    gunicorn,
    manage,
    recreate_database,
    require_postgres,
)
from tests.oauth.conftest import basic, post

REDIS = ("127.0.0.1", 6379)
REDIS_DB = 12

pytestmark = pytest.mark.django_db(transaction=True)


def _redis_url(host=REDIS[0], port=REDIS[1]) -> str:
    return f"redis://{host}:{port}/{REDIS_DB}"


@pytest.fixture
def redis_cache(settings, transactional_db):
    """Redis as the cache, the client cache on; its thread is stopped before
    the test database is emptied (it may still be writing last redeemed)."""
    try:
        redis.Redis.from_url(_redis_url()).ping()
    except redis.ConnectionError:
        import os

        if os.environ.get("CI"):
            pytest.fail("Redis must be reachable at 127.0.0.1:6379 in CI")
        pytest.skip("needs Redis at 127.0.0.1:6379")
    redis.Redis.from_url(_redis_url()).flushdb()
    yield _use_cache(settings, _redis_url())
    clientcache.shutdown()


def _use_cache(settings, url):
    settings.CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": url}}
    settings.OAUTH_CLIENT_CACHE = True
    settings.OAUTH_CLIENT_CACHE_LEASE = 1.0
    clientcache.shutdown()
    return settings


def _wait_for_lease():
    deadline = time.monotonic() + 5
    while not clientcache.live():
        assert time.monotonic() < deadline, "the client cache never got its lease"
        time.sleep(0.01)


def _token(client, api_client_id, secret, ip="127.0.0.1"):
    return post(
        client,
        "/v1/oauth",
        "grant_type=client_credentials",
        HTTP_AUTHORIZATION=basic(api_client_id, secret),
        REMOTE_ADDR=ip,
    )


@pytest.fixture
def warm(redis_cache, client, make_api_client):
    """A client whose row is in this process's memory."""
    _wait_for_lease()
    api_client, secret = make_api_client("Cached")
    assert _token(client, api_client.client_id, secret).status_code == 200
    return api_client, secret


def test_tokens_come_from_memory_and_the_secret_is_still_checked(client, warm):
    api_client, secret = warm

    with CaptureQueriesContext(connection) as queries:
        statuses = [_token(client, api_client.client_id, secret).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert len(queries) == 0
    assert _token(client, api_client.client_id, "acsec_" + "x" * 43).status_code == 401
    assert _token(client, api_client.client_id, secret[:-1]).status_code == 401


def test_last_redeemed_and_the_token_counts_are_written_off_the_request(client, warm):
    from apiclients.models import TokenDailyCount

    api_client, secret = warm
    ApiClient.objects.filter(pk=api_client.pk).update(last_redeemed_at=None)
    clientcache.forget(api_client.client_id)
    assert _token(client, api_client.client_id, secret).status_code == 200  # loads the row
    # Due again: the last write is long ago as far as this worker knows.
    kept = clientcache._memory.rows[api_client.client_id][0]
    kept.last_redeemed_at = timezone.now() - dt.timedelta(hours=1)

    with CaptureQueriesContext(connection) as queries:
        assert _token(client, api_client.client_id, secret).status_code == 200
    assert len(queries) == 0

    deadline = time.monotonic() + 3
    while True:
        api_client.refresh_from_db()
        counted = TokenDailyCount.objects.filter(client=api_client).first()
        if api_client.last_redeemed_at is not None and counted and counted.count >= 3:
            break
        assert time.monotonic() < deadline, "last redeemed or the counts were never written"
        time.sleep(0.05)


def _reset(api_client, alice):
    api_client_reset_secret(client=api_client, actor=alice)


def _deactivate(api_client, alice):
    api_client_update(client=api_client, actor=alice, is_active=False)


def _restrict_ip(api_client, alice):
    api_client_update(client=api_client, actor=alice, ip_allowlist=["192.0.2.0/24"])


def _delete(api_client, alice):
    api_client_delete(client=api_client, actor=alice)


def _expire(api_client, alice):
    # The date picker's earliest choice is today: the client works through it.
    # Staged through the model, as the service refuses past dates.
    api_client.expires_at = timezone.now()
    api_client.save()


@pytest.mark.parametrize("change", [_reset, _deactivate, _restrict_ip, _delete, _expire])
def test_a_change_is_in_force_when_the_service_returns(client, warm, alice, change):
    api_client, secret = warm

    change(ApiClient.objects.get(pk=api_client.pk), alice)

    assert _token(client, api_client.client_id, secret).status_code == 401


def test_a_rotation_keeps_both_secrets_then_revoking_the_old_one_stops_it(client, warm, alice):
    import datetime as dt

    from apiclients.services import api_client_revoke_previous_secret

    api_client, old = warm
    rotated, new = api_client_rotate_secret(
        client=ApiClient.objects.get(pk=api_client.pk), grace=dt.timedelta(hours=1), actor=alice
    )
    assert _token(client, api_client.client_id, old).status_code == 200
    assert _token(client, api_client.client_id, new).status_code == 200

    api_client_revoke_previous_secret(client=ApiClient.objects.get(pk=api_client.pk), actor=alice)

    assert _token(client, api_client.client_id, old).status_code == 401
    assert _token(client, api_client.client_id, new).status_code == 200


def test_a_change_made_behind_the_apps_back_takes_effect_within_the_max_age(client, warm, settings):
    settings.OAUTH_CLIENT_CACHE_MAX_AGE = 0.5
    api_client, secret = warm
    clientcache.forget(api_client.client_id)
    assert _token(client, api_client.client_id, secret).status_code == 200  # kept for 0.5 s
    ApiClient.objects.filter(pk=api_client.pk).update(is_active=False)  # no signal
    assert _token(client, api_client.client_id, secret).status_code == 200  # from memory

    time.sleep(0.6)

    assert _token(client, api_client.client_id, secret).status_code == 401


def test_a_change_waits_for_a_worker_that_holds_a_lease_but_does_not_answer(warm):
    api_client, _ = warm
    server = redis.Redis.from_url(_redis_url())
    seconds, micros = server.time()
    now_ms = seconds * 1000 + micros // 1000
    _, registry, _ = clientcache.names()
    server.zadd(registry, {"gone-quiet:1:x": now_ms + 600})

    started = time.monotonic()
    clientcache.publish_change(api_client.client_id)
    waited = time.monotonic() - started

    # Until that worker's lease had run out, not a whole extra lease.
    assert 0.5 <= waited < 1.5


def test_a_change_does_not_wait_when_every_worker_answers(warm):
    api_client, _ = warm
    started = time.monotonic()
    clientcache.publish_change(api_client.client_id)
    assert time.monotonic() - started < 0.5


def test_without_redis_every_request_reads_the_database(client, warm, settings):
    """The lease lapses when Redis goes away: memory is dropped and every
    request loads its client again (and a change made meanwhile counts)."""
    api_client, secret = warm
    proxy = TcpProxy(REDIS)
    try:
        proxy.on()
        _use_cache(settings, _redis_url("127.0.0.1", proxy.port))
        _wait_for_lease()
        assert _token(client, api_client.client_id, secret).status_code == 200

        proxy.off()
        deadline = time.monotonic() + 3
        while clientcache.live():
            assert time.monotonic() < deadline, "the lease outlived Redis"
            time.sleep(0.02)
        ApiClient.objects.filter(pk=api_client.pk).update(is_active=False)  # no message
        with CaptureQueriesContext(connection) as queries:
            refused = _token(client, api_client.client_id, secret)
    finally:
        proxy.off()
        _use_cache(settings, _redis_url())

    assert refused.status_code == 401
    assert any("apiclients_apiclient" in q["sql"] for q in queries)


def test_rate_limits_counted_in_memory_are_exact_for_one_worker(client, warm, settings):
    settings.OAUTH_RATE_LIMIT_PER_CLIENT = 4
    api_client, secret = warm  # its first token counted already

    statuses = [_token(client, api_client.client_id, secret).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]


def test_after_failures_the_right_secret_is_refused_without_being_checked(client, warm, settings):
    from unittest import mock

    settings.OAUTH_FAILURES_PER_CLIENT_AND_IP = 3
    api_client, secret = warm
    for _ in range(3):
        assert _token(client, api_client.client_id, "acsec_wrong").status_code == 401

    with mock.patch("apiclients.secrets.secret_matches") as secret_matches:
        refused = _token(client, api_client.client_id, secret)

    assert refused.status_code == 429
    secret_matches.assert_not_called()
    # Another address is not affected.
    assert _token(client, api_client.client_id, secret, ip="192.0.2.99").status_code == 200


def test_a_secret_sent_as_the_client_id_is_in_no_redis_key_or_message(client, warm, settings):
    settings.OAUTH_FAILURES_PER_CLIENT_AND_IP = 3
    api_client, secret = warm
    server = redis.Redis.from_url(_redis_url())
    channel, _, _ = clientcache.names()
    listener = server.pubsub()
    listener.subscribe(channel)
    for _ in range(5):  # swapped, until the lockout is shared
        assert _token(client, secret, api_client.client_id).status_code in (401, 429)

    stored = [key for key in server.keys("*")]
    stored += [
        m for key in stored if server.type(key) == b"zset" for m in server.zrange(key, 0, -1)
    ]
    messages = []
    while (message := listener.get_message(timeout=0.2)) is not None:
        messages.append(message["data"])
    listener.close()
    assert any(b"oauth-fail-pair" in m for m in stored)  # the lockout was recorded
    assert not [m for m in stored + messages if secret.encode() in bytes(m)]


# Bearer APIs -----------------------------------------------------------------------


def _users(client, access_token):
    return client.get("/v1/users", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_a_polled_page_of_users_costs_no_query_until_a_user_changes(client, warm, alice, bob):
    from apiclients.accounts import user_create
    from apiclients.models import Role

    api_client, secret = warm
    access_token = _token(client, api_client.client_id, secret).json()["access_token"]
    first = _users(client, access_token)
    assert first.status_code == 200

    with CaptureQueriesContext(connection) as queries:
        again = _users(client, access_token)
    assert len(queries) == 0
    assert again.content == first.content

    # A new user, a deactivated one, a changed role: each is in the next page.
    user_create(username="erin", tenant_name="Acme", role=Role.AUDITOR, password="p" * 20)
    assert "erin" in [u["username"] for u in _users(client, access_token).json()["users"]]
    bob.is_active = False
    bob.save()
    listed = {u["username"]: u for u in _users(client, access_token).json()["users"]}
    assert listed["bob"]["active"] is False
    alice.membership.role = Role.AUDITOR
    alice.membership.save()
    listed = {u["username"]: u for u in _users(client, access_token).json()["users"]}
    assert listed["alice"]["role"] == Role.AUDITOR


def test_a_revoked_token_and_a_reset_clients_token_stop_at_once(client, warm, alice):
    api_client, secret = warm
    first = _token(client, api_client.client_id, secret).json()["access_token"]
    second = _token(client, api_client.client_id, secret).json()["access_token"]
    assert _users(client, first).status_code == 200
    assert _users(client, second).status_code == 200

    revoked = post(
        client,
        "/v1/oauth/revoke",
        f"token={first}",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert revoked.status_code == 200
    assert _users(client, first).status_code == 401
    assert _users(client, second).status_code == 200

    _reset(ApiClient.objects.get(pk=api_client.pk), alice)
    assert _users(client, second).status_code == 401


def test_revocations_made_before_a_worker_subscribed_are_loaded(client, warm, settings):
    api_client, secret = warm
    access_token = _token(client, api_client.client_id, secret).json()["access_token"]
    assert (
        post(
            client,
            "/v1/oauth/revoke",
            f"token={access_token}",
            HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        ).status_code
        == 200
    )

    _use_cache(settings, _redis_url())  # a new subscription: memory starts empty
    _wait_for_lease()

    assert _users(client, access_token).status_code == 401


# Across processes: gunicorn with two workers -------------------------------------

DATABASE = "client_cache_server"
MAKE_CLIENT = """
from apiclients.accounts import user_create
from apiclients.models import Role
from apiclients.services import api_client_create
user, _ = user_create(
    username="admin", tenant_name="Acme", role=Role.CLOUD_ADMIN, password="p" * 20
)
client, secret = api_client_create(
    tenant=user.membership.tenant, name="Shared", actor=user, grants=["users:read"]
)
print(client.client_id, secret)
"""
RESET = """
import datetime as dt
import time
from apiclients.models import ApiClient
from apiclients.services import api_client_reset_secret
from django.contrib.auth import get_user_model
client = ApiClient.objects.get(client_id="{client_id}")
started = time.monotonic()
api_client_reset_secret(client=client, actor=get_user_model().objects.get(username="admin"))
print(time.monotonic() - started)
"""


def test_a_reset_a_revocation_and_a_new_user_reach_every_worker_before_they_return(tmp_path):
    import requests

    require_postgres()
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB + 1}").flushdb()
    env = app_env(
        DATABASE_URL=recreate_database(DATABASE),
        CACHE_URL=f"redis://127.0.0.1:6379/{REDIS_DB + 1}",
        OAUTH_RATE_LIMIT_PER_CLIENT=0,
        OAUTH_RATE_LIMIT_PER_IP=0,
    )
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        client_id, secret = manage(env, "shell", "-c", MAKE_CLIENT).split()[-2:]
        with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server:
            url = server.url + "/v1/oauth"
            with requests.Session() as http:
                # Enough requests for both workers to have the client in memory.
                for _ in range(40):
                    assert http.post(url, auth=(client_id, secret), data="").status_code == 200

            with requests.Session() as http:
                access_token = http.post(url, auth=(client_id, secret), data="").json()[
                    "access_token"
                ]
            bearer = {"Authorization": f"Bearer {access_token}"}
            users = server.url + "/v1/users"
            assert {requests.get(users, headers=bearer).status_code for _ in range(10)} == {200}
            assert (
                requests.post(
                    server.url + "/v1/oauth/revoke",
                    auth=(client_id, secret),
                    data={"token": access_token},
                ).status_code
                == 200
            )
            revoked = {requests.get(users, headers=bearer).status_code for _ in range(20)}
            with requests.Session() as http:
                fresh = http.post(url, auth=(client_id, secret), data="").json()["access_token"]
            fresh_bearer = {"Authorization": f"Bearer {fresh}"}
            for _ in range(10):  # both workers keep the page
                assert requests.get(users, headers=fresh_bearer).json()["totalCount"] == 1
            manage(env, "add_user", "newcomer", "--tenant=Acme", "--role=auditor")
            counts = {
                requests.get(users, headers=fresh_bearer).json()["totalCount"] for _ in range(20)
            }

            waited = float(
                manage(env, "shell", "-c", RESET.format(client_id=client_id)).split()[-1]
            )

            statuses = set()
            for _ in range(40):
                # New connections: gunicorn's sync workers take turns.
                statuses.add(requests.post(url, auth=(client_id, secret), data="").status_code)
    finally:
        drop_database(DATABASE)

    assert revoked == {401}
    assert counts == {2}
    # Refused: 401, or 429 once the limit on failures trips. Never a token.
    assert 401 in statuses and statuses <= {401, 429}
    # Both workers answered at once: the admin did not wait out a lease.
    assert waited < 1.0


def test_a_new_ip_restriction_stops_issued_tokens_at_once(client, warm, alice):
    api_client, secret = warm
    access_token = _token(client, api_client.client_id, secret).json()["access_token"]
    assert _users(client, access_token).status_code == 200  # from 127.0.0.1

    _restrict_ip(ApiClient.objects.get(pk=api_client.pk), alice)

    assert _users(client, access_token).status_code == 401
    inside = client.get(
        "/v1/users", HTTP_AUTHORIZATION=f"Bearer {access_token}", REMOTE_ADDR="192.0.2.1"
    )
    assert inside.status_code == 200
