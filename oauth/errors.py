"""Errors of the OAuth endpoints and bearer APIs, always as JSON.

RFC 6749 section 5.2 for the token, introspection and revocation endpoints;
RFC 6750 section 3 for the bearer APIs. Descriptions are fixed strings: they
never echo what the caller sent, so a secret pasted into the wrong field is
never reflected back.
"""

import logging
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger("oauth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TOKEN_REALM = "oauth"
API_REALM = "api"


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self, *, then: "Callable[[], None] | None" = None) -> JsonResponse:
        body = {"error": self.error, "error_description": self.description}
        kwargs = {"status": self.status, "headers": {**NO_STORE, **self.headers}}
        if then is not None:
            return JsonResponseThen(body, then=then, **kwargs)
        return JsonResponse(body, **kwargs)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str = "Client authentication failed") -> OAuthError:
    return OAuthError(
        "invalid_client",
        description,
        status=401,
        headers={"WWW-Authenticate": f'Basic realm="{TOKEN_REALM}"'},
    )


class ClientAuthFailed(OAuthError):
    """A refused client authentication: to the caller `invalid_client` (or a
    lockout's 429), so that an unknown client, a wrong secret, an inactive
    client and a refused address cannot be told apart; the reason and the
    client are for the tenant's audit log only (never the secret)."""

    def __init__(
        self, refusal: OAuthError, *, reason: str, client_id: str, client=None, lockouts=()
    ):
        super().__init__(
            refusal.error, refusal.description, status=refusal.status, headers=refusal.headers
        )
        self.reason = reason
        self.client_id = client_id
        self.client = client
        # Failure limits this very failure reached (oauth.throttle Outcomes).
        self.lockouts = lockouts


class JsonResponseThen(JsonResponse):
    """A JSON response that runs `then` after it has been sent.

    The WSGI server calls close() once the body is written, so work done here
    (an audit insert) adds nothing to the caller's response time, and failures
    for known and unknown clients take the same time to answer."""

    def __init__(self, *args, then: Callable[[], None], **kwargs):
        super().__init__(*args, **kwargs)
        self._then = then

    def close(self):
        try:
            self._then()
        except Exception:
            logger.exception("After-response work failed")
        finally:
            super().close()


def json_errors(view):
    """Whatever goes wrong, the caller gets JSON, never an HTML error page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except OAuthError as exc:
            return exc.response()
        except SuspiciousOperation:
            # e.g. too many query parameters (Django's own limits).
            return invalid_request("The request is malformed").response()
        except DatabaseError:
            logger.exception("Database unavailable in %s", request.path)
            return OAuthError(
                "temporarily_unavailable",
                "The service is temporarily unavailable",
                status=503,
                headers={"Retry-After": "5"},
            ).response()
        except Exception:
            logger.exception("Unexpected error in %s", request.path)
            return OAuthError(
                "server_error", "The server could not handle the request", status=500
            ).response()

    return wrapper


def allow_methods(*methods: str):
    """A 405 in JSON (Django's require_http_methods answers with HTML)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                return OAuthError(
                    "invalid_request",
                    f"Use {' or '.join(methods)}",
                    status=405,
                    headers={"Allow": ", ".join(methods)},
                ).response()
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
