"""Bearer authentication for the APIs (RFC 6750), in one place.

    @require_scope("users:read")
    def users(request): ...  # request.oauth is the Principal

Only `Authorization: Bearer` is accepted; Basic credentials (or none) get a
401 with a Bearer challenge. The view never sees an invalid token, a token
whose client was reset, deactivated or deleted, a revoked one, or one used
from an address outside its client's current IP restriction.
"""

from functools import wraps

from django.http import HttpRequest, JsonResponse

from config.proxies import client_address
from oauth.clients import ip_allowed
from oauth.errors import API_REALM, allow_methods, json_errors
from oauth.tokens import InvalidToken, token_principal


def _refuse(
    status: int, error: str, description: str, *, announce: bool = True, scope: str = ""
) -> JsonResponse:
    challenge = f'Bearer realm="{API_REALM}"'
    # RFC 6750 3.1: a request with no credentials at all gets no error code.
    if announce:
        challenge += f', error="{error}"'
    if scope:
        challenge += f', scope="{scope}"'
    return JsonResponse(
        {"error": error, "error_description": description},
        status=status,
        headers={"WWW-Authenticate": challenge},
    )


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def require_scope(scope: str):
    def decorator(view):
        @wraps(view)
        @json_errors
        @allow_methods("GET", "HEAD")
        def wrapper(request: HttpRequest, *args, **kwargs):
            token = _bearer_token(request)
            if not token:
                return _refuse(
                    401,
                    "invalid_token",
                    "Send Authorization: Bearer <access token> (Basic is not accepted)",
                    announce="HTTP_AUTHORIZATION" in request.META,
                )
            try:
                principal = token_principal(token)
            except InvalidToken:
                return _refuse(401, "invalid_token", "The access token is invalid or expired")
            if not ip_allowed(principal.ip_allowlist, client_address(request)):
                # The client's IP restriction as it is now, on every use. The
                # same answer as any invalid token, as the token endpoint
                # answers a refused address like a wrong secret: whoever
                # holds a stolen token learns nothing from it.
                return _refuse(401, "invalid_token", "The access token is invalid or expired")
            if scope not in principal.scopes:
                return _refuse(
                    403, "insufficient_scope", f"This API needs the {scope} scope", scope=scope
                )
            request.oauth = principal
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
