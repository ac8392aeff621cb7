"""API clients kept in each worker's memory, coherent with the database.

Why: a token request that reads its client from PostgreSQL (and counts
itself in Redis) spends most of its time waiting on those round trips; with
sync workers, a worker that waits serves nobody (bench/run --floor measures
it). A client's row changes rarely (an admin's edit, reset, rotation,
deletion), so each process keeps the rows it has loaded, and changes reach
every process before the console confirms them.

How it stays correct, on Redis (the shared cache):

- Each process runs one background thread, subscribed to a Redis channel.
  Every change to a client (post_save / post_delete, once committed) is
  published there; the thread drops that client and acknowledges.
- A lease says the subscription is alive. Every RENEW seconds the thread
  sends PING down the subscription; messages arrive in order, so its PONG
  proves that everything published before the PING has been applied. The
  process may then use its memory until LEASE seconds after that PING was
  sent, and registers that deadline (on Redis's clock) in a sorted set.
- The writer, once its change has committed, publishes it and waits until
  every process with an unexpired lease has acknowledged, or until that
  lease has run out (a process that vanished or lost Redis). Only then does
  the console answer. So once an admin sees "Secret reset", no worker
  anywhere accepts the old secret; a silent worker delays the answer by at
  most LEASE seconds.
- Without a lease (Redis unreachable, the thread not started yet, locmem
  cache, OAUTH_CLIENT_CACHE=false) every request loads its client from the
  database, as before. Losing the lease empties the memory.
- A change made behind the app's back (SQL by hand, QuerySet.update()) sends
  no message: each row is reloaded at least every OAUTH_CLIENT_CACHE_MAX_AGE
  seconds, so it takes effect within that time.
- A row read while a change was being applied is not kept (an epoch counter
  moves on every change), so a row read just before a commit cannot outlive
  the change's message.

Only what the checks need is kept (oauth.clients.client_row's columns); the
secret's digest, never the secret. Every request still compares the secret
against the digest in constant time, and checks status, expiry and IP
restriction, on the current row.
"""

import functools
import logging
import os
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models.base import ModelState
from django.utils import timezone

from apiclients.models import ApiClient

logger = logging.getLogger("oauth")


@functools.cache
def _names(prefix: str, db: int) -> tuple[str, str, str]:
    # Channels are not per database in Redis: the database number keeps
    # deployments that share a server apart.
    return (
        f"{prefix}apiclients:client-changes:db{db}",
        f"{prefix}apiclients:client-cache-leases",
        f"{prefix}apiclients:client-change-acks:",
    )


def names() -> tuple[str, str, str]:
    """(channel, lease registry, acknowledgement key prefix)."""
    from django.core.cache import caches

    cache = caches["default"]
    db = _redis().connection_pool.connection_kwargs.get("db", 0)
    return _names(cache.make_key(""), db)


def _redis():
    """The redis-py client of the default cache, or None when it is not Redis."""
    from django.core.cache import caches

    from config.cache import RedisCache

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return None
    return cache._cache.get_client(None, write=True)


class _Memory:
    def __init__(self):
        self.lock = threading.Lock()
        # client_id -> (row, time.monotonic() after which it is reloaded)
        self.rows: dict[str, tuple[ApiClient, float]] = {}
        # jti -> when the token expires anyway (Unix time)
        self.revoked: dict[str, float] = {}
        # tenant id -> users epoch; page key -> (page, epoch, expires)
        self.users_epochs: dict[str, int] = {}
        self.pages: dict[tuple, tuple[object, int, float]] = {}
        # client pk -> when it was last redeemed, not yet written
        self.redeemed_pending: dict[int, object] = {}
        self.epoch = 0
        self.lease_until = 0.0  # time.monotonic()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None
        self.worker = ""
        self.stop = threading.Event()

    def drop_all(self) -> None:
        with self.lock:
            self.epoch += 1
            self.rows.clear()
            self.revoked.clear()
            self.pages.clear()


_memory = _Memory()


def enabled() -> bool:
    return settings.OAUTH_CLIENT_CACHE and _redis() is not None


def live() -> bool:
    """Whether this process may serve clients from memory now (starting the
    background thread on first use in each process)."""
    memory = _memory
    if memory.pid != os.getpid():
        _start()
    return time.monotonic() < memory.lease_until and settings.OAUTH_CLIENT_CACHE


def epoch() -> int:
    return _memory.epoch


