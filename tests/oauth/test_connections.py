"""PostgreSQL connections (config/postgresql): a restarted server is noticed
without a round trip per request, and a server that stops answering costs a
request DATABASE_TIMEOUT at most, then nothing until it is tried again."""

import select
import time

import pytest
from django.db import close_old_connections, connection, connections
from django.db.utils import OperationalError

from config.postgresql.base import breaker
from tests.hardening.servers import TcpProxy
from tests.oauth.conftest import basic, post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("about PostgreSQL connections (CI runs it there)")


def _terminate_our_backend():
    pid = connection.connection.info.backend_pid
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    # Wait until the goodbye has reached our socket, as it has long before
    # the next request after a real restart.
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    assert poller.poll(2000)


def _token(client, siem):
    api_client, secret = siem
    return post(
        client,
        "/v1/oauth",
        "grant_type=client_credentials",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )


def test_a_connection_the_server_closed_is_replaced_before_the_request(postgres_only, client, siem):
    assert _token(client, siem).status_code == 200
    _terminate_our_backend()
    close_old_connections()  # what the WSGI handler does as a request starts

    response = _token(client, siem)

    assert response.status_code == 200


def test_the_health_check_costs_no_query(postgres_only, client, siem, django_assert_num_queries):
    assert _token(client, siem).status_code == 200
    before = connection.connection
    close_old_connections()

    with django_assert_num_queries(1):  # the client's row, nothing before it
        assert _token(client, siem).status_code == 200

    assert connection.connection is before


@pytest.fixture
def silent_database(postgres_only, settings):
    """The default database reached through a proxy that can go silent."""
    proxy = TcpProxy((connection.settings_dict["HOST"] or "127.0.0.1", 5432))
    proxy.on()
    settings.DATABASE_TIMEOUT = 1.0
    settings.DATABASE_RETRY_AFTER = 1.0
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
    try:
        yield proxy
    finally:
        proxy.on()
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
        proxy.off()
        breaker().close()


def test_a_silent_database_costs_one_timeout_then_fails_fast(silent_database, client, siem):
    assert _token(client, siem).status_code == 200
    silent_database.silence()

    started = time.monotonic()
    first = _token(client, siem)
    first_took = time.monotonic() - started
    started = time.monotonic()
    second = _token(client, siem)
    second_took = time.monotonic() - started

    assert first.status_code == 503
    assert first.json()["error"] == "temporarily_unavailable"
    assert first["Retry-After"]
    assert first_took < 3  # DATABASE_TIMEOUT (1 s) + the watchdog's margin
    assert second.status_code == 503
    assert second_took < 0.2  # the breaker is open: not even tried


def test_service_resumes_once_the_database_answers_again(silent_database, client, siem):
    assert _token(client, siem).status_code == 200
    silent_database.silence()
    assert _token(client, siem).status_code == 503
    silent_database.on()
    close_old_connections()

    deadline = time.monotonic() + 5
    while (response := _token(client, siem)).status_code != 200 and time.monotonic() < deadline:
        close_old_connections()
        time.sleep(0.2)

    assert response.status_code == 200


def test_a_refused_database_fails_at_once(silent_database, client, siem):
    silent_database.off()
    connection.close()

    started = time.monotonic()
    response = _token(client, siem)

    assert response.status_code == 503
    assert time.monotonic() - started < 1


def test_a_slow_statement_is_cancelled_by_the_server_without_opening_the_breaker(
    postgres_only, settings
):
    settings.DATABASE_TIMEOUT = 0.5
    connection.close()
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 300")
        cursor.execute("SELECT pg_sleep(2)")

    assert breaker().current_state == "closed"
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
