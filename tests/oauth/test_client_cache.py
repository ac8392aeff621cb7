"""Clients, revocations and users pages in each process's memory
(oauth.clientcache), kept current through the database (oauth.coherence).

What an admin relies on: once the console has confirmed a reset, a
deactivation, a new IP restriction or a deletion, no worker accepts what was
true before, whatever else (Redis included) it can or cannot reach; the
secret is still checked on every request; a process that cannot hear from
the database stops answering from memory."""

import datetime as dt
import threading
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
from oauth import clientcache, coherence
from tests.conftest import PASSWORD
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


@pytest.fixture
def memory(settings, transactional_db):
    """Memory on; its thread is stopped before the test database is emptied."""
    settings.OAUTH = {**settings.OAUTH, "CLIENT_CACHE": True, "CLIENT_CACHE_LEASE": 1.0}
    coherence.shutdown()
    yield settings
    coherence.shutdown()


def _wait_for_lease():
    deadline = time.monotonic() + 5
    while not coherence.live():
        assert time.monotonic() < deadline, "memory never got its lease"
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
def warm(memory, client, make_api_client):
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


def test_a_token_from_memory_makes_no_query_even_when_last_redeemed_is_due_later(client, warm):
    api_client, secret = warm
    # The first token wrote "last redeemed"; the next ones wait a minute.
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert _token(client, api_client.client_id, secret).status_code == 200
    assert len(queries) == 0
    api_client.refresh_from_db()
    assert api_client.last_redeemed_at is not None


def _reset(api_client, alice):
    api_client_reset_secret(client=api_client, actor=alice)


def _deactivate(api_client, alice):
    api_client_update(client=api_client, actor=alice, is_active=False)


def _restrict_ip(api_client, alice):
    api_client_update(client=api_client, actor=alice, ip_allowlist=["192.0.2.0/24"])


def _delete(api_client, alice):
    api_client_delete(client=api_client, actor=alice)


def _expire(api_client, alice):
    # An expiry reached while the row is in memory: no change is published,
    # the date is checked on every request.
    api_client_update(
        client=api_client, actor=alice, expires_at=timezone.now() + dt.timedelta(seconds=1)
    )
    time.sleep(1.1)


@pytest.mark.parametrize("change", [_reset, _deactivate, _restrict_ip, _delete, _expire])
def test_a_change_is_in_force_when_the_service_returns(client, warm, alice, change):
    api_client, secret = warm

    change(ApiClient.objects.get(pk=api_client.pk), alice)

    assert _token(client, api_client.client_id, secret).status_code == 401


def test_a_rotation_keeps_both_secrets_then_revoking_the_old_one_stops_it(client, warm, alice):
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
    settings.OAUTH = {**settings.OAUTH, "CLIENT_CACHE_MAX_AGE": 0.5}
    api_client, secret = warm
    coherence.shutdown()  # memory starts again with the shorter max age
    _wait_for_lease()
    assert _token(client, api_client.client_id, secret).status_code == 200  # kept for 0.5 s
    ApiClient.objects.filter(pk=api_client.pk).update(is_active=False)  # no signal
    assert _token(client, api_client.client_id, secret).status_code == 200  # from memory

    time.sleep(0.6)

    assert _token(client, api_client.client_id, secret).status_code == 401


def test_a_change_does_not_wait_when_every_process_answers(warm, alice):
    api_client, _ = warm
    started = time.monotonic()
    _reset(ApiClient.objects.get(pk=api_client.pk), alice)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("fault", ["off", "silence"])
def test_a_reset_is_in_force_when_it_returns_with_redis_refused_or_silent(
    client, warm, alice, settings, fault
):
    """Redis plays no part in coherence: cut off from it (refused, or
    silent), the writer still confirms only what is in force."""
    api_client, secret = warm
    proxy = TcpProxy(REDIS)
    proxy.on()
    kept = settings.CACHES, settings.REDIS_URL
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}",
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}"
    try:
        getattr(proxy, fault)()
        started = time.monotonic()
        _reset(ApiClient.objects.get(pk=api_client.pk), alice)
        took = time.monotonic() - started
        refused = _token(client, api_client.client_id, secret)
    finally:
        settings.CACHES, settings.REDIS_URL = kept
        proxy.off()

    assert refused.status_code == 401
    assert took < 1.0


def test_without_the_database_memory_is_not_used(client, warm, settings):
    """A process that cannot hear from the database stops answering from
    memory within one lease, whoever else it can reach."""
    api_client, secret = warm
    assert coherence.live()
    from unittest import mock

    from django.db import OperationalError

    with mock.patch.object(coherence, "_db_now", side_effect=OperationalError("silent")):
        deadline = time.monotonic() + 3
        while coherence.live():
            assert time.monotonic() < deadline, "the lease outlived the database"
            time.sleep(0.02)
        assert clientcache.client_get(api_client.client_id) is None
    ApiClient.objects.filter(pk=api_client.pk).update(is_active=False)  # by hand
    _wait_for_lease()
    # Memory was emptied when the lease lapsed: the change made meanwhile counts.
    assert _token(client, api_client.client_id, secret).status_code == 401


