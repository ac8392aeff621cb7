"""Fixed-window rate limits on the configured cache.

With Redis (CACHE_URL) every worker process and machine shares the counts;
with the local-memory default they are per process. One cache round trip per
limit in the common case (INCR on an existing window).
"""

import time
from dataclasses import dataclass

from django.core.cache import caches


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window: int  # seconds

    def __str__(self) -> str:
        return f"{self.limit};w={self.window}"


@dataclass(frozen=True)
class Outcome:
    limit: Limit
    count: int
    reset_after: int  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit.limit - self.count)

    def headers(self) -> dict[str, str]:
        # draft-ietf-httpapi-ratelimit-headers, plus the older X- names that
        # many client libraries still read.
        h = {
            "RateLimit-Limit": str(self.limit.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
            "RateLimit-Policy": str(self.limit),
            "X-RateLimit-Limit": str(self.limit.limit),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            h["Retry-After"] = str(self.reset_after)
        return h


def _key(limit: Limit, subject: str, now: float) -> tuple[str, int]:
    window_no = int(now // limit.window)
    reset_after = int(limit.window - (now % limit.window)) or 1
    return f"rl:{limit.name}:{subject}:{window_no}", reset_after


def hit(limit: Limit, subject: str, *, cost: int = 1) -> Outcome:
    """Counts one request of `subject` against `limit` and says whether it
    is still within it."""
    cache = caches["default"]
    key, reset_after = _key(limit, subject, time.time())
    try:
        count = cache.incr(key, cost)
    except ValueError:
        # First request of the window. add() loses to a concurrent add; then
        # incr again.
        if cache.add(key, cost, timeout=limit.window + 1):
            count = cost
        else:
            count = cache.incr(key, cost)
    return Outcome(limit, count, reset_after)


def peek(limit: Limit, subject: str) -> Outcome:
    """The current count without adding to it."""
    key, reset_after = _key(limit, subject, time.time())
    return Outcome(limit, caches["default"].get(key, 0), reset_after)


def most_restrictive(outcomes: list[Outcome]) -> Outcome:
    refused = [o for o in outcomes if not o.allowed]
    if refused:
        return max(refused, key=lambda o: o.reset_after)
    return min(outcomes, key=lambda o: o.remaining)
