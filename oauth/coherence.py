"""Changes that reach the memory of every process before they are confirmed.

Each process may keep rows in memory (oauth.clientcache registers its caches
here, one callback per topic). The promise: once a service that changes such
a row returns, no process anywhere acts on the old row. It is kept through
the database that holds the change, and nothing else:

- A service publishes its change in the transaction that makes it: a row in
  CacheChange, committed with the change or not at all.
- Each process runs one thread that, every RENEW seconds, reads the
  database's clock and then the changes of the last few minutes, applies
  those it has not seen, and records in CacheProcess that every change
  committed before that clock reading is applied, with a lease: it may use
  its memory until LEASE seconds after it sent that poll. It uses its
  memory only while the lease holds, and only after the database has
  recorded the lease (a process cut off from the database stops using its
  memory within LEASE seconds, whoever else it can reach).
- The service, once committed, waits until every process holding a lease
  has applied a poll that began after the commit, or until its lease has
  run out. If the service loses the database after its commit, it waits out
  one lease instead: every lease recorded before the commit has run out by
  then, and every poll after it has seen the change. Either way, when it
  returns the change is in force everywhere.
- A process that missed polls (its lease ran out) empties its memory before
  it uses it again, so nothing it missed can linger.

A change made behind the services' back (SQL by hand) publishes nothing:
caches reload their rows at least every CLIENT_CACHE_MAX_AGE seconds.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from oauth.models import CacheChange, CacheProcess

logger = logging.getLogger("oauth")

# Changes are read back this far: longer than any transaction that publishes
# one can stay open (idle_in_transaction_session_timeout is 60 s).
WINDOW = timedelta(minutes=5)


@dataclass
class _Topic:
    apply: Callable[[str], None]
    reset: Callable[[], None]


@dataclass
class _State:
    pid: int | None = None
    name: str = ""
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lease_until: float = 0.0  # time.monotonic()
    pruned_at: float = 0.0  # time.monotonic()
    # ids of the changes applied, with when they were first seen
    seen: dict[int, datetime] = field(default_factory=dict)


_topics: dict[str, _Topic] = {}
_state = _State()
_lock = threading.Lock()


def register(topic: str, *, apply: Callable[[str], None], reset: Callable[[], None]) -> None:
    """A cache's callbacks: `apply(key)` for each change of its topic, and
    `reset()` to forget everything (the lease lapsed)."""
    _topics[topic] = _Topic(apply, reset)


def enabled() -> bool:
    return settings.OAUTH["CLIENT_CACHE"]


def live() -> bool:
    """Whether this process may answer from memory now (starting its thread
    on first use in each process)."""
    if not enabled():
        return False
    if _state.pid != os.getpid():
        _start()
    return time.monotonic() < _state.lease_until


# Writers ---------------------------------------------------------------------


def publish(topic: str, key: str) -> None:
    """Within the transaction that changes something kept under `topic` and
    `key`: applied in this process at once, and, once committed, in every
    process before the caller goes on."""
    _topics[topic].apply(key)
    if not enabled():
        return
    CacheChange.objects.create(topic=topic, key=key[:200])
    transaction.on_commit(_await_applied)


def _await_applied() -> None:
    committed = time.monotonic()
    lease = settings.OAUTH["CLIENT_CACHE_LEASE"]
    try:
        since = _db_now()
        pause = 0.002
        # Bounded: a lease recorded before the commit ends within LEASE.
        while time.monotonic() < committed + 2 * lease + 1:
            if not CacheProcess.objects.filter(
                lease_until__gt=Now(), applied_through__lte=since
            ).exists():
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        logger.error("Processes still hold leases %.1f s after a change", 2 * lease + 1)
    except DatabaseError as exc:
        logger.warning(
            "Could not see which processes applied a change (%s); waiting out one lease", exc
        )
    # Without word from the database, every lease recorded before the commit
    # has run out LEASE seconds after it (and later polls see the change).
    time.sleep(max(0.0, committed + lease - time.monotonic()))


def _db_now() -> datetime:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The statement's start: any transaction committed before it is
            # visible to this connection's next statement.
            cursor.execute("SELECT statement_timestamp()")
            return cursor.fetchone()[0]
    # SQLite: one machine, one clock.
    return timezone.now()


# The thread --------------------------------------------------------------------


def _start() -> None:
    with _lock:
        if _state.pid == os.getpid():
            return
        # A forked child inherits nothing it could trust.
        _state.pid = os.getpid()
        _state.lease_until = 0.0
        _state.seen = {}
        _state.stop = threading.Event()
        _state.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        _reset()
        _state.thread = threading.Thread(
            target=_run, args=(_state.stop,), name="coherence", daemon=True
        )
        _state.thread.start()


def shutdown() -> None:
    """Stops this process's thread and empties its memory (a worker that
    exits, and tests)."""
    _state.stop.set()
    _state.lease_until = 0.0
    if _state.thread is not None:
        _state.thread.join(timeout=5)
    _state.thread = None
    _state.pid = None
    _reset()


def _reset() -> None:
    for topic in _topics.values():
        topic.reset()


def _run(stop: threading.Event) -> None:
    failing = False
    try:
        while not stop.is_set():
            renew = settings.OAUTH["CLIENT_CACHE_LEASE"] / 8
            try:
                poll()
            except DatabaseError as exc:
                connection.close()  # this thread's own; a new one next time
                if not failing:
                    logger.warning("Memory not in use (the database did not answer): %s", exc)
                failing = True
            else:
                if failing:
                    logger.info("Memory in use again")
                failing = False
            stop.wait(renew)
    finally:
        connection.close()


def poll() -> None:
    """One round: apply the changes not seen yet, then record the lease."""
    sent = time.monotonic()
    lease = settings.OAUTH["CLIENT_CACHE_LEASE"]
    now = _db_now()
    changes = list(
        CacheChange.objects.filter(created_at__gt=now - WINDOW).values_list("id", "topic", "key")
    )
    if sent >= _state.lease_until:
        # Polls were missed: whatever memory holds may predate a change
        # that is no longer read back.
        _reset()
    seen = _state.seen
    for change_id, topic, key in changes:
        if change_id not in seen:
            seen[change_id] = now
            if topic in _topics:
                _topics[topic].apply(key)
    for change_id in [c for c, at in seen.items() if at < now - 2 * WINDOW]:
        del seen[change_id]
    until = now + timedelta(seconds=lease)
    if not CacheProcess.objects.filter(name=_state.name).update(
        applied_through=now, lease_until=until
    ):
        CacheProcess.objects.create(name=_state.name, applied_through=now, lease_until=until)
    if sent - _state.pruned_at > 60:
        # Changes no longer read back, and processes long gone.
        _state.pruned_at = sent
        CacheChange.objects.filter(created_at__lt=now - WINDOW).delete()
        CacheProcess.objects.filter(lease_until__lt=now - timedelta(hours=1)).delete()
    # Only now that the database holds the lease may memory be used.
    _state.lease_until = sent + lease
