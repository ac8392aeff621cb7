"""Audit events of refused token requests survive a database outage
(oauth.spool): kept in a local file, written once the database is back,
each exactly once and with the time it happened."""

import json
import shutil
import uuid
from unittest import mock

import pytest
from django.db import OperationalError

from apiclients.models import AuditAction, AuditEvent
from oauth import spool
from tests.oauth.conftest import basic, post


def _refused(client, api_client):
    return post(
        client,
        "/v1/oauth",
        "",
        HTTP_AUTHORIZATION=basic(api_client.client_id, "acsec_" + "x" * 43),
        REMOTE_ADDR="198.51.100.7",
    )


def _failures():
    return AuditEvent.objects.filter(action=AuditAction.TOKEN_FAILED)


def _database_down():
    return mock.patch.object(
        AuditEvent, "save", side_effect=OperationalError("the database is unreachable")
    )


def test_a_failure_during_an_outage_is_written_when_the_database_is_back(
    client, siem, settings, tmp_path
):
    api_client, secret = siem
    with _database_down():
        assert _refused(client, api_client).status_code == 401
    assert not _failures().exists()
    assert list((tmp_path / "spool").glob("audit-*.jsonl"))

    # The next request that reaches the database writes it.
    assert (
        post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    ).status_code == 200

    event = _failures().get()
    assert event.client_id == api_client.client_id
    assert event.source_ip == "198.51.100.7"
    assert event.details["reason"] == "wrong_secret"
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    assert not spool.pending()


def test_an_event_written_twice_is_stored_once(client, siem, tmp_path):
    api_client, _ = siem
    with _database_down():
        _refused(client, api_client)
    (spooled,) = (tmp_path / "spool").glob("audit-*.jsonl")
    kept = tmp_path / "copy.jsonl"
    shutil.copy(spooled, kept)

    assert spool.drain() == 1
    # As if the process had stopped after writing, before removing the file.
    shutil.copy(kept, spooled)
    spool.drain()

    assert _failures().count() == 1


def test_while_the_database_is_still_down_the_file_stays(client, siem, tmp_path):
    api_client, _ = siem
    with _database_down():
        _refused(client, api_client)
        with mock.patch.object(
            AuditEvent.objects, "bulk_create", side_effect=OperationalError("still down")
        ):
            assert spool.drain() == 0
    assert list((tmp_path / "spool").glob("audit-*.jsonl"))
    assert spool.drain() == 1


@pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit
def test_an_event_the_database_refuses_for_good_does_not_hold_up_the_others(
    client, siem, tmp_path, make_api_client
):
    api_client, _ = siem
    with _database_down():
        _refused(client, api_client)
    (spooled,) = (tmp_path / "spool").glob("audit-*.jsonl")
    # An event of a tenant deleted meanwhile, kept in the same file.
    line = (
        spooled.read_text()
        .splitlines()[0]
        .replace(str(api_client.tenant_id), "00000000-0000-0000-0000-000000000000")
    )
    orphan = json.loads(line)
    orphan["spool_id"] = str(uuid.uuid4())
    with spooled.open("a") as f:
        f.write(json.dumps(orphan) + "\n")

    assert spool.drain() == 1

    assert _failures().count() == 1
    assert not list((tmp_path / "spool").glob("*.jsonl"))
