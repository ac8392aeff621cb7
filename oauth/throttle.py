"""Rate limits and brute-force protection for the token, introspection and
revocation endpoints, on the shared cache (Redis in production, so every
worker and machine counts together).

Every request, before the database is touched, costs one round trip to Redis
that counts it per client ID and per source address (fixed windows of
OAUTH_RATE_LIMIT_WINDOW seconds, each endpoint apart) and reads the failed-
authentication counters. Over a limit the answer is a 429 (`too_many_requests`,
with Retry-After and RateLimit-* headers) and the secret is never checked.

Failed authentications (unknown client, wrong secret, inactive, expired, or a
refused address: the caller cannot tell them apart) are counted per client
and address, per address, and per client, over OAUTH_FAILURE_WINDOW seconds.
The per-client limit stops guessing spread over many addresses; so that it
cannot be used to lock a working integration out, an address that has
authenticated as that client in the current or previous window is exempt
from it (the per-address limits still apply to it). With 256-bit secrets no
guessing can succeed; what these limits buy is a quiet audit log, spared CPU
and an attacker who learns nothing fast.

Failures are audited at most once per client and address every
OAUTH_AUDIT_FAILURE_INTERVAL seconds; the ones in between are counted, and the
next event that is written says how many were left out.

A limit set to 0 is off.

When the cache cannot be reached, requests are let through (and an error is
logged, at most once a minute per process): the secret is still checked
against the database, and an outage of Redis must not stop every
integration from getting tokens.
"""

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

from apiclients import secrets
from config import ratelimit
from config.cache import CACHE_ERRORS
from config.ratelimit import Count, Limit, Outcome
from oauth.errors import OAuthError

logger = logging.getLogger("oauth")

_last_warning = [float("-inf")]


def _cache_unavailable(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 60:
        _last_warning[0] = now
        logger.error(
            "Rate limits are not enforced: the cache is unavailable (%s: %s)",
            type(exc).__name__,
            exc,
        )


# What a client ID can look like (as in oauth.clients); anything else is
# counted under one name, so callers cannot make up cache keys.
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
_PENDING_TTL = 7 * 24 * 3600


def _client_subject(client_id: str | None) -> str | None:
    if client_id is None:
        return None
    if not _CLIENT_ID_RE.fullmatch(client_id):
        return "(malformed)"
    if client_id.startswith(secrets.SECRET_PREFIX):
        # The ID and the secret swapped (`curl -u secret:id`): counted under
        # a digest, so the secret is in no Redis key or message.
        return f"(secret-{secrets.digest(client_id)[:16]})"
    return client_id


def _limits(endpoint: str) -> dict[str, Limit]:
    return _limits_for(
        endpoint,
        settings.OAUTH_RATE_LIMIT_WINDOW,
        settings.OAUTH_RATE_LIMIT_PER_CLIENT,
        settings.OAUTH_RATE_LIMIT_PER_IP,
        settings.OAUTH_FAILURE_WINDOW,
        settings.OAUTH_FAILURES_PER_CLIENT_AND_IP,
        settings.OAUTH_FAILURES_PER_IP,
        settings.OAUTH_FAILURES_PER_CLIENT,
    )


@lru_cache(maxsize=32)
def _limits_for(
    endpoint, window, per_client, per_ip, failures, fail_pair, fail_ip, fail_client
) -> dict[str, Limit]:
    return {
        "client": Limit(f"oauth-{endpoint}-client", per_client, window),
        "ip": Limit(f"oauth-{endpoint}-ip", per_ip, window),
        # Failures are shared by the three endpoints: a guess is a guess.
        "fail_pair": Limit("oauth-fail-pair", fail_pair, failures),
        "fail_ip": Limit("oauth-fail-ip", fail_ip, failures),
        "fail_client": Limit("oauth-fail-client", fail_client, failures),
        # Counts successes, to know an address that is really the client.
        "good": Limit("oauth-good", 0, failures),
    }


@dataclass
class Check:
    """The outcome of `check`: refused (an OAuthError to answer with) or
    allowed, with what is needed after the secret has been checked."""

    endpoint: str
    client_id: str | None
    ip: str
    refused: OAuthError | None = None
    locked_out: bool = False
    # RateLimit-* headers for the response.
    headers: dict[str, str] | None = None
    # Whether this address authenticated as this client in this window.
    good_now: bool = False


def too_many_requests(outcome: Outcome, description: str) -> OAuthError:
    # RFC 6749 5.2 defines no code for this, RFC 6585 the status; the code is
    # named after the status, as other providers do.
    return OAuthError(
        "too_many_requests",
        f"{description}. Retry after {outcome.reset_after} seconds.",
        status=429,
        headers=outcome.headers(),
    )


def _worst(outcomes: list[Outcome]) -> Outcome:
    return max(outcomes, key=lambda o: o.reset_after)


def check(*, endpoint: str, client_id: str | None, ip: str | None) -> Check:
    """Counts this request and decides whether it may go on to have its
    secret checked: one round trip to Redis."""
    limits = _limits(endpoint)
    ip = ip or "unknown"
    result = Check(endpoint, client_id, ip)
    subject = _client_subject(client_id)
    # What this worker counted in memory and has not synced yet goes along,
    # so that the count this request is judged by is exact for this worker.
    now = time.time()
    rated = [(limits["ip"], ip)] + ([] if subject is None else [(limits["client"], subject)])
    pending = _take_pending(rated, now)
    if subject is None:
        # No credentials at all: only the address can be counted.
        counts = [
            Count(limits["ip"], ip, cost=1 + pending[0]),
            Count(limits["fail_ip"], ip, cost=0),
        ]
    else:
        pair = f"{subject}|{ip}"
        counts = [
            Count(limits["ip"], ip, cost=1 + pending[0]),
            Count(limits["client"], subject, cost=1 + pending[1]),
            Count(limits["fail_pair"], pair, cost=0),
            Count(limits["fail_ip"], ip, cost=0),
            Count(limits["fail_client"], subject, cost=0),
            Count(limits["good"], pair, cost=0),
            Count(limits["good"], pair, cost=0, previous=True),
        ]
    try:
        outcomes = ratelimit.count_many(counts)
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)
        result.headers = {}
        result.good_now = True  # nothing to mark either
        return result
    _learn(rated, now, [o.count for o in outcomes[: len(rated)]])
    if subject is None:
        failures = outcomes[1:]
        rate = outcomes[:1]
    else:
        rate = outcomes[:2]
        fail_pair, fail_ip, fail_client, good_now, good_before = outcomes[2:]
        result.good_now = bool(good_now.count)
        failures = [fail_pair, fail_ip]
        if not (good_now.count or good_before.count):
            failures.append(fail_client)

    rate = [o for o in rate if o.limit.limit]
    refused = [o for o in rate if not o.allowed]
    if refused:
        worst = _worst(refused)
        result.refused = too_many_requests(worst, "Too many requests")
        return result
    result.headers = ratelimit.most_restrictive(rate).headers() if rate else {}

    # Refused once the failures have reached the limit: this request could
    # only add one more.
    over = [o for o in failures if o.limit.limit and o.count >= o.limit.limit]
    if over:
        worst = _worst(over)
        result.refused = too_many_requests(
            ratelimit.Outcome(worst.limit, worst.count + 1, worst.reset_after),
            "Too many failed authentication attempts",
        )
        result.locked_out = True
    return result


