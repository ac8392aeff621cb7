"""Tokens issued per client per day, without a database write per token.

The token endpoint counts each token in the process, adds the counts to the
shared cache at most once a second (a round trip to Redis per token cost more
than all the rest of the endpoint's cache work), and moves them into
TokenDailyCount only when it already writes the client's "last redeemed" (at
most once per client a minute). Readers add what is still pending in
the cache and in their own process, so the chart is exact for the process
that counted and at most a second behind for the others. gunicorn adds a
worker's buffer to the cache when the worker exits (config/gunicorn.conf.py).

With the local-memory cache each process counts for itself, which is right for
one process; several processes should share Redis (CACHE_URL), as they must
for rate limits anyway.
"""

import logging
import threading
import time
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F

from apiclients.models import ApiClient, TokenDailyCount
from config.cache import CACHE_ERRORS, counter_add

PENDING_TTL = 3 * 24 * 3600
CHART_DAYS = 30
BUFFER_SECONDS = 1.0

logger = logging.getLogger(__name__)
# Counted in this process, not yet in the cache: {cache key: tokens}.
_buffer: dict[str, int] = {}
_buffer_lock = threading.Lock()
_flushed_at = [time.monotonic()]


def _key(client_pk: int, day: date) -> str:
    return f"tokens:{client_pk}:{day.isoformat()}"


def token_counted(client_pk: int, now: datetime, *, flush: bool = True) -> None:
    """One token issued now (UTC day). With `flush=False` the caller has the
    buffer flushed elsewhere (oauth.clientcache's thread: buffer_due())."""
    key = _key(client_pk, now.date())
    with _buffer_lock:
        _buffer[key] = _buffer.get(key, 0) + 1
    if flush and buffer_due():
        buffer_flush()


def buffer_due() -> bool:
    return time.monotonic() - _flushed_at[0] >= BUFFER_SECONDS


def buffer_flush() -> None:
    """Adds this process's buffered counts to the shared cache."""
    _flushed_at[0] = time.monotonic()
    with _buffer_lock:
        pending = dict(_buffer)
        _buffer.clear()
    items = list(pending.items())
    for i, (key, n) in enumerate(items):
        try:
            counter_add(cache, key, n, PENDING_TTL)
        except CACHE_ERRORS:
            # The cache is unavailable: keep what is left for the next flush.
            logger.warning("Token counts kept in the process: the cache is unavailable")
            with _buffer_lock:
                for left, count in items[i:]:
                    _buffer[left] = _buffer.get(left, 0) + count
            return


def buffer_clear() -> None:
    """Forgets this process's buffered counts (tests)."""
    with _buffer_lock:
        _buffer.clear()


def _add(client_pk: int, day: date, n: int) -> None:
    with transaction.atomic():
        if TokenDailyCount.objects.filter(client_id=client_pk, day=day).update(
            count=F("count") + n
        ):
            return
        try:
            with transaction.atomic():
                TokenDailyCount.objects.create(client_id=client_pk, day=day, count=n)
        except IntegrityError:
            # Another process created today's row first.
            TokenDailyCount.objects.filter(client_id=client_pk, day=day).update(
                count=F("count") + n
            )


def counts_flush(client_pk: int, now: datetime) -> None:
    """Move pending counts (today's and, after midnight, yesterday's) into
    the database. Decrementing by exactly what was read keeps the tokens
    counted meanwhile."""
    buffer_flush()
    for day in (now.date(), now.date() - timedelta(days=1)):
        key = _key(client_pk, day)
        try:
            pending = cache.get(key)
            if pending:
                _add(client_pk, day, pending)
                cache.decr(key, pending)
        except CACHE_ERRORS:
            # The counts stay pending until the cache is back; the token
            # that brought us here is not refused for it.
            logger.warning("Token counts not moved to the database: the cache is unavailable")
            return


def daily_counts(client: ApiClient, today: date, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """(day, tokens) for the last `days` days up to today, oldest first."""
    first = today - timedelta(days=days - 1)
    stored = dict(
        TokenDailyCount.objects.filter(client=client, day__gte=first, day__lte=today).values_list(
            "day", "count"
        )
    )
    series = [(first + timedelta(days=i), 0) for i in range(days)]
    pending_days = (today, today - timedelta(days=1))
    keys = [_key(client.pk, d) for d in pending_days]
    pending = cache.get_many(keys)
    with _buffer_lock:
        for key in keys:
            pending[key] = (pending.get(key) or 0) + _buffer.get(key, 0)
    result = []
    for day, _ in series:
        n = stored.get(day, 0) + (pending.get(_key(client.pk, day)) or 0)
        result.append((day, n))
    return result
