"""Redis, the store every process shares for rate-limit counters.

Each call waits at most REDIS_TIMEOUT seconds (connect and read) and is never
sent again after a failure: a command that timed out may have run, and an
INCRBY sent twice counts twice. A failed call opens a circuit breaker
(pybreaker) for REDIS_RETRY_AFTER seconds, so a Redis that stopped answering
costs each process one timeout per interval instead of one per request; the
callers then go on without Redis (rate limits are not enforced meanwhile).
"""

import functools

import pybreaker
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

# What a call raises when Redis cannot be used now.
ERRORS: tuple[type[Exception], ...] = (OSError, redis.RedisError, pybreaker.CircuitBreakerError)


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


@functools.cache
def _breaker(reset_timeout: float) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(fail_max=1, reset_timeout=reset_timeout, name="redis")


def client() -> redis.Redis | None:
    """The shared client (thread-safe, one connection pool), or None when
    no Redis is configured (CACHE_URL is not redis://)."""
    if not settings.REDIS_URL:
        return None
    return _client(settings.REDIS_URL, settings.REDIS_TIMEOUT)


def breaker() -> pybreaker.CircuitBreaker:
    return _breaker(settings.REDIS_RETRY_AFTER)


@functools.cache
def script(source: str, url: str = "") -> "redis.commands.core.Script":
    """A Lua script registered on the shared client (EVALSHA, loading it
    when Redis does not know it yet)."""
    return client().register_script(source)


def run(source: str, keys: list[str], args: list) -> object:
    """Runs a Lua script behind the breaker; raises one of ERRORS."""
    registered = script(source, settings.REDIS_URL)
    with breaker().calling():
        return registered(keys=keys, args=args)
