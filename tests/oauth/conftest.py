import base64
import json

import pytest

from oauth import keys

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@pytest.fixture(autouse=True)
def _fresh_keyring():
    # Each test has its own database; the per-process key cache must follow.
    keys.reset_cache()
    yield
    keys.reset_cache()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(client, path, body=b"", content_type=FORM, **extra):
    """A raw POST, as curl sends it."""
    if isinstance(body, dict):
        body = json.dumps(body)
    return client.generic("POST", path, data=body, content_type=content_type, **extra)


def get_token(client, api_client, secret, **form) -> str:
    from urllib.parse import urlencode

    response = post(
        client,
        "/v1/oauth",
        urlencode({"grant_type": "client_credentials", **form}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def siem(make_api_client):
    """An Acme client holding users:read and audit-log:read: (client, secret)."""
    return make_api_client("SIEM export")
