"""Who used a client, from where: its requests at the token, introspection
and revocation endpoints, successes and refusals, by minute, source address,
user agent, endpoint, outcome and scopes.

Like the token counts (apiclients.usage), a request costs the token path
only a dictionary update under a lock: each process aggregates in memory and
writes its rows in one transaction at most once per LAST_REDEEMED_INTERVAL
seconds, after a response has been sent (the view hands `flush` to the
response's close), and when a worker exits (config/gunicorn.conf.py). While
the database is unavailable the rows stay pending and are added once it is
back. Rows older than USAGE_LOG_RETENTION_DAYS are pruned
(`manage.py prune_usage_log`).
"""

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Max, Sum
from django.db.models.functions import Greatest
from django.http import HttpRequest

from apiclients import secrets
from apiclients.models import ApiClient, UsageLogEntry
from config.proxies import client_address

OK = "ok"
# Outcomes as the console names them (refusal reasons: oauth.clients).
OUTCOME_LABELS = {
    OK: "Success",
    "wrong_secret": "Wrong secret",
    "inactive": "Client inactive",
    "expired": "Client expired",
    "ip_not_allowed": "Address not allowed",
    "too_many_failures": "Too many failures (locked out)",
    "invalid_scope": "Scope not granted",
    "secret_too_old": "Secret past the maximum age",
    "insufficient_scope": "Permission missing",
}
AGENT_LENGTH = 200
ADDRESS_DAYS = 30

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Key:
    client_pk: int
    minute: datetime
    source_ip: str
    user_agent: str
    endpoint: str
    outcome: str
    scopes: str


class _Pending:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: dict[_Key, list] = {}  # key -> [count, last at]
        self.written_at = time.monotonic()


_pending = _Pending()


def enabled() -> bool:
    return settings.OAUTH["USAGE_LOG"]


def user_agent(request: HttpRequest) -> str:
    """The caller's User-Agent, with any secret pasted into it withheld
    (before it is cut to length, so no part of one is kept)."""
    agent = request.META.get("HTTP_USER_AGENT", "")
    if not agent:
        return ""
    if secrets.contains_secret(agent):
        agent = secrets.redact(agent)
    return agent[:AGENT_LENGTH]


def record(
    request: HttpRequest,
    *,
    client_pk: int,
    endpoint: str,
    outcome: str,
    scopes: str = "",
    now: datetime,
) -> bool:
    """Counts one request of the client in this process. True when the
    pending rows are due to be written: the caller passes `flush` to run
    after its response."""
    if not enabled():
        return False
    key = _Key(
        client_pk,
        now.replace(second=0, microsecond=0),
        client_address(request) or "",
        user_agent(request),
        endpoint,
        outcome,
        scopes,
    )
    pending = _pending
    interval = settings.OAUTH["LAST_REDEEMED_INTERVAL"]
    with pending.lock:
        row = pending.rows.get(key)
        if row is None:
            pending.rows[key] = [1, now]
        else:
            row[0] += 1
            row[1] = now
        # Stretched by up to a fifth at random, so that processes that
        # started together do not stay in step.
        return time.monotonic() - pending.written_at >= interval * (1 + random.random() / 5)  # noqa: S311


def _digest(key: _Key) -> str:
    text = "\x1f".join((key.source_ip, key.user_agent, key.endpoint, key.outcome, key.scopes))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def flush() -> None:
    """Writes what is pending; kept for later when the database is unavailable."""
    pending = _pending
    with pending.lock:
        rows, pending.rows = pending.rows, {}
        pending.written_at = time.monotonic()
    if not rows:
        return
    try:
        with transaction.atomic():
            # A client deleted since its requests were counted takes them
            # with it (and would fail the foreign key at commit).
            live = set(
                ApiClient.objects.filter(pk__in={k.client_pk for k in rows}).values_list(
                    "pk", flat=True
                )
            )
            # In one order in every process, so that two writing at once
            # wait for each other instead of deadlocking.
            for key, (n, last_at) in sorted(rows.items(), key=_order):
                if key.client_pk in live:
                    _add(key, n, last_at)
    except DatabaseError as exc:
        logger.warning("Usage log kept in memory: the database is unavailable (%s)", exc)
        with pending.lock:
            for key, (n, last_at) in rows.items():
                row = pending.rows.setdefault(key, [0, last_at])
                row[0] += n
                row[1] = max(row[1], last_at)


def _order(item) -> tuple:
    key = item[0]
    return key.client_pk, key.minute, _digest(key)


