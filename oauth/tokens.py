"""Access tokens: issuing, verifying, introspecting and revoking.

A token is an ES256 JWT (RFC 9068 profile, `typ: at+jwt`) with the client's
tenant (`tid`) and secret generation (`sgen`). Verifying it loads the client
row in one query that also asks whether its jti was revoked, so a reset
(the generation moves on), a deactivation, a deletion or a revocation cuts the
token off at once, while the signature spares us any token table.
"""

import base64
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apiclients.catalog import INTROSPECTION_SCOPE, normalize_grants
from oauth import clientcache, keys
from oauth.clients import ClientRecord, client_and_revocation, client_record
from oauth.errors import OAuthError
from oauth.models import RevokedToken

TOKEN_TYPE = "at+jwt"
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp", "jti", "scope", "tid", "sgen", "client_id"]


_JTI_RE = re.compile(r"[\x21-\x7e]{1,64}")


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True)
class Principal:
    """Who a valid bearer token speaks for, as of now."""

    client_pk: int
    client_id: str
    tenant_id: uuid.UUID
    # The token's scopes that the client still holds: removing a grant in the
    # console takes effect on tokens already issued.
    scopes: frozenset[str]
    claims: dict
    # The client's IP restriction as of now (oauth.bearer applies it), so a
    # restriction added in the console stops tokens already issued.
    ip_allowlist: tuple[str, ...] = ()


def issuer() -> str:
    return settings.BASE_URL


def audience() -> str:
    # The bearer APIs of this deployment. A token is for these APIs only.
    return settings.BASE_URL + "/v1"


def token_scopes(client: ClientRecord, requested: str | None) -> list[str]:
    """The scopes for a new token: the requested subset of the client's
    grants, or all of them when none is requested (RFC 6749 3.3)."""
    granted = normalize_grants(client.effective_grants(timezone.now()))
    if requested is None or not requested.strip():
        return granted
    wanted = set(requested.split())
    if not wanted <= set(granted):
        raise OAuthError("invalid_scope", "The requested scope exceeds the client's grants")
    return [scope for scope in granted if scope in wanted]


