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
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

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
    return client_id if _CLIENT_ID_RE.fullmatch(client_id) else "(malformed)"


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
    if subject is None:
        # No credentials at all: only the address can be counted.
        counts = [Count(limits["ip"], ip), Count(limits["fail_ip"], ip, cost=0)]
    else:
        pair = f"{subject}|{ip}"
        counts = [
            Count(limits["ip"], ip),
            Count(limits["client"], subject),
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
        ratelimit.count_many(counts)
    except CACHE_ERRORS as exc:
        _cache_unavailable(exc)


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
