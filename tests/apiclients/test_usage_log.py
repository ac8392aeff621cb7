"""The usage log: every request a client makes at the token endpoints, by
minute, address, user agent and outcome; counted in the process and
written in batches, shown in the drawer and on its own page, exported as
CSV, pruned after the retention."""

import csv
import io
import re
from datetime import timedelta
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from apiclients import usagelog
from apiclients.models import UsageLogEntry
from oauth import keys
from tests.apiclients.helpers import detail_url, htmx, text
from tests.oauth.conftest import basic, post

HOME = "203.0.113.7"
ELSEWHERE = "198.51.100.9"
AGENT = "python-requests/2.32"


@pytest.fixture(autouse=True)
def _fresh_keyring():
    keys.reset_cache()
    yield
    keys.reset_cache()


@pytest.fixture
def siem(make_api_client):
    return make_api_client("SIEM export")


def _seen(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def _token(api_client, secret, *, ip=HOME, agent=AGENT, **form):
    return post(
        Client(),
        "/v1/oauth",
        urlencode({"grant_type": "client_credentials", **form}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=agent,
    )


def _log_url(api_client, **params) -> str:
    url = reverse("apiclients:usage_log", args=[api_client.client_id])
    return f"{url}?{urlencode(params)}" if params else url


def test_requests_are_counted_in_memory_and_written_in_one_batch(
    siem, settings, django_assert_num_queries
):
    api_client, secret = siem
    for _ in range(5):
        assert _token(api_client, secret).status_code == 200
    for _ in range(2):
        assert _token(api_client, "acsec_wrong", ip=ELSEWHERE).status_code == 401
    # Nothing written yet: the interval has not passed.
    assert not UsageLogEntry.objects.exists()

    with django_assert_num_queries(0):
        usagelog.record(
            RequestFactory().post("/v1/oauth", REMOTE_ADDR=HOME, HTTP_USER_AGENT=AGENT),
            client_pk=api_client.pk,
            endpoint="token",
            outcome=usagelog.OK,
            scopes="users:read",
            now=timezone.now(),
        )
    usagelog.flush()

    ok = UsageLogEntry.objects.filter(client=api_client, outcome="ok", source_ip=HOME)
    assert sum(ok.filter(user_agent=AGENT).values_list("count", flat=True)) == 6
    failed = UsageLogEntry.objects.get(client=api_client, outcome="wrong_secret")
    assert (failed.count, failed.source_ip, failed.user_agent) == (2, ELSEWHERE, AGENT)
    # One row per minute, address, agent and outcome, not one per request.
    assert UsageLogEntry.objects.filter(client=api_client).count() <= 6


def test_pending_rows_are_written_after_the_response_once_the_interval_passes(siem, settings):
    api_client, secret = siem
    clock = [1000.0]
    with mock.patch.object(usagelog.time, "monotonic", lambda: clock[0]):
        usagelog.clear()
        assert _token(api_client, secret).status_code == 200
        assert not UsageLogEntry.objects.exists()
        clock[0] += settings.OAUTH["LAST_REDEEMED_INTERVAL"] * 1.3
        assert _token(api_client, secret).status_code == 200
    assert UsageLogEntry.objects.get(client=api_client).count == 2


def test_the_drawer_shows_where_and_with_what_the_client_was_last_used(
    siem, alice_client, bob_client
):
    api_client, secret = siem
    _token(api_client, secret, ip=ELSEWHERE, agent="curl/8.5")
    _token(api_client, secret)
    _token(api_client, "acsec_wrong", ip="192.0.2.44")

    for reader in (alice_client, bob_client):
        page = _seen(reader.get(detail_url(api_client), headers=htmx()))
        assert f"Last used 0 minutes ago from {HOME} ({AGENT})" in page
        assert "Addresses, last 30 days" in page
        for address in (HOME, ELSEWHERE, "192.0.2.44"):
            assert address in page
        assert "Wrong secret from 192.0.2.44 : 1 time" in page


def test_a_client_never_used_says_so(siem, alice_client):
    api_client, _ = siem
    page = _seen(alice_client.get(detail_url(api_client), headers=htmx()))
    assert "Not used in the last 30 days" in page


def test_the_log_page_lists_filters_and_exports(siem, alice_client, bob_client):
    api_client, secret = siem
    for _ in range(3):
        _token(api_client, secret, scope="users:read")
    _token(api_client, "acsec_wrong", ip=ELSEWHERE, agent="=HYPERLINK(1)")

    for reader in (alice_client, bob_client):
        page = _seen(reader.get(_log_url(api_client)))
        assert f"Usage log: {api_client.name}" in page
        assert HOME in page and ELSEWHERE in page

    failed = _seen(alice_client.get(_log_url(api_client, outcome="failed")))
    assert ELSEWHERE in failed and HOME not in failed
    by_address = _seen(alice_client.get(_log_url(api_client, address=HOME)))
    assert HOME in by_address and ELSEWHERE not in by_address

    export = alice_client.get(reverse("apiclients:usage_log_export", args=[api_client.client_id]))
    assert export["Content-Type"].startswith("text/csv")
    assert "attachment" in export["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert sum(int(r["requests"]) for r in ok) == 3
    assert ok[0]["scopes"] == "users:read" and ok[0]["user_agent"] == AGENT
    refused = [r for r in rows if r["outcome"] == "wrong_secret"]
    # A caller's user agent never becomes a spreadsheet formula.
    assert refused[0]["user_agent"] == "'=HYPERLINK(1)"


def test_a_bad_filter_is_explained_not_a_500(siem, alice_client):
    api_client, _ = siem
    response = alice_client.get(_log_url(api_client, address="not-an-address", days="x"))
    assert response.status_code == 200
    assert "Enter a valid IPv4 or IPv6 address" in _seen(response)


def test_the_log_is_for_readers_of_this_tenant_only(siem, charlie_client, dave_client, client):
    api_client, _ = siem
    assert charlie_client.get(_log_url(api_client)).status_code == 403
    assert dave_client.get(_log_url(api_client)).status_code == 404
    assert client.get(_log_url(api_client)).status_code == 302


def test_a_secret_in_the_user_agent_is_withheld(siem, alice_client):
    api_client, secret = siem
    _token(api_client, secret, agent=f"script {secret}")
    usagelog.flush()
    entry = UsageLogEntry.objects.get(client=api_client)
    assert secret not in entry.user_agent
    assert "withheld" in entry.user_agent
    assert secret not in text(alice_client.get(_log_url(api_client)))


def test_rows_wait_in_the_process_while_the_database_is_down(siem, caplog):
    api_client, secret = siem
    _token(api_client, secret)
    down = mock.patch.object(
        usagelog.ApiClient.objects, "filter", side_effect=OperationalError("connection refused")
    )
    with down:
        usagelog.flush()
    assert not UsageLogEntry.objects.exists()
    assert "kept in memory" in caplog.text
    usagelog.flush()
    assert UsageLogEntry.objects.get(client=api_client).count == 1


def test_a_deleted_clients_pending_rows_go_with_it(siem):
    api_client, secret = siem
    _token(api_client, secret)
    api_client.delete()
    usagelog.flush()
    assert not UsageLogEntry.objects.exists()


def test_the_switch_turns_the_log_off(siem, settings):
    settings.OAUTH = {**settings.OAUTH, "USAGE_LOG": False}
    api_client, secret = siem
    assert _token(api_client, secret).status_code == 200
    usagelog.flush()
    assert not UsageLogEntry.objects.exists()


def test_prune_deletes_rows_older_than_the_retention(siem, settings):
    api_client, _ = siem
    settings.USAGE_LOG_RETENTION_DAYS = 30
    now = timezone.now().replace(second=0, microsecond=0)
    for days, key in ((31, "old"), (29, "new")):
        UsageLogEntry.objects.create(
            client=api_client,
            minute=now - timedelta(days=days),
            key=key,
            endpoint="token",
            outcome="ok",
            count=1,
            last_at=now - timedelta(days=days),
        )
    out = io.StringIO()
    call_command("prune_usage_log", stdout=out)
    assert "Deleted 1 usage log row older than 30 days" in out.getvalue()
    assert list(UsageLogEntry.objects.values_list("key", flat=True)) == ["new"]
