from unittest import mock

from django.db import OperationalError
from django.test import Client

LIST = "/administration/integrations/api-clients/"


def test_console_pages_carry_a_strict_content_security_policy(alice_client):
    response = alice_client.get(LIST)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_an_unknown_api_path_is_a_json_404(db):
    response = Client().get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_unknown_console_path_is_a_friendly_404(alice_client):
    response = alice_client.get("/administration/nothing-here/")
    assert response.status_code == 404
    assert b"Traceback" not in response.content
    assert response["Content-Type"].startswith("text/html")


def test_the_console_says_unavailable_when_the_database_is_down(alice):
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    with mock.patch(
        "apiclients.models.ApiClientQuerySet.for_tenant",
        side_effect=OperationalError("connection to server at 127.0.0.1 failed"),
    ):
        response = client.get(LIST)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"temporarily unavailable" in response.content
    assert b"127.0.0.1" not in response.content and b"Traceback" not in response.content


def test_a_foreign_host_gets_a_json_400_on_the_api(db):
    response = Client(raise_request_exception=False).get("/v1/users", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_foreign_host_gets_a_plain_400_page_in_the_console(db):
    response = Client(raise_request_exception=False).get(
        "/administration/integrations/api-clients/", HTTP_HOST="evil.example"
    )
    assert response.status_code == 400
    assert b"could not be understood" in response.content