# Counted in memory ------------------------------------------------------------
#
# A request whose client is in this worker's memory (oauth.clientcache) and
# whose secret is right is counted here instead of in a round trip to Redis;
# the background thread of oauth.clientcache adds these counts to the same
# Redis counters a few times a second and reads back the totals of every
# worker. Such a request goes on without Redis while the last known total
# plus what this worker counted since stays under the limit, and while this
# worker has not counted more than a small share of the limit since then;
# otherwise it takes the ordinary path, which counts it in Redis at once
# and refuses it over a limit. How far all workers together can overshoot a
# limit: about one such share each, between two of their syncs.
#
# Failed authentications never come this way: a wrong secret, an unknown,
# inactive or expired client or a refused address takes the ordinary path,
# which refuses before checking anything once the failure limits are reached.


class _Local:
    def __init__(self):
        self.lock = threading.Lock()
        # (limit, subject, window number) -> [counted here since the last
        # sync, total of every worker at the last sync]
        self.counts: dict[tuple[Limit, str, int], list[int]] = {}
        # (limit, pair, window number): addresses seen authenticating as a
        # client, to mark as such (the "good" counters)
        self.good: set[tuple[Limit, str, int]] = set()
        # "limit name:subject" -> time.time() when the failure lockout ends
        self.locked: dict[str, float] = {}


_local = _Local()


def local_clear() -> None:
    """Forgets what was counted in memory (tests)."""
    global _local
    _local = _Local()


