"""A client's "last redeemed" and its tokens per day, without a database
write per token.

Each process counts the tokens it issues in memory and writes them, with
each client's last redemption, in one transaction at most once per
LAST_REDEEMED_INTERVAL seconds (and at once for a client whose stored "last
redeemed" is older than that, so a first token shows in the console at
once). The console shows minutes, so the delay is invisible there; the
chart of a day's tokens reads this process's pending counts too. What a
worker has not written when it exits is written then
(config/gunicorn.conf.py). While the database is unavailable the counts
stay pending, and are written once it is back.
"""

import logging
import random
import threading
import time
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F

from apiclients.models import ApiClient, TokenDailyCount

CHART_DAYS = 30

logger = logging.getLogger(__name__)


class _Pending:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[tuple[int, date], int] = {}  # (client pk, UTC day) -> tokens
        self.redeemed: dict[int, datetime] = {}  # client pk -> last redemption
        self.written: dict[int, datetime] = {}  # client pk -> last redemption written
        self.written_at = time.monotonic()


_pending = _Pending()


def token_counted(client_pk: int, now: datetime, *, last_written: datetime | None = None) -> None:
    """One token issued now to the client whose stored "last redeemed" was
    `last_written` when its row was read."""
    pending = _pending
    interval = settings.OAUTH["LAST_REDEEMED_INTERVAL"]
    with pending.lock:
        key = (client_pk, now.date())
        pending.counts[key] = pending.counts.get(key, 0) + 1
        pending.redeemed[client_pk] = now
        last_written = max(
            filter(None, (last_written, pending.written.get(client_pk))), default=None
        )
        # Stretched by up to a fifth at random, so that processes that
        # started together do not stay in step.
        due = time.monotonic() - pending.written_at >= interval * (1 + random.random() / 5)  # noqa: S311
    if due or last_written is None or now - last_written >= timedelta(seconds=interval):
        flush()


def flush() -> None:
    """Writes what is pending; kept for later when the database is unavailable."""
    pending = _pending
    with pending.lock:
        counts, pending.counts = pending.counts, {}
        redeemed, pending.redeemed = pending.redeemed, {}
        pending.written_at = time.monotonic()
    if not counts and not redeemed:
        return
    try:
        # A client deleted meanwhile takes its counts with it: on PostgreSQL
        # a row for it would fail the whole batch at commit, for ever.
        alive = set(
            ApiClient.objects.filter(pk__in={pk for pk, _ in counts} | set(redeemed)).values_list(
                "pk", flat=True
            )
        )
        counts = {key: n for key, n in counts.items() if key[0] in alive}
        redeemed = {pk: at for pk, at in redeemed.items() if pk in alive}
        with transaction.atomic():
            # Rows in one order in every process: two processes writing at
            # once then wait for each other rather than deadlock.
            for client_pk, at in sorted(redeemed.items()):
                # update(), not save(): "last modified" stays as it is.
                ApiClient.objects.filter(pk=client_pk).update(last_redeemed_at=at)
            for (client_pk, day), n in sorted(counts.items()):
                _add(client_pk, day, n)
        with pending.lock:
            pending.written.update(redeemed)
    except DatabaseError as exc:
        logger.warning("Token counts kept in memory: the database is unavailable (%s)", exc)
        with pending.lock:
            for key, n in counts.items():
                pending.counts[key] = pending.counts.get(key, 0) + n
            for client_pk, at in redeemed.items():
                pending.redeemed[client_pk] = max(at, pending.redeemed.get(client_pk, at))


def _add(client_pk: int, day: date, n: int) -> None:
    if TokenDailyCount.objects.filter(client_id=client_pk, day=day).update(count=F("count") + n):
        return
    try:
        with transaction.atomic():
            TokenDailyCount.objects.create(client_id=client_pk, day=day, count=n)
    except IntegrityError:
        # Another process created the day's row first.
        TokenDailyCount.objects.filter(client_id=client_pk, day=day).update(count=F("count") + n)


def clear() -> None:
    """Forgets what is pending (tests)."""
    global _pending
    _pending = _Pending()


def daily_counts(client: ApiClient, today: date, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """(day, tokens) for the last `days` days up to today, oldest first."""
    first = today - timedelta(days=days - 1)
    stored = dict(
        TokenDailyCount.objects.filter(client=client, day__gte=first, day__lte=today).values_list(
            "day", "count"
        )
    )
    with _pending.lock:
        for (client_pk, day), n in _pending.counts.items():
            if client_pk == client.pk:
                stored[day] = stored.get(day, 0) + n
    return [
        (first + timedelta(days=i), stored.get(first + timedelta(days=i), 0)) for i in range(days)
    ]
