"""The transport that keeps every process's memory current (oauth.coherence),
branch by branch: what a writer waits for, what a poll applies, and what a
process that missed polls forgets."""

import os
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from oauth import clientcache, coherence
from oauth.models import CacheChange, CacheProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enabled(settings):
    settings.OAUTH = {**settings.OAUTH, "CLIENT_CACHE": True, "CLIENT_CACHE_LEASE": 0.6}
    coherence.shutdown()
    yield settings
    coherence.shutdown()


@pytest.fixture
def polled(enabled):
    """This process as a poller, without its thread: the test polls."""
    with mock.patch.object(coherence, "_start"):
        coherence._state.pid = os.getpid()
        coherence._state.name = "test:1"
        coherence.poll()
        yield
        coherence._state.pid = None


def _publish(key="key-a"):
    started = time.monotonic()
    with transaction.atomic():
        coherence.publish("client", key)
    return time.monotonic() - started


def test_a_poll_records_what_it_applied_and_its_lease(polled):
    process = CacheProcess.objects.get(name="test:1")
    assert process.lease_until - process.applied_through == timedelta(seconds=0.6)
    assert coherence.live()


def test_a_change_is_applied_by_the_next_poll_and_only_once(polled):
    clientcache.client_keep("key-a", "record", clientcache.epoch())
    assert clientcache.client_get("key-a") == "record"
    CacheChange.objects.create(topic="client", key="key-a")

    coherence.poll()
    assert clientcache.client_get("key-a") is None

    clientcache.client_keep("key-a", "reloaded", clientcache.epoch())
    coherence.poll()  # the same change again: not applied twice
    assert clientcache.client_get("key-a") == "reloaded"


def test_a_row_read_while_a_change_was_applied_is_not_kept(polled):
    read_at = clientcache.epoch()
    CacheChange.objects.create(topic="client", key="key-b")
    coherence.poll()

    clientcache.client_keep("key-a", "read before the change", read_at)

    assert clientcache.client_get("key-a") is None


def test_a_process_that_missed_polls_forgets_everything(polled):
    clientcache.client_keep("key-a", "record", clientcache.epoch())
    coherence._state.lease_until = 0.0  # its lease ran out meanwhile
    assert not coherence.live()

    coherence.poll()

    assert coherence.live()
    assert clientcache.client_get("key-a") is None


def test_without_word_from_the_database_memory_is_not_used(polled):
    with mock.patch.object(coherence, "_db_now", side_effect=OperationalError("silent")):
        with pytest.raises(OperationalError):
            coherence.poll()
        time.sleep(0.65)
    assert not coherence.live()
    assert clientcache.client_get("key-a") is None


def test_the_writer_does_not_wait_when_no_process_holds_a_lease(enabled):
    assert _publish() < 0.2


def test_the_writer_waits_for_a_process_that_holds_a_lease_but_does_not_poll(enabled):
    CacheProcess.objects.create(
        name="gone-quiet",
        applied_through=timezone.now() - timedelta(seconds=1),
        lease_until=timezone.now() + timedelta(seconds=0.5),
    )

    waited = _publish()

    # Until that lease had run out, and no longer.
    assert 0.4 <= waited < 1.0


def test_the_writer_stops_waiting_once_every_process_has_applied_the_change(polled):
    with mock.patch.object(coherence.time, "sleep", side_effect=lambda s: coherence.poll()):
        waited = _publish()

    assert waited < 0.3
    assert CacheProcess.objects.get(name="test:1").applied_through > timezone.now() - timedelta(
        seconds=1
    )


def test_a_writer_cut_off_after_its_commit_waits_out_one_lease(enabled, caplog):
    with mock.patch.object(coherence, "_db_now", side_effect=OperationalError("silent")):
        waited = _publish()

    assert 0.55 <= waited < 1.0
    assert "waiting out one lease" in caplog.text
    assert CacheChange.objects.filter(key="key-a").exists()


def test_a_change_rolled_back_is_never_published(enabled):
    with pytest.raises(RuntimeError), transaction.atomic():
        coherence.publish("client", "key-a")
        raise RuntimeError("the change failed")

    assert not CacheChange.objects.exists()


def test_nothing_is_published_while_memory_is_off(settings):
    settings.OAUTH = {**settings.OAUTH, "CLIENT_CACHE": False}
    _publish()
    assert not CacheChange.objects.exists()
    assert not coherence.live()


def test_old_changes_and_processes_long_gone_are_pruned(polled):
    old = CacheChange.objects.create(topic="client", key="old")
    CacheChange.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    CacheProcess.objects.create(
        name="long-gone",
        applied_through=timezone.now() - timedelta(days=1),
        lease_until=timezone.now() - timedelta(days=1),
    )
    coherence._state.pruned_at = 0.0

    coherence.poll()

    assert not CacheChange.objects.filter(key="old").exists()
    assert not CacheProcess.objects.filter(name="long-gone").exists()
