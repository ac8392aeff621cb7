from unittest import mock

from config import ratelimit
from config.ratelimit import Limit


def test_it_allows_up_to_the_limit_then_refuses():
    limit = Limit("test", limit=3, window=60)
    outcomes = [ratelimit.hit(limit, "203.0.113.9") for _ in range(4)]
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert [o.remaining for o in outcomes] == [2, 1, 0, 0]
    refused = outcomes[-1].headers()
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_subjects_are_counted_apart():
    limit = Limit("test", limit=1, window=60)
    assert ratelimit.hit(limit, "a").allowed
    assert ratelimit.hit(limit, "b").allowed
    assert not ratelimit.hit(limit, "a").allowed


def test_a_new_window_starts_afresh():
    limit = Limit("test", limit=1, window=60)
    with mock.patch("config.ratelimit.time.time", return_value=1_000_000.0):
        assert ratelimit.hit(limit, "a").allowed
        assert not ratelimit.hit(limit, "a").allowed
    with mock.patch("config.ratelimit.time.time", return_value=1_000_060.0):
        assert ratelimit.hit(limit, "a").allowed


def test_peek_does_not_count():
    limit = Limit("test", limit=1, window=60)
    ratelimit.hit(limit, "a")
    assert ratelimit.peek(limit, "a").count == 1
    assert ratelimit.peek(limit, "a").count == 1


def test_count_many_counts_and_reads_in_one_go_and_agrees_with_hit_and_peek():
    a = Limit("test-a", limit=2, window=60)
    b = Limit("test-b", limit=5, window=60)
    ratelimit.hit(b, "x")
    with mock.patch("config.ratelimit.time.time", return_value=1_000_000.0):
        first = ratelimit.count_many([ratelimit.Count(a, "x"), ratelimit.Count(b, "x", cost=0)])
        second = ratelimit.count_many([ratelimit.Count(a, "x", cost=2)])
        assert ratelimit.peek(a, "x").count == 3
    assert [o.count for o in first] == [1, 0]
    assert first[0].reset_after == 20  # 1,000,000 s is 40 s into a minute
    assert second[0].count == 3 and not second[0].allowed
