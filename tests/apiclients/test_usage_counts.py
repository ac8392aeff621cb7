"""Token counts and "last redeemed" are counted in the process and written
in batches (apiclients.usage), not with a database write per token, and
nothing is lost while the database is unavailable."""

from datetime import timedelta
from unittest import mock

from django.db import OperationalError
from django.utils import timezone

from apiclients import usage
from apiclients.models import TokenDailyCount


def test_tokens_are_written_once_per_interval_not_one_by_one(
    make_api_client, settings, django_assert_num_queries
):
    client, _ = make_api_client()
    now = timezone.now()
    clock = [1000.0]
    with mock.patch.object(usage.time, "monotonic", lambda: clock[0]):
        usage.clear()
        with django_assert_num_queries(0):
            for _ in range(50):
                usage.token_counted(client.pk, now, last_written=now)
        # The process that counted sees them all the same.
        assert usage.daily_counts(client, now.date())[-1] == (now.date(), 50)

        clock[0] += settings.OAUTH["LAST_REDEEMED_INTERVAL"] * 1.2
        usage.token_counted(client.pk, now, last_written=now)

    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 51
    client.refresh_from_db()
    assert client.last_redeemed_at == now


def test_a_client_not_redeemed_lately_is_written_at_once(make_api_client):
    client, _ = make_api_client()
    now = timezone.now()

    usage.token_counted(client.pk, now, last_written=now - timedelta(hours=1))

    client.refresh_from_db()
    assert client.last_redeemed_at == now
    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 1


def test_counts_wait_in_the_process_while_the_database_is_down(make_api_client, caplog):
    client, _ = make_api_client()
    now = timezone.now()
    down = mock.patch.object(
        usage.ApiClient.objects, "filter", side_effect=OperationalError("connection refused")
    )
    with down:
        for _ in range(3):
            usage.token_counted(client.pk, now, last_written=None)
    assert not TokenDailyCount.objects.exists()
    assert "kept in memory" in caplog.text
    assert usage.daily_counts(client, now.date())[-1] == (now.date(), 3)

    usage.flush()

    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 3
    client.refresh_from_db()
    assert client.last_redeemed_at == now


def test_counts_of_a_client_deleted_meanwhile_do_not_hold_up_the_others(make_api_client, alice):
    from apiclients.services import api_client_delete

    kept, _ = make_api_client("Kept")
    gone, _ = make_api_client("Gone")
    now = timezone.now()
    usage.token_counted(kept.pk, now, last_written=now)
    usage.token_counted(gone.pk, now, last_written=now)
    api_client_delete(client=gone, actor=alice)

    usage.flush()

    assert TokenDailyCount.objects.get(client=kept, day=now.date()).count == 1
    assert not TokenDailyCount.objects.filter(client_id=gone.pk).exists()
    usage.flush()  # nothing left pending
    assert TokenDailyCount.objects.get(client=kept, day=now.date()).count == 1
