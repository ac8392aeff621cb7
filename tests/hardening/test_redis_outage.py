"""Redis goes away under load, refused or silent, and comes back.

gunicorn (2 sync workers) serves tokens with its rate-limit counters on Redis
reached through a TCP proxy. Redis holds nothing the token path cannot do
without: while it is unreachable, tokens are still issued (rate limits are
not enforced meanwhile), no request waits more than a moment for it, and no
worker is killed for hanging. Signing in to the console keeps working too.

Needs the local PostgreSQL and Redis in both CI runs."""

import threading
import time

import pytest
import requests

from tests.hardening.servers import (
    DRILL_ADMIN,
    DRILL_PASSWORD,
    TcpProxy,
    app_env,
    drill_database,
    gunicorn,
    sign_in,
)

DATABASE = "apiclients_redis_fault"
ADMIN, PASSWORD = DRILL_ADMIN, DRILL_PASSWORD
SECONDS = 10
CONNECTIONS = 6


def _load(url, client_id, secret, until, results):
    with requests.Session() as http:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                status = http.post(url, auth=(client_id, secret), data="", timeout=20).status_code
            except requests.RequestException:
                status = 0
            results.append((status, time.monotonic() - started))


@pytest.fixture(scope="module")
def redis_drill():
    with drill_database(DATABASE, "Redis drill") as drill:
        yield drill


@pytest.mark.parametrize("fault", ["refused", "silent"])
def test_tokens_keep_coming_while_redis_is_unreachable(redis_drill, tmp_path, fault):
    url, client_id, secret = redis_drill
    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.on()
    env = app_env(DATABASE_URL=url, CACHE_URL=f"redis://127.0.0.1:{proxy.port}/14")
    log = tmp_path / "gunicorn.log"
    try:
        with gunicorn(env, log, workers=2) as server:
            token_url = server.url + "/v1/oauth"
            for _ in range(10):
                assert requests.post(token_url, auth=(client_id, secret), data="").ok

            proxy.off() if fault == "refused" else proxy.silence()
            results = []
            until = time.monotonic() + SECONDS
            load = [
                threading.Thread(target=_load, args=(token_url, client_id, secret, until, results))
                for _ in range(CONNECTIONS)
            ]
            for thread in load:
                thread.start()
            with requests.Session() as console:
                sign_in(console, server.url, ADMIN, PASSWORD)  # never a 500
            for thread in load:
                thread.join()
            proxy.on()
            after = requests.post(token_url, auth=(client_id, secret), data="")
            log_text = log.read_text()
    finally:
        proxy.off()

    latencies = sorted(seconds for _, seconds in results)
    ok = sum(1 for status, _ in results if status == 200)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\n{fault}: {len(results)} requests, {ok} tokens, p99 {p99 * 1000:.0f} ms")
    assert ok >= len(results) / 2
    assert {status for status, _ in results} <= {200}
    assert p99 <= 2.0
    assert "WORKER TIMEOUT" not in log_text
    assert after.status_code == 200
