"""The plaintext secret exists in exactly one place: the reveal response.
Not in any table, any later page, any export or any log line."""

import logging

import pytest
from django.db import connection

from apiclients.models import ApiClient
from tests.apiclients.helpers import (
    AUDIT_URL,
    CREATE_URL,
    EXPORT_URL,
    HTMX,
    LIST_URL,
    SUDO,
    detail_url,
    edit_url,
    form_data,
    reset_url,
    secret_in,
    text,
)


def database_dump() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def later_pages(web, client) -> dict[str, str]:
    pages = {
        "list": web.get(LIST_URL),
        "list fragment": web.get(LIST_URL, headers={**HTMX, "HX-Target": "api-client-results"}),
        "search": web.get(LIST_URL + f"?q={client.client_id}"),
        "drawer": web.get(detail_url(client), headers=HTMX),
        "details page": web.get(detail_url(client)),
        "edit dialog": web.get(edit_url(client), headers=HTMX),
        "edit page": web.get(edit_url(client)),
        "reset dialog": web.get(reset_url(client), headers=HTMX),
        "audit log": web.get(AUDIT_URL),
        "csv": web.get(EXPORT_URL),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
    return {name: text(response) for name, response in pages.items()}


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_secret_nowhere(secret: str, client: ApiClient, web, caplog) -> None:
    dump = database_dump()
    assert client.client_id in dump  # the dump does see the client's row
    assert secret not in dump
    # Not even the random part, in case something stripped the prefix.
    assert secret.removeprefix("acsec_") not in dump
    for name, body in later_pages(web, client).items():
        assert secret not in body, name
        assert client.client_id in body, name
        # Nor is the stored digest ever shown back.
        assert client.secret_digest not in body, name
    for record in caplog.records:
        assert secret not in record.getMessage()


def test_after_create_the_secret_is_only_in_the_reveal(alice_client, all_logs):
    response = alice_client.post(CREATE_URL, form_data(name="SIEM export"), headers=HTMX)
    secret = secret_in(response)
    client = ApiClient.objects.get(name="SIEM export")
    assert client.check_secret(secret)
    assert_secret_nowhere(secret, client, alice_client, all_logs)


def test_after_reset_the_new_secret_is_only_in_the_reveal(alice_client, make_api_client, all_logs):
    client, old = make_api_client("SIEM export")
    response = alice_client.post(reset_url(client), SUDO)
    new = secret_in(response)
    client.refresh_from_db()
    assert client.check_secret(new)
    assert_secret_nowhere(new, client, alice_client, all_logs)
    assert_secret_nowhere(old, client, alice_client, all_logs)


def test_the_secret_is_not_in_the_session(alice_client):
    response = alice_client.post(CREATE_URL, form_data(), headers=HTMX)
    secret = secret_in(response)
    session = alice_client.session
    assert secret not in repr(dict(session.items()))
