"""Django's Redis cache, minus a redis.Redis client built per operation.

Django's RedisCacheClient.get_client() makes a new redis.Redis for every
cache call; redis-py fills in some 170 response callbacks each time, about
60 us of CPU, more than the round trip to Redis itself. The clients share
the connection pools either way, so one per pool is kept instead (redis.Redis
is thread-safe). settings use this backend whenever CACHE_URL is redis://.
"""

from django.core.cache.backends import redis as django_redis


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
