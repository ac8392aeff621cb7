"""Tokens issued per client per day, without a database write per token.

The token endpoint counts each token in the shared cache (one INCR) and moves
the counts into TokenDailyCount only when it already writes the client's
"last redeemed" (at most once per client every few seconds). Readers add what
is still pending in the cache, so the chart is exact between flushes.

With the local-memory cache each process counts for itself, which is right for
one process; several processes should share Redis (CACHE_URL), as they must
for rate limits anyway.
"""

from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F

from apiclients.models import ApiClient, TokenDailyCount
from config.cache import counter_add

PENDING_TTL = 3 * 24 * 3600
CHART_DAYS = 30


def _key(client_pk: int, day: date) -> str:
    return f"tokens:{client_pk}:{day.isoformat()}"


def token_counted(client_pk: int, now: datetime) -> None:
    """One token issued now (UTC day): one round trip to Redis."""
    counter_add(cache, _key(client_pk, now.date()), 1, PENDING_TTL)


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
    for day in (now.date(), now.date() - timedelta(days=1)):
        key = _key(client_pk, day)
        pending = cache.get(key)
        if pending:
            _add(client_pk, day, pending)
            cache.decr(key, pending)


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
    pending = cache.get_many([_key(client.pk, d) for d in pending_days])
    result = []
    for day, _ in series:
        n = stored.get(day, 0) + (pending.get(_key(client.pk, day)) or 0)
        result.append((day, n))
    return result
