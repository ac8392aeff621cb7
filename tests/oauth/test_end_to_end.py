"""The whole path over real HTTP: a standard OAuth 2.0 client gets a token,
a standard JWT library verifies it against our JWKS, and the API accepts it."""

import jwt
import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from apiclients.services import api_client_reset_secret


@pytest.fixture
def server(live_server, settings, monkeypatch):
    # The live server speaks plain HTTP; oauthlib refuses that unless told.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    settings.BASE_URL = live_server.url
    return live_server.url


@pytest.mark.parametrize("include_client_id", [False, True], ids=["basic", "form"])
def test_requests_oauthlib_gets_a_token_that_pyjwkclient_verifies_and_the_api_accepts(
    server, make_api_client, include_client_id
):
    api_client, secret = make_api_client()
    session = OAuth2Session(client=BackendApplicationClient(client_id=api_client.client_id))
    token = session.fetch_token(
        token_url=server + "/v1/oauth",
        client_id=api_client.client_id,
        client_secret=secret,
        include_client_id=include_client_id,
    )
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 900
    assert token["scope"] == ["audit-log:read", "users:read"]

    metadata = requests.get(server + "/.well-known/oauth-authorization-server", timeout=5).json()
    assert metadata["token_endpoint"] == server + "/v1/oauth"
    jwks = jwt.PyJWKClient(metadata["jwks_uri"])
    signing_key = jwks.get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(
        token["access_token"],
        signing_key.key,
        algorithms=["ES256"],
        audience=server + "/v1",
        issuer=server,
    )
    assert claims["sub"] == api_client.client_id
    assert claims["tid"] == str(api_client.tenant_id)

    # The session sends the token as a Bearer header.
    response = session.get(server + "/v1/users?active=true&blocked=false&pageSize=100", timeout=5)
    assert response.status_code == 200
    assert [u["username"] for u in response.json()["users"]] == ["alice"]


def test_a_narrower_scope_and_a_reset_over_http(server, make_api_client, alice):
    api_client, secret = make_api_client()
    # On the oauthlib client, not the session: fetch_token only sends the former.
    backend = BackendApplicationClient(client_id=api_client.client_id, scope=["audit-log:read"])
    session = OAuth2Session(client=backend)
    token = session.fetch_token(
        token_url=server + "/api/v3/oauth/token",
        client_id=api_client.client_id,
        client_secret=secret,
    )
    assert token["scope"] == ["audit-log:read"]
    assert session.get(server + "/v1/audit-log", timeout=5).status_code == 200
    forbidden = session.get(server + "/v1/users", timeout=5)
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["WWW-Authenticate"]

    api_client_reset_secret(client=api_client, actor=alice)
    refused = session.get(server + "/v1/audit-log", timeout=5)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    old_secret = requests.post(
        server + "/v1/oauth", auth=(api_client.client_id, secret), data="", timeout=5
    )
    assert old_secret.status_code == 401
    assert old_secret.json()["error"] == "invalid_client"