def cached(client_id: str) -> ApiClient | None:
    """A copy of the client as last loaded, while the lease holds."""
    if not live():
        return None
    kept = _memory.rows.get(client_id)
    if kept is None or time.monotonic() > kept[1]:
        return None
    return _copy(kept[0])


def remember(client: ApiClient, read_at_epoch: int) -> None:
    """Keeps a row loaded from the database, unless a change was applied
    since the read began (`read_at_epoch`) or the lease has lapsed."""
    memory = _memory
    with memory.lock:
        now = time.monotonic()
        if memory.epoch == read_at_epoch and now < memory.lease_until:
            expires = now + settings.OAUTH_CLIENT_CACHE_MAX_AGE
            memory.rows[client.client_id] = (_copy(client), expires)


def redeemed(client_id: str, at) -> None:
    """Last redeemed moved on (oauth.clients.client_mark_redeemed)."""
    kept = _memory.rows.get(client_id)
    if kept is not None:
        kept[0].last_redeemed_at = at


def redeemed_later(client_id: str, client_pk: int, at) -> bool:
    """Leaves writing last redeemed (and moving the token counts) to the
    background thread, within a second; False when there is no thread to
    do it (then the caller writes)."""
    if not live():
        return False
    redeemed(client_id, at)
    with _memory.lock:
        _memory.redeemed_pending[client_pk] = at
    return True


def _redeemed_flush() -> None:
    """The writes left by redeemed_later, and the token counts buffered in
    this process (apiclients.usage), from the background thread."""
    from django.db import connections

    from apiclients import usage
    from oauth.clients import redeemed_write

    with _memory.lock:
        pending, _memory.redeemed_pending = _memory.redeemed_pending, {}
    if not pending and not usage.buffer_due():
        return
    try:
        if usage.buffer_due():
            usage.buffer_flush()
        for client_pk, at in pending.items():
            redeemed_write(client_pk, at)
    except Exception:
        logger.exception("Could not write last redeemed; it is retried")
        with _memory.lock:
            for client_pk, at in pending.items():
                _memory.redeemed_pending.setdefault(client_pk, at)
        connections.close_all()  # this thread's own


def forget(client_id: str) -> None:
    memory = _memory
    with memory.lock:
        memory.epoch += 1
        memory.rows.pop(client_id, None)


def _copy(row: ApiClient) -> ApiClient:
    # Each request gets its own instance (it sets attributes on it).
    copy = ApiClient.__new__(ApiClient)
    copy.__dict__.update(row.__dict__)
    state = copy._state = ModelState()
    state.adding, state.db = False, row._state.db
    return copy


# Writers ---------------------------------------------------------------------


def client_changed(client_id: str) -> None:
    """A client's row is being changed (or deleted): drop it here at once,
    and once the transaction commits, from every process (publish_change)."""
    forget(client_id)
    if enabled():
        transaction.on_commit(lambda: publish_change(client_id))


# Pages of a tenant's users (oauth.api) -------------------------------------------
#
# The same guarantee for the users API: a page is kept in memory with the
# tenant's users epoch it was read at; any change to a user or a membership of
# the tenant moves the epoch in every process before it is confirmed.

_PAGES_MAX = 512


def users_epoch(tenant_id) -> int:
    return _memory.users_epochs.get(str(tenant_id), 0)


def page_get(key: tuple, tenant_id) -> object | None:
    """A page kept by page_put, while it is current."""
    if not live():
        return None
    kept = _memory.pages.get(key)
    if kept is None:
        return None
    value, epoch_at, expires = kept
    if epoch_at != users_epoch(tenant_id) or time.monotonic() > expires:
        return None
    return value


def page_put(key: tuple, tenant_id, read_at_epoch: int, value: object) -> None:
    """Keeps a page read from the database, unless the tenant's users
    changed since the read began or the lease has lapsed."""
    memory = _memory
    with memory.lock:
        now = time.monotonic()
        if users_epoch(tenant_id) != read_at_epoch or now >= memory.lease_until:
            return
        if len(memory.pages) >= _PAGES_MAX:
            memory.pages.pop(next(iter(memory.pages)))
        expires = now + settings.OAUTH_CLIENT_CACHE_MAX_AGE
        memory.pages[key] = (value, read_at_epoch, expires)


def users_forget(tenant_id) -> None:
    memory = _memory
    with memory.lock:
        tenant = str(tenant_id)
        memory.users_epochs[tenant] = memory.users_epochs.get(tenant, 0) + 1


