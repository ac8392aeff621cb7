"""Rate limits and failure lockouts of the token, introspection and
revocation endpoints, counted in Redis (config.ratelimit) so that every
process and machine counts together.

Rate limits: requests per client ID and per source address, in fixed
windows of RATE_LIMIT_WINDOW seconds, each endpoint apart. Over a limit the
answer is 429 (`too_many_requests`, Retry-After and RateLimit-* headers).

Failure lockouts: failed authentications (an unknown client, a wrong
secret, an inactive or expired client, a refused address: the caller cannot
tell them apart) are counted per client ID and address, per address, and
per client ID, over FAILURE_WINDOW seconds. Once one of those counts is
reached, a failure from there is answered 429 `too_many_requests` instead of
401, so an attacker learns nothing from it, and is audited in aggregate.

A lockout never refuses the correct secret. Secrets carry 256 random bits:
guessing cannot succeed, so what a lockout buys is a quiet audit log and an
attacker who learns nothing. Refusing the correct secret would buy nothing
more, and would let anyone who knows a client ID (or shares an address with
an integration, behind one NAT or proxy) lock that integration out: the
lockout denial of service that OWASP's authentication guidance warns of.
Failures for client IDs that do not exist lock nobody else out for the same
reason.

Requests of a client kept in memory (oauth.clientcache) with the right
secret are counted in this process and added to Redis every SYNC seconds,
so the common case makes no round trip; near a limit every request is
counted in Redis at once. All processes together may overshoot a limit by
about one share (1/20 of it) each between two syncs.

Without Redis (unreachable, or silent: config.redis bounds each call and
leaves it alone for a while after a failure) requests are let through:
secrets are still checked, and an outage of Redis must not stop every
integration from getting tokens.
"""

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings

from apiclients import secrets
from config import ratelimit, redis
from config.ratelimit import Count, Limit, Outcome
from oauth.errors import OAuthError

logger = logging.getLogger("oauth")

SYNC = 0.25  # seconds between two additions of local counts to Redis
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")


def subject(client_id: str | None) -> str | None:
    """The name a client ID is counted under: never a secret (one pasted
    into the client ID, anywhere in it, is counted under its digest), never
    a made-up key."""
    if client_id is None:
        return None
    if not _CLIENT_ID_RE.fullmatch(client_id):
        return "(malformed)"
    if secrets.contains_secret(client_id):
        return f"(secret-{secrets.digest(client_id)[:16]})"
    return client_id


def _limits(endpoint: str) -> dict[str, Limit]:
    o = settings.OAUTH
    return _limits_for(
        endpoint,
        o["RATE_LIMIT_WINDOW"],
        o["RATE_LIMIT_PER_CLIENT"],
        o["RATE_LIMIT_PER_IP"],
        o["FAILURE_WINDOW"],
        o["FAILURES_PER_CLIENT_AND_IP"],
        o["FAILURES_PER_IP"],
        o["FAILURES_PER_CLIENT"],
    )


@lru_cache(maxsize=32)
def _limits_for(endpoint, window, per_client, per_ip, failures, pair, per_ip_fail, client):
    return {
        "ip": Limit(f"oauth-{endpoint}-ip", per_ip, window),
        "client": Limit(f"oauth-{endpoint}-client", per_client, window),
        # Failures are shared by the three endpoints: a guess is a guess.
        "fail_pair": Limit("oauth-fail-pair", pair, failures),
        "fail_ip": Limit("oauth-fail-ip", per_ip_fail, failures),
        "fail_client": Limit("oauth-fail-client", client, failures),
    }


def too_many_requests(outcome: Outcome, description: str) -> OAuthError:
    # RFC 6749 5.2 defines no code for this, RFC 6585 the status; the code is
    # named after the status, as other providers do.
    return OAuthError(
        "too_many_requests",
        f"{description}. Retry after {outcome.reset_after} seconds.",
        status=429,
        headers=outcome.headers(),
    )


