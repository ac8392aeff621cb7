"""Django's Redis cache, minus a redis.Redis client built per operation.

Django's RedisCacheClient.get_client() makes a new redis.Redis for every
cache call; redis-py fills in some 170 response callbacks each time, about
60 us of CPU, more than the round trip to Redis itself. The clients share
the connection pools either way, so one per pool is kept instead (redis.Redis
is thread-safe). settings use this backend whenever CACHE_URL is redis://.
"""

from django.core.cache.backends import redis as django_redis
from django.utils.connection import ConnectionProxy

try:
    from redis.exceptions import RedisError

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
        client = cache._cache.get_client(None, write=True)
        script = _counter_scripts.get(id(client))
        if script is None:
            script = _counter_scripts[id(client)] = client.register_script(_COUNTER_ADD)
        return int(script(keys=[cache.make_key(key)], args=[delta, timeout]))
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
_counter_scripts: dict = {}