def users_changed(tenant_id) -> None:
    """A user or membership of the tenant is being changed: its pages are
    dropped here at once, and on commit in every process."""
    users_forget(tenant_id)
    if enabled():
        tenant = str(tenant_id)

        def publish():
            users_forget(tenant)
            _publish(f"users {tenant}", f"a change of users of tenant {tenant}")

        transaction.on_commit(publish)


_PUBLISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('PUBLISH', KEYS[1], ARGV[1])
local live = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf', 'WITHSCORES')
table.insert(live, 1, now)
return live
"""

_ACKED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local acked = redis.call('SMEMBERS', KEYS[1])
table.insert(acked, 1, now)
return acked
"""


def publish_change(client_id: str) -> None:
    """Tells every process that `client_id` changed, and returns once each
    one with a lease has dropped it (or its lease has run out)."""
    forget(client_id)
    _publish(f"client {client_id}", f"a change of client {client_id}")


def publish_revocation(jti: str, expires: int) -> None:
    """Tells every process that the token `jti` (valid until `expires`,
    a Unix time) is revoked, and returns once each one knows."""
    revoked_learned(jti, expires)
    if enabled():
        _publish(f"revoke {expires} {jti}", "a token revocation")


def revoked_learned(jti: str, expires: float) -> None:
    with _memory.lock:
        revoked = _memory.revoked
        if len(revoked) >= 10_000:
            # Tokens that have expired are refused anyway.
            now = time.time()
            _memory.revoked = revoked = {j: e for j, e in revoked.items() if e > now}
        revoked[jti] = expires


def revoked(jti: str) -> bool:
    """Whether a token was revoked, as this process knows while it holds the
    lease (it loads the revocations when it subscribes, and hears of every
    later one before the revocation endpoint answers)."""
    return jti in _memory.revoked


def _publish(body: str, what: str) -> None:
    from django.core.cache import caches

    from config.cache import CACHE_ERRORS, script_run

    cache = caches["default"]
    channel, registry, acks = names()
    nonce = uuid.uuid4().hex
    try:
        reply = script_run(cache, _PUBLISH, [channel, registry], [f"{nonce} {body}"])
    except CACHE_ERRORS as exc:
        # Nobody can renew a lease without Redis either, so waiting out one
        # lease is enough for every process to have stopped using memory.
        logger.error(
            "Could not publish %s (%s); waiting %ss for every worker's lease to run out",
            what,
            exc,
            settings.OAUTH_CLIENT_CACHE_LEASE,
        )
        time.sleep(settings.OAUTH_CLIENT_CACHE_LEASE)
        return
    now = int(reply[0])
    deadlines = {reply[i]: int(float(reply[i + 1])) for i in range(1, len(reply), 2)}
    give_up = time.monotonic() + settings.OAUTH_CLIENT_CACHE_LEASE + 1
    pause = 0.0005
    while deadlines and time.monotonic() < give_up:
        deadlines = {w: d for w, d in deadlines.items() if d > now}
        if not deadlines:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
        try:
            reply = script_run(cache, _ACKED, [acks + nonce], [])
        except CACHE_ERRORS:
            continue
        now = int(reply[0])
        for worker in reply[1:]:
            deadlines.pop(worker, None)
    if deadlines:
        logger.error("Workers %s did not confirm %s", list(deadlines), what)


_LOCKOUT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PUBLISH', KEYS[2], 'lock ' .. ARGV[2] .. ' ' .. ARGV[1])
"""


def publish_lockout(key: str, until: float) -> None:
    """A failure limit was reached (oauth.throttle): every worker stops
    serving that address or client from memory until `until` (time.time()).
    Kept in a sorted set too, for workers that subscribe later."""
    if not enabled():
        return
    from django.core.cache import caches

    from config.cache import CACHE_ERRORS, script_run

    channel, _, _ = names()
    try:
        script_run(caches["default"], _LOCKOUT, [_lockouts(), channel], [key, until, time.time()])
    except CACHE_ERRORS as exc:
        logger.warning("Could not share a lockout: %s", exc)


def _lockouts() -> str:
    channel, _, _ = names()
    return channel.replace("client-changes", "lockouts")


# The background thread -------------------------------------------------------


def _start() -> None:
    memory = _memory
    with memory.lock:
        if memory.pid == os.getpid():
            return
        # A forked child inherits nothing it could trust.
        memory.pid = os.getpid()
        memory.rows.clear()
        memory.epoch += 1
        memory.lease_until = 0.0
        memory.stop = threading.Event()
        if not enabled():
            memory.thread = None
            return
        memory.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        memory.thread = threading.Thread(
            target=_run, args=(memory.stop,), name="client-cache", daemon=True
        )
        memory.thread.start()


def shutdown() -> None:
    """Stops this process's thread (writing what it had pending) and empties
    its memory: when a worker exits (config/gunicorn.conf.py), and in tests."""
    memory = _memory
    memory.stop.set()
    memory.lease_until = 0.0
    if memory.thread is not None:
        memory.thread.join(timeout=5)
    memory.drop_all()
    memory.pid = None


_REGISTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
return now
"""


