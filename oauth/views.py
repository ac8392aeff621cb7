"""The OAuth 2.0 endpoints, server metadata and health checks.

Thin on purpose: each endpoint parses (oauth.request), authenticates through
one service (oauth.clients), acts (oauth.tokens) and answers. None of these
views touch the session or request.user, so the session and auth middleware
do no work for them.
"""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from apiclients import usage, usagelog
from apiclients.catalog import GRANTABLE_APIS
from config.proxies import client_address
from oauth import keys, spool, throttle
from oauth.clients import Authenticated, client_authenticate, failure_audit
from oauth.errors import (
    NO_STORE,
    ClientAuthFailed,
    JsonResponseThen,
    OAuthError,
    allow_methods,
    json_errors,
)
from oauth.request import parse_token_param_request, parse_token_request
from oauth.tokens import (
    issuer,
    token_introspect,
    token_introspection_permitted,
    token_issue,
    token_revoke,
    token_scopes,
)

logger = logging.getLogger("oauth")

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
_SENSITIVE = ("client_secret", "client_password", "token")


def _remote_addr(request: HttpRequest) -> str | None:
    # The client's address: behind trusted proxies, the one they name.
    return client_address(request)


def _refused(request: HttpRequest, error: OAuthError, endpoint: str) -> JsonResponse:
    """The error response. A refused client is audited once the response
    has been sent, so known and unknown clients are answered equally fast."""
    if not isinstance(error, ClientAuthFailed):
        return error.response()
    address = _remote_addr(request)
    due = error.client is not None and usagelog.record(
        request,
        client_pk=error.client.pk,
        endpoint=endpoint,
        outcome=error.reason,
        now=timezone.now(),
    )

    def then():
        failure_audit(error, endpoint=endpoint, source_ip=address)
        if due:
            usagelog.flush()

    return error.response(then=then)


def _used(request: HttpRequest, auth: Authenticated, endpoint: str, scopes: str = "") -> list:
    """Counts a served request in the usage log: the work to do after the
    response (the log's pending rows, when due)."""
    due = usagelog.record(
        request,
        client_pk=auth.client.pk,
        endpoint=endpoint,
        outcome=usagelog.OK,
        scopes=scopes,
        now=timezone.now(),
    )
    return [usagelog.flush] if due else []


def _answer(body: dict, headers: dict, after: list) -> JsonResponse:
    if spool.pending():
        after = [*after, spool.drain]
    if not after:
        return JsonResponse(body, headers=headers)

    def then():
        for work in after:
            work()

    return JsonResponseThen(body, headers=headers, then=then)


def _audited(error: OAuthError, auth: Authenticated) -> ClientAuthFailed:
    """A refusal of an authenticated client (it asked for more than it
    holds), audited like a failed authentication."""
    return ClientAuthFailed(
        error, reason=error.error, client_id=auth.client.client_id, client=auth.client
    )


def _authenticated(request: HttpRequest, endpoint: str, parse) -> tuple[Authenticated, object]:
    """Parses the request and authenticates its client: (who, what was
    parsed), or an OAuthError. A request refused before its credentials
    were read still counts against its address's rate limit."""
    address = _remote_addr(request)
    try:
        parsed = parse(request)
    except OAuthError:
        throttle.check(endpoint=endpoint, client_id=None, ip=address)
        raise
    credentials = parsed[0] if isinstance(parsed, tuple) else parsed.credentials
    return client_authenticate(credentials, endpoint=endpoint, address=address), parsed


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def token(request: HttpRequest) -> JsonResponse:
    try:
        auth, token_request = _authenticated(request, "token", parse_token_request)
    except OAuthError as exc:
        return _refused(request, exc, "token")
    try:
        scopes = token_scopes(auth.client, token_request.scope)
    except OAuthError as exc:
        return _refused(request, _audited(exc, auth), "token")
    issued = token_issue(client=auth.client, generation=auth.generation, scopes=scopes)
    usage.token_counted(auth.client.pk, timezone.now(), last_written=auth.client.last_redeemed_at)
    body = {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    after = _used(request, auth, "token", issued.scope)
    return _answer(body, {**NO_STORE, **auth.rate_headers}, after)


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def introspect(request: HttpRequest) -> JsonResponse:
    try:
        auth, (_, params) = _authenticated(request, "introspect", parse_token_param_request)
    except OAuthError as exc:
        return _refused(request, exc, "introspect")
    try:
        token_introspection_permitted(auth.client)
    except OAuthError as exc:
        return _refused(request, _audited(exc, auth), "introspect")
    result = token_introspect(token=params["token"], tenant_id=auth.client.tenant_id)
    return _answer(result, {**NO_STORE, **auth.rate_headers}, _used(request, auth, "introspect"))


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def revoke(request: HttpRequest) -> JsonResponse:
    try:
        auth, (_, params) = _authenticated(request, "revoke", parse_token_param_request)
    except OAuthError as exc:
        return _refused(request, exc, "revoke")
    if token_revoke(
        token=params["token"], tenant_id=auth.client.tenant_id, client_id=auth.client.client_id
    ):
        logger.info("Client %s revoked a token", auth.client.client_id)
    # RFC 7009 2.2: 200 whether or not there was anything to revoke.
    return _answer({}, {**NO_STORE, **auth.rate_headers}, _used(request, auth, "revoke"))


_PUBLIC = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


@json_errors
@allow_methods("GET", "HEAD")
def jwks(request: HttpRequest) -> JsonResponse:
    return JsonResponse(keys.jwks(), headers=_PUBLIC)


@json_errors
@allow_methods("GET", "HEAD")
def metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414 server metadata."""
    base = issuer()
    return JsonResponse(
        {
            "issuer": base,
            "token_endpoint": base + reverse("oauth:token"),
            "jwks_uri": base + reverse("oauth:jwks"),
            "introspection_endpoint": base + reverse("oauth:introspect"),
            "revocation_endpoint": base + reverse("oauth:revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "scopes_supported": [scope for api in GRANTABLE_APIS for scope in api.scopes],
        },
        headers=_PUBLIC,
    )


def healthz(request: HttpRequest) -> JsonResponse:
    # No database, no decorators: this is the framework's ceiling in benchmarks.
    return JsonResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def readyz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("Readiness check: the database is unavailable")
        return JsonResponse(
            {"status": "unavailable", "database": "unavailable"},
            status=503,
            # As the token endpoint's 503 (oauth.errors): when to ask again.
            headers={"Cache-Control": "no-store", "Retry-After": "5"},
        )
    return JsonResponse({"status": "ok", "database": "ok"}, headers={"Cache-Control": "no-store"})