def _share(limit: Limit) -> int:
    return max(1, limit.limit // 20)


def locked_out_locally(*, endpoint: str, client_id: str, ip: str | None) -> bool:
    """Whether a failure limit was reached for this client, address or pair,
    as far as this worker has heard (from the other workers too): then the
    request takes the ordinary path, refused before its secret is checked."""
    if not _local.locked:
        return False
    limits = _limits(endpoint)
    ip = ip or "unknown"
    subject = _client_subject(client_id)
    return _locked(
        (
            f"{limits['fail_pair'].name}:{subject}|{ip}",
            f"{limits['fail_ip'].name}:{ip}",
            f"{limits['fail_client'].name}:{subject}",
        ),
        time.time(),
    )


def counted_locally(*, endpoint: str, client_id: str, ip: str | None) -> dict[str, str] | None:
    """Counts an authenticated request in memory: its RateLimit-* headers,
    or None when it must be counted in Redis (check())."""
    limits = _limits(endpoint)
    ip = ip or "unknown"
    subject = _client_subject(client_id)
    now = time.time()
    local = _local
    outcomes = []
    with local.lock:
        entries = []
        for limit, who in ((limits["ip"], ip), (limits["client"], subject)):
            if not limit.limit:
                continue
            key = (limit, who, int(now // limit.window))
            entry = local.counts.get(key)
            if entry is None:
                entry = local.counts[key] = [0, 0]
            share = _share(limit)
            # Near the limit, every request is counted in Redis at once.
            if entry[0] >= share or entry[0] + entry[1] + share >= limit.limit:
                return None
            entries.append((limit, entry))
        for limit, entry in entries:
            entry[0] += 1
            outcomes.append(Outcome(limit, entry[0] + entry[1], ratelimit.reset_after(limit, now)))
        good = limits["good"]
        local.good.add((good, f"{subject}|{ip}", int(now // good.window)))
    return ratelimit.most_restrictive(outcomes).headers() if outcomes else {}


def _take_pending(rated: list[tuple[Limit, str]], now: float) -> list[int]:
    local = _local
    taken = []
    with local.lock:
        for limit, who in rated:
            entry = local.counts.get((limit, who, int(now // limit.window)))
            taken.append(entry[0] if entry else 0)
            if entry:
                entry[0] = 0
    return taken


def _learn(rated: list[tuple[Limit, str]], now: float, totals: list[int]) -> None:
    local = _local
    with local.lock:
        for (limit, who), total in zip(rated, totals, strict=True):
            entry = local.counts.get((limit, who, int(now // limit.window)))
            if entry is not None:
                entry[1] = max(entry[1], total)


def local_counts_sync() -> None:
    """Adds what this worker counted in memory to the Redis counters and
    learns every worker's totals (oauth.clientcache's thread calls it)."""
    local = _local
    now = time.time()
    with local.lock:
        adds = []
        for (limit, who, window_no), entry in list(local.counts.items()):
            if entry[0]:
                adds.append((limit, who, window_no, entry[0]))
            elif window_no < int(now // limit.window):
                del local.counts[(limit, who, window_no)]
        good = local.good
        local.good = set()
    adds += [(limit, pair, window_no, 1) for limit, pair, window_no in good]
    if not adds:
        return
    try:
        totals = ratelimit.add_many(adds)
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)
        return
    with local.lock:
        for (limit, who, window_no, added), total in zip(adds, totals, strict=True):
            entry = local.counts.get((limit, who, window_no))
            if entry is not None:
                entry[0] -= added
                entry[1] = total


def authentication_failed(check: Check) -> None:
    """Counts a failed authentication against the brute-force limits."""
    limits = _limits(check.endpoint)
    counts = [Count(limits["fail_ip"], check.ip)]
    subject = _client_subject(check.client_id)
    if subject is not None:
        counts += [
            Count(limits["fail_pair"], f"{subject}|{check.ip}"),
            Count(limits["fail_client"], subject),
        ]
    try:
        outcomes = ratelimit.count_many(counts)
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)
        return
    # Once a failure limit is reached, no worker may serve that address or
    # client from memory (counted_locally) until the window ends: the
    # ordinary path then refuses it before the secret is checked.
    now = time.time()
    for outcome, count in zip(outcomes, counts, strict=True):
        if outcome.limit.limit and outcome.count >= outcome.limit.limit:
            key = f"{outcome.limit.name}:{count.subject}"
            until = now + outcome.reset_after
            lockout_learned(key, until)
            from oauth import clientcache

            clientcache.publish_lockout(key, until)


def lockout_learned(key: str, until: float) -> None:
    with _local.lock:
        _local.locked[key] = max(until, _local.locked.get(key, 0.0))


def _locked(keys: tuple[str, ...], now: float) -> bool:
    locked = _local.locked
    if not locked:
        return False
    for key in keys:
        until = locked.get(key)
        if until is not None:
            if until > now:
                return True
            with _local.lock:
                if locked.get(key, 0.0) <= now:
                    locked.pop(key, None)
    return False


def authentication_succeeded(check: Check) -> None:
    """Marks the address as one this client really uses (once per window)."""
    subject = _client_subject(check.client_id)
    if check.good_now or subject is None:
        return
    try:
        ratelimit.hit(_limits(check.endpoint)["good"], f"{subject}|{check.ip}")
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)


def audit_suppressed(*, client_id: str, ip: str | None) -> int | None:
    """Whether to write an audit event (or log line) for a failure of this
    client from this address now: None when one was written in the current
    interval (this failure is counted instead); otherwise how many failures
    were left out since the last one that was written (every failure is
    written while the cache is unavailable)."""
    try:
        return _audit_suppressed(client_id, ip)
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)
        return 0


def _audit_suppressed(client_id: str, ip: str | None) -> int | None:
    subject = f"{_client_subject(client_id)}|{ip or 'unknown'}"
    interval = Limit("oauth-audit", 1, settings.OAUTH_AUDIT_FAILURE_INTERVAL)
    pending_key = f"oauth-audit-pending:{subject}"
    if not ratelimit.hit(interval, subject).allowed:
        try:
            cache.incr(pending_key)
        except ValueError:
            if not cache.add(pending_key, 1, timeout=_PENDING_TTL):
                cache.incr(pending_key)
        return None
    suppressed = cache.get(pending_key, 0)
    if suppressed:
        # Only what was read: failures counted meanwhile stay for next time.
        cache.decr(pending_key, suppressed)
    return suppressed
