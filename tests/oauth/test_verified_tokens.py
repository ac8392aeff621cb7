"""A bearer token's signature is verified once per process (oauth.tokens);
what can change is still checked on every request."""

from datetime import timedelta
from unittest import mock

import jwt
from django.utils import timezone

from apiclients.services import api_client_reset_secret
from oauth import keys, tokens
from oauth.clients import client_record
from oauth.models import SigningKey
from tests.oauth.conftest import bearer, get_token


def users(client, token):
    return client.get("/v1/users", **bearer(token))


def test_a_token_is_verified_once_then_remembered(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    assert users(client, token).status_code == 200

    with mock.patch("oauth.tokens.jwt.decode") as decode:
        assert users(client, token).status_code == 200
    decode.assert_not_called()


def test_a_remembered_token_still_expires(client, siem, settings):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    assert users(client, token).status_code == 200

    later = tokens.time.time() + settings.OAUTH["TOKEN_LIFETIME"] + 1
    with mock.patch("oauth.tokens.time.time", return_value=later):
        response = users(client, token)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_a_remembered_token_dies_with_its_key(client, siem, settings):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    assert users(client, token).status_code == 200
    kid = jwt.get_unverified_header(token)["kid"]
    keys.rotate()
    SigningKey.objects.filter(kid=kid).update(
        retired_at=timezone.now()
        - timedelta(seconds=settings.OAUTH["TOKEN_LIFETIME"] + keys.RELOAD_AFTER + 1)
    )
    keys.reset_cache()

    assert users(client, token).status_code == 401


def test_a_remembered_token_is_still_cut_off_by_a_reset(client, siem, alice):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    assert users(client, token).status_code == 200

    api_client_reset_secret(client=api_client, actor=alice)

    assert users(client, token).status_code == 401


def test_a_tampered_copy_of_a_remembered_token_is_refused(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    assert users(client, token).status_code == 200
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]

    assert users(client, f"{header}.{payload}.{flipped}").status_code == 401


def test_the_memory_is_bounded(client, siem, monkeypatch):
    monkeypatch.setattr(tokens, "_VERIFIED_MAX", 3)
    api_client, secret = siem
    for _ in range(5):
        assert users(client, get_token(client, api_client, secret)).status_code == 200
    assert len(tokens._verified) == 3


def test_an_issued_token_is_what_pyjwt_writes_and_verifies(siem):
    api_client, _ = siem
    issued = tokens.token_issue(
        client=client_record(api_client.client_id),
        generation=api_client.secret_generation,
        scopes=["users:read"],
    )
    header, payload, signature = issued.access_token.split(".")
    claims = jwt.decode(
        issued.access_token,
        keys.signing_key().public_key,
        algorithms=["ES256"],
        audience=tokens.audience(),
    )

    reference = jwt.encode(
        claims,
        keys.signing_key().private_key,
        algorithm="ES256",
        headers={"kid": keys.signing_key().kid, "typ": "at+jwt"},
    )
    # ECDSA signatures are randomised; everything else is the same bytes.
    assert reference.split(".")[:2] == [header, payload]
    assert len(jwt.utils.base64url_decode(signature)) == 64
