"""Fixed-window rate limits.

With Redis (CACHE_URL) every process and machine shares the counts, and
`count_many` counts and reads several counters in one round trip (a Lua
script); with the local-memory default they are per process, in Django's
cache. Calls raise one of config.redis.ERRORS when Redis cannot be used.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.cache import cache

from config import redis


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
    return window_key(limit, subject, window_no), reset_after(limit, now)


def window_key(limit: Limit, subject: str, window_no: int) -> str:
    return f"rl:{limit.name}:{subject}:{window_no}"


def reset_after(limit: Limit, now: float) -> int:
    return int(limit.window - (now % limit.window)) or 1


def hit(limit: Limit, subject: str, *, cost: int = 1) -> Outcome:
    """Counts one request of `subject` against `limit` and says whether it
    is still within it."""
    return count_many([Count(limit, subject, cost)])[0]


def peek(limit: Limit, subject: str) -> Outcome:
    """The current count without adding to it."""
    return count_many([Count(limit, subject, 0)])[0]


def clear(limit: Limit, subject: str) -> None:
    """Forgets the counts of `subject` in the current and previous windows."""
    now = time.time()
    keys = [_key(limit, subject, at)[0] for at in (now, now - limit.window)]
    if redis.client() is None:
        cache.delete_many(keys)
        return
    with redis.breaker().calling():
        redis.client().delete(*keys)


def _ttl(window: int) -> int:
    # Kept into the next window, so a late sync still finds it.
    return 2 * window + 1


def most_restrictive(outcomes: list[Outcome]) -> Outcome:
    refused = [o for o in outcomes if not o.allowed]
    if refused:
        return max(refused, key=lambda o: o.reset_after)
    return min(outcomes, key=lambda o: o.remaining)


@dataclass(frozen=True)
class Count:
    """One counter for `count_many`: add `cost` to it (0 only reads it)."""

    limit: Limit
    subject: str
    cost: int = 1


def count_many(counts: Sequence[Count]) -> list[Outcome]:
    """Like hit() and peek() for each of `counts`, in one round trip to Redis
    (a Lua script: INCRBY + EXPIRE, or GET, per key); other caches go one by
    one."""
    now = time.time()
    keys = [_key(c.limit, c.subject, now) for c in counts]
    totals = _counters([(key, c.limit, c.cost) for c, (key, _) in zip(counts, keys, strict=True)])
    return [
        Outcome(c.limit, total, reset_after)
        for c, total, (_, reset_after) in zip(counts, totals, keys, strict=True)
    ]


def add_many(adds: Sequence[tuple[Limit, str, int, int]]) -> list[int]:
    """Adds (limit, subject, window number, cost) to each counter, in one
    round trip on Redis; returns the new counts. For counts made elsewhere
    and added later (oauth.throttle's local counts)."""
    return _counters(
        [(window_key(limit, subject, no), limit, cost) for limit, subject, no, cost in adds]
    )


def _counters(items: Sequence[tuple[str, Limit, int]]) -> list[int]:
    """The count of each (key, limit, cost) after adding `cost` (a new
    counter expires after two windows), or as it is when `cost` is 0."""
    if redis.client() is None:
        return [_local_add(key, cost, _ttl(limit.window)) for key, limit, cost in items]
    # The counters to add to come first, then the ones only read (one MGET);
    # the counts come back as one string.
    adding = [i for i, (_, _, cost) in enumerate(items) if cost]
    order = adding + [i for i, (_, _, cost) in enumerate(items) if not cost]
    reply = redis.run(
        _COUNT_MANY,
        [items[i][0] for i in order],
        [
            len(adding),
            *(items[i][2] for i in adding),
            *(_ttl(items[i][1].window) for i in adding),
        ],
    )
    values = dict(zip(order, reply.split(b","), strict=True))
    return [int(values[i]) for i in range(len(items))]


def _local_add(key: str, cost: int, timeout: int) -> int:
    if not cost:
        return cache.get(key, 0)
    try:
        return cache.incr(key, cost)
    except ValueError:
        # A concurrent add() may win; then incr() finds the key.
        if cache.add(key, cost, timeout=timeout):
            return cost
        return cache.incr(key, cost)


# KEYS: the counters to add to, then those to read. ARGV: how many to add
# to, their costs, their expiries (set when the counter is created).
_COUNT_MANY = """
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local cost = tonumber(ARGV[1 + i])
  local count = redis.call('INCRBY', KEYS[i], cost)
  if count == cost then
    redis.call('EXPIRE', KEYS[i], ARGV[1 + n + i])
  end
  out[i] = count
end
if #KEYS > n then
  local read = redis.call('MGET', unpack(KEYS, n + 1))
  for j = 1, #KEYS - n do
    out[n + j] = tonumber(read[j] or '0') or 0
  end
end
return table.concat(out, ',')
"""