def _run(stop: threading.Event) -> None:
    from django.db import connections

    try:
        _serve(stop)
    finally:
        connections.close_all()  # this thread's own (last redeemed, revocations)


def _serve(stop: threading.Event) -> None:
    failing_since = None
    while not stop.is_set():
        try:
            _subscribed(stop)
        except Exception as exc:  # Redis went away, or worse: memory is off until it is back
            _memory.lease_until = 0.0
            _memory.drop_all()
            if failing_since is None:
                failing_since = time.monotonic()
                logger.warning(
                    "Client cache off (clients load from the database): %s: %s",
                    type(exc).__name__,
                    exc,
                )
            stop.wait(1.0)
        else:
            failing_since = None


def _subscribed(stop: threading.Event) -> None:
    from django.core.cache import caches

    from config.cache import script_run
    from oauth import throttle

    client = _redis()
    cache = caches["default"]
    channel, registry, acks = names()
    memory = _memory
    lease = settings.OAUTH_CLIENT_CACHE_LEASE
    renew = lease / 8
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        # Whatever was read before this subscription may have missed a change.
        memory.drop_all()
        for key, until in client.zrangebyscore(_lockouts(), time.time(), "+inf", withscores=True):
            throttle.lockout_learned(key.decode(), until)
        _load_revocations()
        while not stop.is_set():
            sent = time.monotonic()
            token = uuid.uuid4().hex.encode()
            pubsub.ping(token)
            while True:
                message = pubsub.get_message(timeout=max(0.0, sent + lease - time.monotonic()))
                if message is None:
                    if time.monotonic() >= sent + lease:
                        raise TimeoutError("no answer to PING on the subscription")
                    continue
                if message["type"] == "pong" and message["data"] == token:
                    break
                _apply(client, message, acks)
            script_run(cache, _REGISTER, [registry], [memory.worker, int(lease * 1000)])
            memory.lease_until = sent + lease
            throttle.local_counts_sync()
            _redeemed_flush()
            next_ping = sent + renew
            while not stop.is_set():
                wait = next_ping - time.monotonic()
                if wait <= 0:
                    break
                message = pubsub.get_message(timeout=wait)
                if message is not None:
                    _apply(client, message, acks)
    finally:
        memory.lease_until = 0.0
        pubsub.close()
        _redeemed_flush()


def _load_revocations() -> None:
    """The revoked tokens that have not expired (any revoked later is
    heard of on the subscription, which is already open)."""
    from django.db import connections

    from oauth.models import RevokedToken

    try:
        now = time.time()
        rows = RevokedToken.objects.filter(expires_at__gt=timezone.now()).values_list(
            "jti", "expires_at"
        )
        loaded = {jti: expires.timestamp() for jti, expires in rows}
    finally:
        connections.close_all()  # this thread's own connection
    with _memory.lock:
        _memory.revoked = {j: e for j, e in _memory.revoked.items() if e > now}
        _memory.revoked.update(loaded)


def _apply(client, message: dict, acks: str) -> None:
    if message.get("type") != "message":
        return
    data = message["data"].decode()
    if data.startswith("lock "):
        from oauth import throttle

        _, until, key = data.split(" ", 2)
        throttle.lockout_learned(key, float(until))
        return
    nonce, kind, rest = data.split(" ", 2)
    if kind == "revoke":
        expires, jti = rest.split(" ", 1)
        revoked_learned(jti, float(expires))
    elif kind == "users":
        users_forget(rest)
    else:
        forget(rest)
    key = acks + nonce
    pipe = client.pipeline(transaction=False)
    pipe.sadd(key, _memory.worker)
    pipe.expire(key, 60)
    pipe.execute()