def token_issue(*, client: ClientRecord, generation: int, scopes: list[str]) -> IssuedToken:
    """A token for `client`, earned with the secret of `generation`."""
    key = keys.signing_key()
    now = int(time.time())
    # Never outlive the client's expiry, nor (for a token earned with the old
    # secret of a rotation) the end of the overlap.
    ends = [now + settings.OAUTH["TOKEN_LIFETIME"]]
    if client.expires_at is not None:
        ends.append(int(client.expires_at.timestamp()))
    if generation != client.secret_generation and client.previous_secret_expires_at:
        ends.append(int(client.previous_secret_expires_at.timestamp()))
    # Nor the tenant's maximum token lifetime (apiclients.policies).
    if client.max_token_lifetime:
        ends.append(now + client.max_token_lifetime)
    lifetime = max(1, min(ends) - now)
    scope = " ".join(scopes)
    claims = {
        "iss": issuer(),
        "sub": client.client_id,
        "aud": audience(),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
        "scope": scope,
        "tid": str(client.tenant_id),
        "sgen": generation,
    }
    return IssuedToken(access_token=_jws(key, claims), expires_in=lifetime, scope=scope)


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _jws(key: keys.Key, claims: dict) -> str:
    """The signed JWT (ES256): what jwt.encode() writes, byte for byte, with
    the header serialised once per key instead of once per token."""
    signing_input = (
        _header_segment(key.kid)
        + b"."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(key.private_key.sign(signing_input, _ECDSA_SHA256))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS: R || S, not DER
    return (signing_input + b"." + _b64url(signature)).decode()


@lru_cache(maxsize=16)
def _header_segment(kid: str) -> bytes:
    header = {"alg": keys.ALGORITHM, "kid": kid, "typ": TOKEN_TYPE}
    return _b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# Tokens whose signature and claims have been verified, with their claims:
# an integration presents the same token on every call for its lifetime, and
# an ECDSA verification costs more than the rest of the request. Only what
# cannot change is remembered (the signature over these exact bytes, the
# issuer, audience and claim types); expiry and the signing key being still
# published are checked on every use, the client and revocation in the
# database as before. Per process, at most _VERIFIED_MAX tokens.
_verified: dict[tuple[str, str, str], tuple[str, dict]] = {}
_VERIFIED_MAX = 4096


def token_decode(token: str) -> dict:
    """The claims of a token we issued that has not expired; checks the
    signature, issuer, audience and claim types, not the database."""
    cache_key = (token, issuer(), audience())
    known = _verified.get(cache_key)
    if known is not None:
        kid, claims = known
        if claims["exp"] > time.time() and keys.verification_key(kid) is not None:
            return dict(claims)
        _verified.pop(cache_key, None)
        raise InvalidToken("expired or its key was withdrawn")
    claims, kid = _token_verify(token)
    while len(_verified) >= _VERIFIED_MAX:
        # The oldest first (dicts keep insertion order).
        _verified.pop(next(iter(_verified)), None)
    _verified[cache_key] = (kid, claims)
    return dict(claims)


def _token_verify(token: str) -> tuple[dict, str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise InvalidToken("malformed") from None
    kid = header.get("kid")
    if header.get("typ") != TOKEN_TYPE or not isinstance(kid, str):
        raise InvalidToken("not an access token")
    key = keys.verification_key(kid)
    if key is None:
        raise InvalidToken("unknown key")
    try:
        claims = jwt.decode(
            token,
            key.public_key,
            algorithms=[keys.ALGORITHM],
            audience=audience(),
            issuer=issuer(),
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(type(exc).__name__) from None
    if not (
        isinstance(claims["sub"], str)
        and claims["client_id"] == claims["sub"]
        and isinstance(claims["jti"], str)
        # Printable ASCII only: the jti goes into the revocation query, and
        # PostgreSQL refuses a NUL byte with an error rather than a miss.
        and _JTI_RE.fullmatch(claims["jti"]) is not None
        and isinstance(claims["scope"], str)
        and isinstance(claims["sgen"], int)
        and isinstance(claims["tid"], str)
    ):
        raise InvalidToken("unexpected claims")
    try:
        claims["tid"] = uuid.UUID(claims["tid"])
    except ValueError:
        raise InvalidToken("unexpected claims") from None
    return claims, kid


def token_principal(token: str) -> Principal:
    """The principal of a token that is valid right now, or InvalidToken.

    The client must still exist in the token's tenant, be active and be on
    the secret generation the token was issued under, and the token's jti
    must not be revoked: from this process's memory while it is current
    (oauth.clientcache), else from the database."""
    claims = token_decode(token)
    client = clientcache.client_get(claims["sub"])
    revoked = clientcache.revoked(claims["jti"])
    if revoked is None:
        client, revoked = client_and_revocation(claims["sub"], claims["jti"])
    elif client is None:
        client = client_record(claims["sub"])
    now = timezone.now()
    if (
        client is None
        or client.tenant_id != claims["tid"]
        or not client.generation_live(claims["sgen"], now)
        or not client.is_active
        or client.is_expired(now)
    ):
        raise InvalidToken("client reset, deactivated, expired or deleted")
    if revoked:
        raise InvalidToken("revoked")
    return Principal(
        client_pk=client.pk,
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        scopes=frozenset(claims["scope"].split()) & frozenset(client.effective_grants(now)),
        claims=claims,
        ip_allowlist=tuple(client.ip_allowlist or ()),
    )


def token_introspection_permitted(client: ClientRecord) -> None:
    """RFC 7662 2.1: the introspection endpoint needs an authorization of its
    own, granted in the console ("Token introspection"). A client without it
    has authenticated fine, so not invalid_client (401, which would send its
    owner to check the secret) but 403 insufficient_scope (RFC 6750 3.1)."""
    if INTROSPECTION_SCOPE not in client.effective_grants(timezone.now()):
        raise OAuthError(
            "insufficient_scope",
            f"Introspection needs the Token introspection permission ({INTROSPECTION_SCOPE})",
            status=403,
        )


def token_introspect(*, token: str, tenant_id: uuid.UUID) -> dict:
    """RFC 7662. A token of another tenant is reported inactive, exactly like
    a forged one: its existence is none of the caller's business."""
    try:
        principal = token_principal(token)
    except InvalidToken:
        return {"active": False}
    if principal.tenant_id != tenant_id:
        return {"active": False}
    claims = principal.claims
    return {
        "active": True,
        "scope": " ".join(s for s in claims["scope"].split() if s in principal.scopes),
        "client_id": claims["client_id"],
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "sub": claims["sub"],
        "aud": claims["aud"],
        "iss": claims["iss"],
        "jti": claims["jti"],
        "tid": str(claims["tid"]),
    }


def token_revoke(*, token: str, tenant_id: uuid.UUID, client_id: str) -> bool:
    """RFC 7009. A client revokes only tokens issued to it (2.1); invalid,
    expired and other clients' tokens are a silent no-op (the endpoint
    answers 200 either way). Returns whether a token was revoked."""
    try:
        claims = token_decode(token)
    except InvalidToken:
        return False
    if claims["tid"] != tenant_id or claims["client_id"] != client_id:
        return False
    now = timezone.now()
    jti = claims["jti"][:64]
    with transaction.atomic():
        RevokedToken.objects.bulk_create(
            [
                RevokedToken(
                    jti=jti,
                    tenant_id=tenant_id,
                    client_id=claims["client_id"][:64],
                    expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
                )
            ],
            ignore_conflicts=True,
        )
        # Every process knows before the endpoint answers (oauth.coherence).
        clientcache.token_revoked(jti, claims["exp"])
    # Opportunistic pruning: a revoked token that has expired is refused anyway.
    revoked_tokens_prune(now=now)
    return True


def revoked_tokens_prune(*, now: datetime | None = None) -> int:
    deleted, _ = RevokedToken.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
