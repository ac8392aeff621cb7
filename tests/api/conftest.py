"""The management API's callers: alice's personal access token, and API
clients granted API Clients."""

import pytest

from apiclients.access_tokens import access_token_create
from oauth.clients import client_record
from oauth.tokens import token_issue


@pytest.fixture
def alice_token(alice) -> str:
    _, raw = access_token_create(user=alice, name="Terraform", days=30)
    return raw


@pytest.fixture
def dave_token(dave) -> str:
    _, raw = access_token_create(user=dave, name="Globex script", days=30)
    return raw


@pytest.fixture
def bearer():
    def headers(token: str, **extra) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {token}", **extra}

    return headers


@pytest.fixture
def client_token(make_api_client):
    """An API client with `grants`, and an access token carrying them all."""

    def make(name="Provisioner", grants=("api-clients:write",), **kwargs):
        client, secret = make_api_client(name, grants=list(grants), **kwargs)
        record = client_record(client.client_id)
        issued = token_issue(
            client=record, generation=record.secret_generation, scopes=list(record.grants)
        )
        return client, issued.access_token

    return make
