from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone

from apiclients.models import AuditAction, AuditEvent
from oauth.models import RevokedToken
from tests.oauth.conftest import JSON, basic, bearer, get_token, post


@pytest.fixture
def token(client, siem):
    api_client, secret = siem
    return get_token(client, api_client, secret)


@pytest.fixture
def gateway(make_api_client):
    """An Acme client granted Token introspection: (client, secret)."""
    return make_api_client("API gateway", grants=["introspection:read"])


@pytest.fixture
def globex_client(make_api_client, dave):
    return make_api_client("Globex SIEM", actor=dave, grants=["users:read", "introspection:read"])


def introspect(client, creds, token, **extra):
    api_client, secret = creds
    return post(
        client,
        "/v1/oauth/introspect",
        urlencode({"token": token}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        **extra,
    )


def revoke(client, creds, token):
    api_client, secret = creds
    return post(
        client,
        "/v1/oauth/revoke",
        urlencode({"token": token, "token_type_hint": "access_token"}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )


def test_introspection_describes_an_active_token(client, siem, gateway, token, settings):
    response = introspect(client, gateway, token)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    api_client, _ = siem
    claims = jwt.decode(token, options={"verify_signature": False})
    assert body == {
        "active": True,
        "scope": "audit-log:read users:read",
        "client_id": api_client.client_id,
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "sub": api_client.client_id,
        "aud": settings.BASE_URL + "/v1",
        "iss": settings.BASE_URL,
        "jti": claims["jti"],
        "tid": str(api_client.tenant_id),
    }


def test_introspection_needs_the_token_introspection_permission(
    client, siem, make_api_client, token
):
    # Not even its own token: the endpoint is for clients granted it (RFC 7662 2.1).
    for creds in (siem, make_api_client("Other", grants=["users:read", "alerts:write"])):
        response = introspect(client, creds, token)
        assert response.status_code == 403
        assert response["Cache-Control"] == "no-store"
        assert response.json() == {
            "error": "insufficient_scope",
            "error_description": (
                "Introspection needs the Token introspection permission (introspection:read)"
            ),
        }
        assert b"active" not in response.content
    event = AuditEvent.objects.filter(action=AuditAction.TOKEN_FAILED).first()
    assert event.details == {"reason": "insufficient_scope", "endpoint": "introspect"}


def test_the_permission_is_offered_in_the_console_and_in_the_metadata(client, alice_client):
    page = alice_client.get("/administration/integrations/api-clients/new/")
    assert b"Token introspection" in page.content
    assert b'value="introspection:read"' in page.content
    assert (
        "introspection:read"
        in client.get("/.well-known/oauth-authorization-server").json()["scopes_supported"]
    )


def test_another_client_of_the_same_tenant_granted_it_may_introspect(client, gateway, token):
    assert introspect(client, gateway, token).json()["active"] is True


def test_introspection_with_json_credentials_works(client, gateway, token):
    api_client, secret = gateway
    body = {"client_id": api_client.client_id, "client_secret": secret, "token": token}
    response = post(client, "/v1/oauth/introspect", body, content_type=JSON)
    assert response.json()["active"] is True


def test_another_tenant_sees_the_token_as_inactive(client, globex_client, token):
    response = introspect(client, globex_client, token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000])
def test_garbage_is_inactive(client, gateway, token):
    assert introspect(client, gateway, token).json() == {"active": False}


def test_introspection_needs_client_authentication(client, siem, token):
    response = post(client, "/v1/oauth/introspect", urlencode({"token": token}))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    api_client, secret = siem
    wrong = introspect(client, (api_client, secret + "x"), token)
    assert wrong.status_code == 401
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_FAILED)
    assert event.details == {"reason": "wrong_secret", "endpoint": "introspect"}


def test_introspection_needs_a_token(client, siem):
    api_client, secret = siem
    response = post(
        client, "/v1/oauth/introspect", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_revoked_token_is_refused_everywhere(client, siem, gateway, token):
    assert client.get("/v1/users", **bearer(token)).status_code == 200
    response = revoke(client, siem, token)
    assert response.status_code == 200
    assert response.json() == {}
    assert client.get("/v1/users", **bearer(token)).status_code == 401
    assert introspect(client, gateway, token).json() == {"active": False}
    # Revoking twice is fine.
    assert revoke(client, siem, token).status_code == 200
    # Other tokens of the same client still work.
    api_client, secret = siem
    other = get_token(client, api_client, secret)
    assert client.get("/v1/users", **bearer(other)).status_code == 200


def test_another_client_of_the_same_tenant_cannot_revoke_a_token(client, gateway, token):
    # RFC 7009 2.1: only the client the token was issued to; the answer is
    # the same 200 as for any token the caller may not know about.
    response = revoke(client, gateway, token)
    assert response.status_code == 200
    assert response.json() == {}
    assert client.get("/v1/users", **bearer(token)).status_code == 200
    assert introspect(client, gateway, token).json()["active"] is True
    assert not RevokedToken.objects.exists()


def test_another_tenant_cannot_revoke_a_token(client, globex_client, token):
    response = revoke(client, globex_client, token)
    assert response.status_code == 200  # RFC 7009: nothing to tell
    assert client.get("/v1/users", **bearer(token)).status_code == 200
    assert not RevokedToken.objects.exists()


def test_revoking_garbage_is_a_200_no_op(client, siem):
    assert revoke(client, siem, "garbage").status_code == 200
    assert not RevokedToken.objects.exists()


def test_revocation_needs_client_authentication(client, token):
    response = post(client, "/v1/oauth/revoke", urlencode({"token": token}))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="oauth"'
    assert client.get("/v1/users", **bearer(token)).status_code == 200


def test_expired_revocations_are_pruned(client, siem, token, capsys):
    revoke(client, siem, token)
    RevokedToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("prune_revoked_tokens")
    assert "Removed 1" in capsys.readouterr().out
    assert not RevokedToken.objects.exists()


def test_revoking_prunes_expired_revocations_as_it_goes(client, siem, token):
    api_client, secret = siem
    revoke(client, siem, token)
    RevokedToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    revoke(client, siem, get_token(client, api_client, secret))
    assert RevokedToken.objects.count() == 1
