"""The OAuth 2.0 endpoints, server metadata and health checks.

Thin on purpose: `oauth.request` parses, `oauth.clients` authenticates,
`oauth.tokens` issues and verifies. None of these views touch the session or
request.user, so the session and auth middleware do no work for them.
"""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from apiclients import usage
from apiclients.catalog import GRANTABLE_APIS
from apiclients.models import ApiClient
from config.proxies import client_address
from oauth import clientcache, keys, throttle
from oauth.clients import (
    client_authenticate,
    client_mark_redeemed,
    client_refusal,
    client_row,
    token_failure_record,
)
from oauth.errors import (
    NO_STORE,
    ClientAuthFailed,
    OAuthError,
    allow_methods,
    invalid_client,
    json_errors,
)
from oauth.request import Credentials, parse_token_param_request, parse_token_request
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


class _LockedOut(OAuthError):
    """Refused before the secret was checked: too many failures."""

    def __init__(self, error: OAuthError, client_id: str):
        super().__init__(error.error, error.description, status=error.status, headers=error.headers)
        self.client_id = client_id


def _refused(
    request: HttpRequest, error: OAuthError, endpoint: str, *, client: ApiClient | None = None
) -> JsonResponse:
    """The error response. A refused client is audited once it has been sent,
    so known and unknown clients are answered equally fast; repeated failures
    of one client from one address are aggregated (oauth.throttle)."""
    if isinstance(error, ClientAuthFailed):
        client, client_id, reason = error.client, error.client_id, error.reason
    elif isinstance(error, _LockedOut):
        client_id, reason = error.client_id, "too_many_failures"
    elif client is not None:
        client_id, reason = client.client_id, error.error
    else:
        return error.response()
    source_ip = _remote_addr(request)

    def record():
        suppressed = throttle.audit_suppressed(client_id=client_id, ip=source_ip)
        if suppressed is None:
            return
        known = client
        if known is None and reason == "too_many_failures":
            # Not loaded (the secret was not checked): find its tenant.
            known, _ = client_row(client_id)
        token_failure_record(
            client=known,
            client_id=client_id,
            reason=reason,
            endpoint=endpoint,
            source_ip=source_ip,
            suppressed=suppressed,
        )

    return error.response(then=record)


@sensitive_variables()
def _authenticate(
    request: HttpRequest, credentials: Credentials | None, endpoint: str
) -> tuple[ApiClient, dict[str, str]]:
    """The authenticated client and its RateLimit-* headers; or an
    OAuthError (429 over a limit, before the secret is even looked at)."""
    remote_addr = _remote_addr(request)
    if credentials is not None:
        # The common case: a client in this worker's memory, the right
        # secret, within the rate limits counted in memory (no round trip).
        client_id = credentials.client_id
        client = clientcache.cached(client_id)
        if (
            client is not None
            and not throttle.locked_out_locally(
                endpoint=endpoint, client_id=client_id, ip=remote_addr
            )
            and client_refusal(client, credentials.secret, remote_addr) is None
        ):
            headers = throttle.counted_locally(
                endpoint=endpoint, client_id=client_id, ip=remote_addr
            )
            if headers is not None:
                return client, headers
    check = throttle.check(
        endpoint=endpoint,
        client_id=credentials.client_id if credentials else None,
        ip=remote_addr,
    )
    if check.refused is not None:
        if check.locked_out:
            raise _LockedOut(check.refused, credentials.client_id)
        raise check.refused
    if credentials is None:
        raise invalid_client("Client authentication is required")
    try:
        client = client_authenticate(credentials, remote_addr=remote_addr)
    except ClientAuthFailed:
        throttle.authentication_failed(check)
        raise
    throttle.authentication_succeeded(check)
    return client, check.headers


def _counted(request: HttpRequest, endpoint: str) -> None:
    """A request refused before its credentials were read still counts
    against its address's rate limit."""
    check = throttle.check(endpoint=endpoint, client_id=None, ip=_remote_addr(request))
    if check.refused is not None:
        raise check.refused


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def token(request: HttpRequest) -> JsonResponse:
    try:
        token_request = _parsed(request, "token", parse_token_request)
        client, rate_headers = _authenticate(request, token_request.credentials, "token")
    except OAuthError as exc:
        return _refused(request, exc, "token")
    try:
        scopes = token_scopes(client, token_request.scope)
    except OAuthError as exc:
        return _refused(request, exc, "token", client=client)
    issued = token_issue(client=client, scopes=scopes)
    now = timezone.now()
    # With the client cache's thread running, it moves the counts on.
    usage.token_counted(client.pk, now, flush=not clientcache.live())
    client_mark_redeemed(client, now=now)
    return JsonResponse(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        headers={**NO_STORE, **rate_headers},
    )


def _parsed(request: HttpRequest, endpoint: str, parse):
    try:
        return parse(request)
    except OAuthError:
        _counted(request, endpoint)
        raise


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def introspect(request: HttpRequest) -> JsonResponse:
    try:
        credentials, params = _parsed(request, "introspect", parse_token_param_request)
        client, rate_headers = _authenticate(request, credentials, "introspect")
    except OAuthError as exc:
        return _refused(request, exc, "introspect")
    try:
        token_introspection_permitted(client)
    except OAuthError as exc:
        return _refused(request, exc, "introspect", client=client)
    result = token_introspect(token=params["token"], tenant_id=client.tenant_id)
    return JsonResponse(result, headers={**NO_STORE, **rate_headers})


@csrf_exempt
@sensitive_post_parameters(*_SENSITIVE)
@json_errors
@allow_methods("POST")
def revoke(request: HttpRequest) -> JsonResponse:
    try:
        credentials, params = _parsed(request, "revoke", parse_token_param_request)
        client, rate_headers = _authenticate(request, credentials, "revoke")
    except OAuthError as exc:
        return _refused(request, exc, "revoke")
    if token_revoke(token=params["token"], tenant_id=client.tenant_id, client_id=client.client_id):
        logger.info("Client %s revoked a token", client.client_id)
    # RFC 7009 2.2: 200 whether or not there was anything to revoke.
    return JsonResponse({}, headers={**NO_STORE, **rate_headers})


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
