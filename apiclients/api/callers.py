"""Who is calling the management API, decided once per request.

Two kinds of caller, both with `Authorization: Bearer`:

- a console admin's personal access token (`acpat_...`): acts as that admin,
  holds every grantable permission, may manage every client of the tenant;
- an API client's access token from the token endpoint: reads with
  `api-clients:read`, changes with `api-clients:write`, and only ever within
  what its token holds (apiclients.api.guards).

Each caller is rate limited like the token endpoint (config.ratelimit; the
same RateLimit-* headers).
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest

from apiclients.access_tokens import access_token_authenticate
from apiclients.api.problems import Problem, unauthorized
from apiclients.catalog import ALL_SCOPES, API_CLIENTS_READ, API_CLIENTS_WRITE
from apiclients.models import Tenant
from apiclients.services import ClientActor
from config import ratelimit, redis
from config.proxies import client_address
from oauth.clients import ip_allowed
from oauth.tokens import InvalidToken, token_principal


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    # A user (personal access token) or a services.ClientActor.
    actor: object
    # What the caller could grant: an admin everything grantable, a client
    # the scopes its token carries.
    held: frozenset[str]
    is_person: bool
    can_read: bool
    can_write: bool
    # The calling client's primary key, for the guards on itself.
    client_pk: int | None = None
    rate_headers: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        if self.is_person:
            return f"user:{self.actor.pk}"
        return f"client:{self.actor.client_id}"


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def caller_authenticate(request: HttpRequest) -> Caller:
    """The caller, rate limited, or a 401/429 Problem."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized(
            "Send Authorization: Bearer <token>: a personal access token from the console "
            "(Access tokens, beside your name), or an API client's access token.",
            error=None if "HTTP_AUTHORIZATION" not in request.META else "invalid_token",
        )
    if token.startswith("acpat_"):
        caller = _person(token)
    else:
        caller = _client(token, request)
    headers = _rate_limit(caller)
    return Caller(**{**caller.__dict__, "rate_headers": headers})


_INVALID = "The token is invalid, expired or revoked."


def _person(token: str) -> Caller:
    pat = access_token_authenticate(token)
    if pat is None:
        raise unauthorized(_INVALID)
    return Caller(
        tenant=pat.tenant,
        actor=pat.user,
        held=ALL_SCOPES,
        is_person=True,
        can_read=True,
        can_write=True,
    )


def _client(token: str, request: HttpRequest) -> Caller:
    try:
        principal = token_principal(token)
    except InvalidToken:
        raise unauthorized(_INVALID) from None
    if not ip_allowed(principal.ip_allowlist, client_address(request)):
        # As the bearer APIs answer it: a stolen token learns nothing.
        raise unauthorized(_INVALID)
    return Caller(
        # Only its primary key is used (tenant-scoped lookups, audit rows).
        tenant=Tenant(id=principal.tenant_id),
        actor=ClientActor(principal.client_id),
        held=principal.scopes,
        is_person=False,
        can_read=API_CLIENTS_READ in principal.scopes or API_CLIENTS_WRITE in principal.scopes,
        can_write=API_CLIENTS_WRITE in principal.scopes,
        client_pk=principal.client_pk,
    )


def _rate_limit(caller: Caller) -> dict[str, str]:
    per_minute = settings.MANAGEMENT_API_RATE_LIMIT
    if not per_minute:
        return {}
    limit = ratelimit.Limit("mgmt-api", per_minute, 60)
    try:
        outcome = ratelimit.hit(limit, caller.label)
    except redis.ERRORS:
        # As the token endpoint does: without Redis, no limits rather than
        # no API (config.redis logs the outage).
        return {}
    if not outcome.allowed:
        raise Problem(
            429,
            f"Too many requests: at most {per_minute} a minute. "
            f"Retry after {outcome.reset_after} seconds.",
            headers=outcome.headers(),
        )
    return outcome.headers()


def require_read(caller: Caller) -> None:
    if not caller.can_read:
        raise Problem(
            403,
            f"This API needs the API Clients permission ({API_CLIENTS_READ} or "
            f"{API_CLIENTS_WRITE}); an admin grants it in the console.",
        )


def require_write(caller: Caller) -> None:
    if not caller.can_write:
        raise Problem(
            403,
            f"Changing API clients needs the API Clients write permission ({API_CLIENTS_WRITE}); "
            "an admin grants it in the console.",
        )
