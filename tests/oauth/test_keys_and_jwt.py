import base64
import hashlib
import json
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from django.utils import timezone

from oauth import keys
from oauth.models import SigningKey
from tests.oauth.conftest import basic, bearer, get_token, post


def _pem(private_key) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"]: key for key in response.json()["keys"]}


def test_the_token_is_an_es256_jwt_with_the_documented_claims(client, siem, settings):
    api_client, secret = siem
    token = get_token(client, api_client, secret)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["typ"] == "at+jwt"
    jwk = _jwks(client)[header["kid"]]
    public_key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public_key, algorithms=["ES256"], audience=settings.BASE_URL + "/v1")
    assert claims["iss"] == settings.BASE_URL
    assert claims["sub"] == claims["client_id"] == api_client.client_id
    assert claims["tid"] == str(api_client.tenant_id)
    assert claims["sgen"] == api_client.secret_generation == 1
    assert claims["scope"] == "audit-log:read users:read"
    assert claims["exp"] - claims["iat"] == 900
    assert len(claims["jti"]) >= 16


def test_every_token_has_its_own_jti(client, siem):
    api_client, secret = siem
    tokens = [get_token(client, api_client, secret) for _ in range(3)]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 3


def test_the_kid_is_the_rfc_7638_thumbprint(client, siem):
    api_client, secret = siem
    get_token(client, api_client, secret)
    (jwk,) = _jwks(client).values()
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert jwk["kid"] == thumbprint.decode()
    assert jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk  # never the private part


def test_jwks_is_public_and_cacheable(client, db):
    response = client.get("/.well-known/jwks.json")
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_generated_key_is_kept_in_the_database_encrypted(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    row = SigningKey.objects.get()
    assert row.is_current
    assert jwt.get_unverified_header(token)["kid"] == row.kid
    assert "PRIVATE KEY" not in row.encrypted_private_key
    # Another process (a fresh cache) uses the same key, and does not make one.
    keys.reset_cache()
    assert keys.signing_key().kid == row.kid
    assert SigningKey.objects.count() == 1


def test_processes_racing_to_create_the_first_key_share_one(db):
    # The loser of the race hits the one-current-key constraint and adopts
    # the winner's key.
    winner = keys._new_key_row()
    winner.save()
    adopted = keys._create_current_key()
    assert adopted.pk == winner.pk
    assert SigningKey.objects.filter(is_current=True).count() == 1


def test_a_key_stored_under_another_secret_key_needs_a_fallback(db, settings):
    kid = keys.signing_key().kid
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a different secret key"
    with pytest.raises(keys.ImproperlyConfigured, match="SECRET_KEY_FALLBACKS"):
        keys.signing_key()
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert keys.signing_key().kid == kid


@pytest.mark.parametrize("source", ["value", "escaped value", "file"])
def test_a_configured_key_is_used_and_published(client, siem, settings, tmp_path, source):
    private = ec.generate_private_key(ec.SECP256R1())
    pem = _pem(private)
    if source == "value":
        settings.OAUTH = {**settings.OAUTH, "SIGNING_KEY": pem}
    elif source == "escaped value":
        settings.OAUTH = {**settings.OAUTH, "SIGNING_KEY": pem.replace("\n", "\\n")}
    else:
        path = tmp_path / "signing.pem"
        path.write_text(pem)
        settings.OAUTH = {**settings.OAUTH, "SIGNING_KEY_FILE": str(path)}

    api_client, secret = siem
    token = get_token(client, api_client, secret)
    expected = keys.public_jwk(private.public_key())
    assert jwt.get_unverified_header(token)["kid"] == expected["kid"]
    assert list(_jwks(client)) == [expected["kid"]]
    jwt.decode(token, private.public_key(), algorithms=["ES256"], options={"verify_aud": False})
    assert not SigningKey.objects.exists()
    assert client.get("/v1/users", **bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "not a pem",
        _pem(ec.generate_private_key(ec.SECP384R1())),
    ],
    ids=["garbage", "wrong curve"],
)
def test_a_bad_configured_key_fails_loudly_but_in_json(client, siem, settings, value):
    settings.OAUTH = {**settings.OAUTH, "SIGNING_KEY": value}
    with pytest.raises(keys.ImproperlyConfigured):
        keys.signing_key()
    api_client, secret = siem
    response = post(client, "/v1/oauth", "", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert b"pem" not in response.content.lower()


def test_rotation_keeps_the_retired_key_published_and_its_tokens_valid(client, siem, capsys):
    api_client, secret = siem
    old_token = get_token(client, api_client, secret)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    call_command("rotate_signing_key")
    assert "is current" in capsys.readouterr().out

    new_token = get_token(client, api_client, secret)
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    assert list(_jwks(client)) == [new_kid, old_kid]
    assert client.get("/v1/users", **bearer(old_token)).status_code == 200
    assert client.get("/v1/users", **bearer(new_token)).status_code == 200
    retired = SigningKey.objects.get(kid=old_kid)
    assert not retired.is_current and retired.retired_at is not None


def test_a_retired_key_leaves_jwks_once_its_tokens_have_expired(client, siem, settings):
    api_client, secret = siem
    old_token = get_token(client, api_client, secret)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    keys.rotate()
    SigningKey.objects.filter(kid=old_kid).update(
        retired_at=timezone.now()
        - timedelta(seconds=settings.OAUTH["TOKEN_LIFETIME"] + keys.RELOAD_AFTER + 1)
    )
    keys.reset_cache()
    assert old_kid not in _jwks(client)
    assert client.get("/v1/users", **bearer(old_token)).status_code == 401


def test_another_processs_rotation_is_picked_up_for_an_unknown_kid(client, siem, monkeypatch):
    api_client, secret = siem
    get_token(client, api_client, secret)
    # Another process rotates: this one's cache still has only the old key.
    stale_ring = keys._keyring
    new_row = keys.rotate()
    keys._keyring = stale_ring
    monkeypatch.setattr(keys, "UNKNOWN_KID_RELOAD_AFTER", 0.0)
    assert keys.signing_key().kid != new_row.kid  # still signing with the old key here
    assert keys.verification_key(new_row.kid) is not None


def test_rotating_a_configured_key_is_refused(db, settings):
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    settings.OAUTH = {**settings.OAUTH, "SIGNING_KEY": pem}
    with pytest.raises(CommandError, match="configured"):
        call_command("rotate_signing_key")


def test_the_server_metadata_describes_the_endpoints(client, db, settings):
    settings.BASE_URL = "https://auth.example.com"
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "https://auth.example.com"
    assert meta["token_endpoint"] == "https://auth.example.com/v1/oauth"
    assert meta["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
    assert meta["introspection_endpoint"] == "https://auth.example.com/v1/oauth/introspect"
    assert meta["revocation_endpoint"] == "https://auth.example.com/v1/oauth/revoke"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert meta["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "users:read" in meta["scopes_supported"]
    assert "oauth:read" not in meta["scopes_supported"]
    assert "audit-log:write" not in meta["scopes_supported"]