def _add(key: _Key, n: int, last_at: datetime) -> None:
    digest = _digest(key)
    existing = UsageLogEntry.objects.filter(client_id=key.client_pk, minute=key.minute, key=digest)
    if existing.update(count=F("count") + n, last_at=Greatest("last_at", last_at)):
        return
    try:
        with transaction.atomic():
            UsageLogEntry.objects.create(
                client_id=key.client_pk,
                minute=key.minute,
                key=digest,
                source_ip=key.source_ip,
                user_agent=key.user_agent,
                endpoint=key.endpoint,
                outcome=key.outcome,
                scopes=key.scopes,
                count=n,
                last_at=last_at,
            )
    except IntegrityError:
        # Another process wrote the minute's row first.
        existing.update(count=F("count") + n, last_at=Greatest("last_at", last_at))


def clear() -> None:
    """Forgets what is pending (tests)."""
    global _pending
    _pending = _Pending()


def prune(now: datetime, days: int | None = None) -> int:
    """Deletes rows older than the retention; the number deleted."""
    days = settings.USAGE_LOG_RETENTION_DAYS if days is None else days
    deleted, _ = UsageLogEntry.objects.filter(minute__lt=now - timedelta(days=days)).delete()
    return deleted


# -- reading ----------------------------------------------------------------


def _pending_rows(client: ApiClient) -> list[UsageLogEntry]:
    """This process's rows not yet written, as unsaved entries."""
    with _pending.lock:
        items = [(k, list(v)) for k, v in _pending.rows.items() if k.client_pk == client.pk]
    return [
        UsageLogEntry(
            client_id=client.pk,
            minute=k.minute,
            source_ip=k.source_ip,
            user_agent=k.user_agent,
            endpoint=k.endpoint,
            outcome=k.outcome,
            scopes=k.scopes,
            count=n,
            last_at=last_at,
        )
        for k, (n, last_at) in items
    ]


def summary(client: ApiClient, now: datetime) -> dict:
    """What the drawer shows, in two queries: the last successful use (with
    its address and user agent); the addresses of the last ADDRESS_DAYS days
    with their requests and failures; and the failures by address and
    reason, latest first."""
    since = now - timedelta(days=ADDRESS_DAYS)
    rows = UsageLogEntry.objects.filter(client=client, minute__gte=since)
    pending = _pending_rows(client)
    last = rows.filter(outcome=OK).order_by("-last_at").first()
    groups: dict[tuple[str, str], dict] = {}  # (address, outcome) -> requests, last at
    stored = rows.values("source_ip", "outcome").annotate(n=Sum("count"), at=Max("last_at"))
    for row in [
        *stored.order_by(),
        *(
            {"source_ip": e.source_ip, "outcome": e.outcome, "n": e.count, "at": e.last_at}
            for e in pending
        ),
    ]:
        group = groups.setdefault((row["source_ip"], row["outcome"]), {"n": 0, "at": row["at"]})
        group["n"] += row["n"]
        group["at"] = max(group["at"], row["at"])
    for entry in pending:
        if entry.succeeded and (last is None or entry.last_at > last.last_at):
            last = entry
    addresses: dict[str, dict] = {}
    for (address, outcome), group in groups.items():
        a = addresses.setdefault(
            address, {"source_ip": address, "requests": 0, "failures": 0, "last_at": group["at"]}
        )
        a["requests"] += group["n"]
        a["failures"] += 0 if outcome == OK else group["n"]
        a["last_at"] = max(a["last_at"], group["at"])
    failures = [
        {"source_ip": address, "outcome": outcome, "count": group["n"], "last_at": group["at"]}
        for (address, outcome), group in groups.items()
        if outcome != OK
    ]
    failures.sort(key=lambda f: f["last_at"], reverse=True)
    return {
        "last_used": last,
        "addresses": sorted(addresses.values(), key=lambda a: a["requests"], reverse=True)[:10],
        "address_count": len(addresses),
        "failures": failures[:5],
        "days": ADDRESS_DAYS,
    }


def entries(client: ApiClient, *, outcome: str = "", address: str = "", since=None):
    """The client's stored rows, newest first, filtered: outcome "ok",
    "failed" or a refusal reason; an address; rows from `since` on."""
    rows = UsageLogEntry.objects.filter(client=client)
    if outcome == "failed":
        rows = rows.exclude(outcome=OK)
    elif outcome:
        rows = rows.filter(outcome=outcome)
    if address:
        rows = rows.filter(source_ip=address)
    if since is not None:
        rows = rows.filter(minute__gte=since)
    return rows.order_by("-minute", "-last_at", "-id")


def outcomes(client: ApiClient) -> list[str]:
    """The outcomes the client's log holds, for the filter."""
    rows = UsageLogEntry.objects.filter(client=client).values_list("outcome", flat=True)
    return list(rows.distinct().order_by("outcome"))
