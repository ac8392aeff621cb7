"""Token counts are buffered in the process and reach the shared cache at
most once a second (apiclients.usage), not with a round trip per token."""

from unittest import mock

from django.core.cache import cache
from django.utils import timezone

from apiclients import usage
from apiclients.models import TokenDailyCount


def test_tokens_reach_the_cache_once_a_second_not_one_by_one(make_api_client):
    client, _ = make_api_client()
    now = timezone.now()
    key = usage._key(client.pk, now.date())
    clock = [1000.0]
    with (
        mock.patch.object(usage.time, "monotonic", lambda: clock[0]),
        mock.patch.object(usage, "_flushed_at", [1000.0]),
    ):
        for _ in range(50):
            usage.token_counted(client.pk, now)
        assert cache.get(key) is None
        # The process that counted sees them all the same.
        assert usage.daily_counts(client, now.date())[-1] == (now.date(), 50)

        clock[0] += usage.BUFFER_SECONDS
        usage.token_counted(client.pk, now)

    assert cache.get(key) == 51
    assert usage.daily_counts(client, now.date())[-1] == (now.date(), 51)


def test_the_coalesced_write_takes_buffered_tokens_along(make_api_client):
    client, _ = make_api_client()
    now = timezone.now()
    with mock.patch.object(usage, "_flushed_at", [float("inf")]):  # never on its own
        for _ in range(3):
            usage.token_counted(client.pk, now)
        usage.counts_flush(client.pk, now)

    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 3
    assert usage.daily_counts(client, now.date())[-1] == (now.date(), 3)


def test_counts_wait_in_the_process_while_the_cache_is_down(make_api_client, caplog):
    from redis.exceptions import ConnectionError as RedisDown

    client, _ = make_api_client()
    now = timezone.now()
    key = usage._key(client.pk, now.date())
    with mock.patch.object(usage, "_flushed_at", [float("inf")]):
        usage.token_counted(client.pk, now)
        usage.token_counted(client.pk, now)
    with mock.patch.object(usage, "counter_add", side_effect=RedisDown("refused")):
        usage.buffer_flush()
    assert cache.get(key) is None
    assert "cache is unavailable" in caplog.text

    usage.buffer_flush()

    assert cache.get(key) == 2


def test_the_coalesced_write_survives_a_cache_outage(make_api_client, caplog):
    from redis.exceptions import ConnectionError as RedisDown

    client, _ = make_api_client()
    now = timezone.now()
    down = mock.Mock(side_effect=RedisDown("refused"))
    with mock.patch.object(usage, "cache", mock.Mock(get=down, decr=down)):
        usage.counts_flush(client.pk, now)  # no exception: the token is not refused for it
    assert "cache is unavailable" in caplog.text
