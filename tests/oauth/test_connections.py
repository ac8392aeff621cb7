"""Persistent connections survive a database restart without a health-check
round trip per request (config.db). A restart looks to each connection like
pg_terminate_backend: the server says goodbye and closes the socket."""

import select

import pytest
from django.core.signals import request_started
from django.db import close_old_connections, connection

from config.db import drop_dead_connections
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
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    assert poller.poll(2000)


def _token(client, siem):
    api_client, secret = siem
    return post(
        client,
        "/v1/oauth",
        "grant_type=client_credentials",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )


def test_health_checks_are_off(settings):
    # The round trip they cost per request is what config.db avoids.
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False


def test_a_connection_the_server_closed_is_replaced_before_the_request(postgres_only, client, siem):
    assert _token(client, siem).status_code == 200
    _terminate_our_backend()

    response = _token(client, siem)

    assert response.status_code == 200


def test_a_live_connection_is_kept(postgres_only, client, siem):
    assert _token(client, siem).status_code == 200
    before = connection.connection

    drop_dead_connections()

    assert connection.connection is before


def test_without_the_check_one_request_fails_cleanly_and_the_next_reconnects(
    postgres_only, client, siem
):
    request_started.disconnect(dispatch_uid="drop_dead_connections")
    try:
        assert _token(client, siem).status_code == 200
        _terminate_our_backend()

        failed = _token(client, siem)
        # What the WSGI handler does when a request ends (the test client
        # leaves it out): a connection that had errors and is unusable goes.
        close_old_connections()
        recovered = _token(client, siem)
    finally:
        request_started.connect(drop_dead_connections, dispatch_uid="drop_dead_connections")

    assert failed.status_code == 503
    assert failed["Retry-After"]
    assert failed.json()["error"] == "temporarily_unavailable"
    assert recovered.status_code == 200


def test_the_client_lookup_is_a_prepared_statement(postgres_only, client, siem):
    for _ in range(6):
        assert _token(client, siem).status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "apiclients_apiclient"' in sql for sql in prepared)


def test_prepared_queries_are_still_counted_and_logged(postgres_only, client, siem):
    from django.test.utils import CaptureQueriesContext

    # The first token also makes the signing key and sets "last redeemed".
    assert _token(client, siem).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert _token(client, siem).status_code == 200

    selects = [q["sql"] for q in ctx.captured_queries]
    assert len(selects) == 1
    assert siem[0].client_id in selects[0]