def test_rate_limits_counted_in_memory_are_exact_for_one_worker(client, warm, settings):
    settings.OAUTH = {**settings.OAUTH, "RATE_LIMIT_PER_CLIENT": 4}
    api_client, secret = warm  # its first token counted already

    statuses = [_token(client, api_client.client_id, secret).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]


def test_after_failures_the_right_secret_still_works_from_memory(client, warm, settings):
    settings.OAUTH = {**settings.OAUTH, "FAILURES_PER_CLIENT_AND_IP": 3}
    api_client, secret = warm
    for _ in range(3):
        assert _token(client, api_client.client_id, "acsec_wrong").status_code == 401

    assert _token(client, api_client.client_id, "acsec_wrong").status_code == 429
    assert _token(client, api_client.client_id, secret).status_code == 200


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

    # A new user is in the next page; so is a sign-in.
    user_create(username="erin", tenant_name="Acme", role=Role.AUDITOR, password="p" * 20)
    assert "erin" in [u["username"] for u in _users(client, access_token).json()["users"]]
    signed_in = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert signed_in.status_code == 302
    listed = {u["username"]: u for u in _users(client, access_token).json()["users"]}
    assert listed["bob"]["lastLogin"] is not None


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

    coherence.shutdown()  # a new process: memory starts empty
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
import time
from apiclients.models import ApiClient
from apiclients.services import api_client_reset_secret
from django.contrib.auth import get_user_model
client = ApiClient.objects.get(client_id="{client_id}")
admin = get_user_model().objects.get(username="admin")
started = time.monotonic()
_, secret = api_client_reset_secret(client=client, actor=admin)
print(time.monotonic() - started, time.time(), secret)
"""


def _hammer(url, client_id, secret, stop, seen):
    """Token requests with `secret` until `stop`: (time sent, status)."""
    import requests

    with requests.Session() as http:
        while not stop.is_set():
            sent = time.time()
            seen.append((sent, http.post(url, auth=(client_id, secret), data="").status_code))
            http.close()  # a new connection each time: every worker takes turns


def test_a_reset_a_revocation_and_a_new_user_reach_every_worker_before_they_return(tmp_path):
    """Two gunicorn servers of two workers each, and a writer in a process
    of its own (manage.py shell) that cannot reach Redis."""
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
        with (
            gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server,
            # A second server (another machine, say) sharing PostgreSQL and Redis.
            gunicorn(env, tmp_path / "other.log", workers=2) as other,
        ):
            url = server.url + "/v1/oauth"
            urls = [url, other.url + "/v1/oauth"]
            for each in urls:
                with requests.Session() as http:
                    # Enough requests for both workers to have the client in memory.
                    for _ in range(40):
                        assert http.post(each, auth=(client_id, secret), data="").status_code == 200

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

            # The writer cannot reach Redis (silent, then refused); the
            # workers can. Tokens are asked for with the old secret meanwhile.
            waits, late_tokens = [], []
            proxy = TcpProxy(REDIS)
            proxy.on()
            for fault in (proxy.silence, proxy.off):
                fault()
                writer = {**env, "CACHE_URL": f"redis://127.0.0.1:{proxy.port}/{REDIS_DB + 1}"}
                stop, seen = threading.Event(), []
                hammers = [
                    threading.Thread(target=_hammer, args=(each, client_id, secret, stop, seen))
                    for each in urls
                ]
                for hammer in hammers:
                    hammer.start()
                try:
                    out = manage(writer, "shell", "-c", RESET.format(client_id=client_id))
                    waited, returned_at, new_secret = out.split()[-3:]
                    time.sleep(0.5)
                finally:
                    stop.set()
                    for hammer in hammers:
                        hammer.join()
                waits.append(float(waited))
                late_tokens += [s for sent, s in seen if sent > float(returned_at) and s == 200]
                assert any(s == 200 for _, s in seen), "the old secret never worked"
                secret = new_secret
            proxy.off()
            statuses = {
                requests.post(url, auth=(client_id, "acsec_" + "x" * 43), data="").status_code
            }
    finally:
        drop_database(DATABASE)

    assert revoked == {401}
    assert counts == {2}
    # Refused: 401, or 429 once the failures trip the lockout. Never a token.
    assert statuses <= {401, 429}
    # Not one token for the old secret once the reset had returned.
    assert late_tokens == []
    # Both workers answered at once: the admin did not wait out a lease.
    assert max(waits) < 1.0


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
