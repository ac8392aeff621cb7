"""The cast, the same in every test:

- alice: Customer Cloud Admin of Acme
- bob: Auditor of Acme
- charlie: member of Acme with no role
- dave: Customer Cloud Admin of Globex (another tenant)
"""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from apiclients import usage, usagelog
from apiclients.accounts import user_create
from apiclients.models import Role, Tenant
from apiclients.services import api_client_create
from config import redis
from config.postgresql.base import breaker as database_breaker
from oauth import coherence, throttle

PASSWORD = "correct horse battery staple"


def _forget_everything():
    coherence.shutdown()
    throttle.clear()
    cache.clear()
    usage.clear()  # token counts not yet written
    usagelog.clear()
    redis.breaker().close()
    if connection.vendor == "postgresql":
        database_breaker().close()


@pytest.fixture(autouse=True)
def _fast_hashing_and_clean_cache(settings, tmp_path):
    # Argon2 is right for production and slow for hundreds of test users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Off unless a test turns it on (tests/oauth/test_client_cache.py): many
    # tests change rows behind the app's back to stage a situation.
    settings.OAUTH = {
        **settings.OAUTH,
        "CLIENT_CACHE": False,
        "SPOOL_DIR": str(tmp_path / "spool"),
    }
    _forget_everything()
    yield
    _forget_everything()


def _user(username, tenant, role):
    user, _ = user_create(username=username, tenant_name=tenant, role=role, password=PASSWORD)
    return user


@pytest.fixture
def alice(db):
    return _user("alice", "Acme", Role.CLOUD_ADMIN)


@pytest.fixture
def bob(db):
    return _user("bob", "Acme", Role.AUDITOR)


@pytest.fixture
def charlie(db):
    return _user("charlie", "Acme", Role.NONE)


@pytest.fixture
def dave(db):
    return _user("dave", "Globex", Role.CLOUD_ADMIN)


@pytest.fixture
def acme(alice) -> Tenant:
    return alice.membership.tenant


@pytest.fixture
def globex(dave) -> Tenant:
    return dave.membership.tenant


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return _signed_in(alice)


@pytest.fixture
def bob_client(bob):
    return _signed_in(bob)


@pytest.fixture
def charlie_client(charlie):
    return _signed_in(charlie)


@pytest.fixture
def dave_client(dave):
    return _signed_in(dave)


@pytest.fixture
def make_api_client(alice):
    """Creates an API client through the real service; returns (client, secret)."""

    def make(name="SIEM export", *, tenant=None, actor=None, **kwargs):
        actor = actor or alice
        tenant = tenant or actor.membership.tenant
        kwargs.setdefault("grants", ["users:read", "audit-log:read"])
        return api_client_create(tenant=tenant, name=name, actor=actor, **kwargs)

    return make


REDIS_KEYS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def redis_keys(settings):
    """Redis as the cache (a database of its own, emptied); returns a function
    that lists every key in it."""
    import os

    import redis

    server = redis.Redis.from_url(REDIS_KEYS_URL, socket_timeout=5)
    try:
        server.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail("Redis must be reachable at 127.0.0.1:6379 in CI")
        pytest.skip("needs Redis at 127.0.0.1:6379")
    server.flushdb()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_KEYS_URL,
        }
    }
    settings.REDIS_URL = REDIS_KEYS_URL
    yield lambda: [key.decode() for key in server.keys("*")]
    server.flushdb()
