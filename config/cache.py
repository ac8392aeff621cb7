"""Django's Redis cache, minus a redis.Redis client built per operation.

Django's RedisCacheClient.get_client() makes a new redis.Redis for every
cache call; redis-py fills in some 170 response callbacks each time, about
60 us of CPU, more than the round trip to Redis itself. The clients share
the connection pools either way, so one per pool is kept instead (redis.Redis
is thread-safe). settings use this backend whenever CACHE_URL is redis://.
"""

import functools
import hashlib
import os
import threading

from django.core.cache.backends import redis as django_redis
from django.utils.connection import ConnectionProxy

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # What a cache call raises when the cache cannot be reached.
    CACHE_ERRORS: tuple[type[Exception], ...] = (OSError, RedisError)
except ImportError:  # pragma: no cover (redis is a dependency)
    CACHE_ERRORS = (OSError,)


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


def counter_add(cache, key: str, delta: int, timeout: int) -> int:
    """Adds `delta` to the integer counter `key`, creating it (expiring after
    `timeout` seconds) when missing; returns the new value.

    Django's incr() checks that the key exists first (a round trip of its
    own) and raises when it does not, so a counter costs two or three round
    trips; on Redis this is one: INCRBY, and EXPIRE when that created it, in
    a script. Other caches: incr(), or add() for a new counter."""
    if isinstance(cache, ConnectionProxy):  # django.core.cache.cache
        cache = cache._connections[cache._alias]
    if isinstance(cache, django_redis.RedisCache):
        return int(script_run(cache, _COUNTER_ADD, [cache.make_key(key)], [delta, timeout]))
    try:
        return cache.incr(key, delta)
    except ValueError:
        # A concurrent add() may win; then incr() finds the key.
        if cache.add(key, delta, timeout=timeout):
            return delta
        return cache.incr(key, delta)


_COUNTER_ADD = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return count
"""


def script_run(cache, source: str, keys: list[str], args: list) -> object:
    """Runs the Lua script `source` on the Redis cache: EVALSHA, loading the
    script when Redis does not know it yet.

    What redis-py's Script object does, minus what made it cost about 190 us
    of CPU for the token endpoint's rate-limit check, against some 25 us for
    the round trip itself: redis-py's command packer (its own encoder call
    per argument), the pool's get and release per command, and the retry and
    observability layers of redis-py 8. Each thread keeps one connection of
    the cache's pool for these calls. A connection found broken (Redis
    restarted since it was last used) is retried once on a new one; any
    other failure raises (CACHE_ERRORS)."""
    connection = _script_connection(cache)
    command = _pack("EVALSHA", _script_sha(source), len(keys), *keys, *args)
    try:
        try:
            return _send(connection, command)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            connection.disconnect()
            return _send(connection, command)
    except NoScriptError:
        _send(connection, _pack("SCRIPT", "LOAD", source))
        return _send(connection, command)


def _send(connection, command: bytes) -> object:
    connection.send_packed_command([command], check_health=False)
    return connection.read_response()


def _pack(*args) -> bytes:
    # RESP: an array of bulk strings.
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


_local = threading.local()


def _script_connection(cache):
    pool = cache._cache.get_client(None, write=True).connection_pool
    kept = getattr(_local, "connections", None)
    if kept is None:
        kept = _local.connections = {}
    held = kept.get(id(pool))
    if held is None or held[0] is not pool or held[1] != os.getpid():
        # Taken from the pool for good: the pool's own limits and settings
        # (address, password, TLS, timeouts) apply to it.
        held = kept[id(pool)] = (pool, os.getpid(), pool.get_connection())
    return held[2]


@functools.cache
def _script_sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)