_last_warning = [float("-inf")]


def _unavailable(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 60:
        _last_warning[0] = now
        logger.error("Rate limits are not enforced: Redis is unavailable (%r)", exc)


@dataclass
class Check:
    """What `check` found: the RateLimit-* headers for the response, and the
    failure counts this request would add to."""

    endpoint: str
    subject: str | None
    ip: str
    headers: dict[str, str] = field(default_factory=dict)
    failures: list[Outcome] = field(default_factory=list)

    def lockout(self) -> OAuthError | None:
        """The 429 for a failure from a client, address or pair that has
        reached its failure limit, or None."""
        over = [o for o in self.failures if o.limit.limit and o.count >= o.limit.limit]
        if not over:
            return None
        worst = max(over, key=lambda o: o.reset_after)
        return too_many_requests(
            Outcome(worst.limit, worst.count + 1, worst.reset_after),
            "Too many failed authentication attempts",
        )


def check(*, endpoint: str, client_id: str | None, ip: str | None) -> Check:
    """Counts this request against the rate limits (raising the 429 over
    one) and reads its failure counts: one round trip to Redis."""
    limits = _limits(endpoint)
    result = Check(endpoint, subject(client_id), ip or "unknown")
    now = time.time()
    rated = [(limits["ip"], result.ip)]
    failing = [Count(limits["fail_ip"], result.ip, cost=0)]
    if result.subject is not None:
        rated.append((limits["client"], result.subject))
        failing += [
            Count(limits["fail_pair"], f"{result.subject}|{result.ip}", cost=0),
            Count(limits["fail_client"], result.subject, cost=0),
        ]
    # What this process counted in memory and has not added yet goes along,
    # so the count this request is judged by is exact for this process.
    pending = _local.take(rated, now)
    counts = [Count(limit, who, cost=1 + n) for (limit, who), n in zip(rated, pending, strict=True)]
    try:
        outcomes = ratelimit.count_many(counts + failing)
    except redis.ERRORS as exc:
        _unavailable(exc)
        return result
    rate = outcomes[: len(counts)]
    _local.learn(rated, now, [o.count for o in rate])
    result.failures = outcomes[len(counts) :]
    rate = [o for o in rate if o.limit.limit]
    if rate:
        worst = ratelimit.most_restrictive(rate)
        if not worst.allowed:
            raise too_many_requests(worst, "Too many requests")
        result.headers = worst.headers()
    return result


def failed(check: Check) -> list[Outcome]:
    """Counts a failed authentication; returns the failure limits of the
    client that this very failure reached (a lockout begins: once)."""
    limits = _limits(check.endpoint)
    counts = [Count(limits["fail_ip"], check.ip)]
    if check.subject is not None:
        counts += [
            Count(limits["fail_pair"], f"{check.subject}|{check.ip}"),
            Count(limits["fail_client"], check.subject),
        ]
    try:
        outcomes = ratelimit.count_many(counts)
    except redis.ERRORS as exc:
        _unavailable(exc)
        return []
    return [
        o
        for o in outcomes
        if o.limit.limit
        and o.count == o.limit.limit
        and o.limit.name in ("oauth-fail-pair", "oauth-fail-client")
    ]


def lift(*, client_id: str, ip: str | None) -> None:
    """Ends a lockout of the client from the address (and from anywhere):
    its failure counts start again from zero."""
    limits = _limits("token")
    who = subject(client_id)
    ratelimit.clear(limits["fail_client"], who)
    if ip:
        ratelimit.clear(limits["fail_pair"], f"{who}|{ip}")


# Counted in memory ----------------------------------------------------------------


class _Local:
    def __init__(self):
        self.lock = threading.Lock()
        # (limit, subject, window number) -> [counted here since the last
        # sync, total of every process at the last sync]
        self.counts: dict[tuple[Limit, str, int], list[int]] = {}
        self.synced_at = time.monotonic()

    def take(self, rated: list[tuple[Limit, str]], now: float) -> list[int]:
        taken = []
        with self.lock:
            for limit, who in rated:
                entry = self.counts.get((limit, who, int(now // limit.window)))
                taken.append(entry[0] if entry else 0)
                if entry:
                    entry[0] = 0
        return taken

    def learn(self, rated: list[tuple[Limit, str]], now: float, totals: list[int]) -> None:
        with self.lock:
            for (limit, who), total in zip(rated, totals, strict=True):
                entry = self.counts.get((limit, who, int(now // limit.window)))
                if entry is not None:
                    entry[1] = max(entry[1], total)


_local = _Local()


def clear() -> None:
    """Forgets what was counted in memory (tests)."""
    global _local
    _local = _Local()


def counted_locally(*, endpoint: str, client_id: str, ip: str | None) -> dict[str, str] | None:
    """Counts an authenticated request in memory: its RateLimit-* headers,
    or None when it must be counted in Redis (check())."""
    limits = _limits(endpoint)
    now = time.time()
    local = _local
    outcomes = []
    with local.lock:
        entries = []
        for limit, who in ((limits["ip"], ip or "unknown"), (limits["client"], subject(client_id))):
            if not limit.limit:
                continue
            entry = local.counts.setdefault((limit, who, int(now // limit.window)), [0, 0])
            share = max(1, limit.limit // 20)
            # Near the limit, every request is counted in Redis at once.
            if entry[0] >= share or entry[0] + entry[1] + share >= limit.limit:
                return None
            entries.append((limit, entry))
        for limit, entry in entries:
            entry[0] += 1
            outcomes.append(Outcome(limit, entry[0] + entry[1], ratelimit.reset_after(limit, now)))
        due = time.monotonic() - local.synced_at >= SYNC
    if due:
        sync()
    return ratelimit.most_restrictive(outcomes).headers() if outcomes else {}


def sync() -> None:
    """Adds what this process counted in memory to Redis and learns every
    process's totals."""
    local = _local
    now = time.time()
    with local.lock:
        local.synced_at = time.monotonic()
        adds = []
        for (limit, who, window_no), entry in list(local.counts.items()):
            if entry[0]:
                adds.append((limit, who, window_no, entry[0]))
            elif window_no < int(now // limit.window):
                del local.counts[(limit, who, window_no)]
    if not adds:
        return
    try:
        totals = ratelimit.add_many(adds)
    except redis.ERRORS as exc:
        _unavailable(exc)
        return
    with local.lock:
        for (limit, who, window_no, added), total in zip(adds, totals, strict=True):
            entry = local.counts.get((limit, who, window_no))
            if entry is not None:
                entry[0] -= added
                entry[1] = total


# Audit aggregation -----------------------------------------------------------------


def audit_suppressed(*, client_id: str, ip: str | None) -> int | None:
    """Whether to audit a failure of this client from this address now:
    None when an event was written in the current interval (this failure is
    counted instead); otherwise how many failures were left out since the
    last event (0 without Redis: then every failure is written)."""
    who = f"{subject(client_id)}|{ip or 'unknown'}"
    interval = settings.OAUTH["AUDIT_FAILURE_INTERVAL"]
    try:
        outcomes = ratelimit.count_many(
            [
                Count(Limit("oauth-audit", 1, interval), who),
                # Failures left out, in the same round trip: read now, and
                # taken back below once reported.
                Count(Limit("oauth-audit-left-out", 0, 7 * 24 * 3600), who, cost=0),
            ]
        )
        if not outcomes[0].allowed:
            ratelimit.hit(Limit("oauth-audit-left-out", 0, 7 * 24 * 3600), who)
            return None
        left_out = outcomes[1].count
        if left_out:
            ratelimit.hit(Limit("oauth-audit-left-out", 0, 7 * 24 * 3600), who, cost=-left_out)
        return left_out
    except redis.ERRORS as exc:
        _unavailable(exc)
        return 0
