"""Races on PostgreSQL, through a real threaded server.

While integrations keep asking for tokens with a secret, an admin resets it.
Once the reset has committed: every request that starts afterwards is refused,
and no token issued with the old secret (before or during the reset) is
accepted by the bearer APIs.
"""

import threading
import time

import pytest
import requests
from django.db import connection

from apiclients.models import ApiClient
from apiclients.services import api_client_reset_secret

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the race test needs PostgreSQL's row locks (CI runs it there)")


def test_no_old_secret_works_once_a_reset_has_committed(
    postgres_only, live_server, settings, alice, make_api_client
):
    settings.BASE_URL = live_server.url
    client, old_secret = make_api_client("Hammered")
    token_url = live_server.url + "/v1/oauth"
    stop = threading.Event()
    results: list[tuple[float, float, int, str | None]] = []  # start, end, status, token
    lock = threading.Lock()

    def hammer():
        with requests.Session() as http:
            while not stop.is_set():
                started = time.monotonic()
                r = http.post(token_url, auth=(client.client_id, old_secret), data="")
                token = r.json().get("access_token") if r.status_code == 200 else None
                with lock:
                    results.append((started, time.monotonic(), r.status_code, token))

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        api_client_reset_secret(client=ApiClient.objects.get(pk=client.pk), actor=alice)
        committed_at = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()

    before = [r for r in results if r[1] < committed_at]
    after = [r for r in results if r[0] > committed_at]
    assert any(status == 200 for _, _, status, _ in before), "no token before the reset"
    assert after, "no request started after the reset"
    # Refused: 401, or 429 once the brute-force limit on failures trips.
    statuses = {status for _, _, status, _ in after}
    assert 401 in statuses and statuses <= {401, 429}

    old_tokens = {token for *_, token in results if token}
    with requests.Session() as http:
        for token in old_tokens:
            r = http.get(
                live_server.url + "/v1/users", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 401
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
