"""Project-wide middleware: security headers and database outages."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

# No inline scripts or styles anywhere: htmx is served from our origin and
# configured through a <meta> tag, dialogs and copy buttons live in app.js.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

API_PREFIXES = ("/v1/", "/api/", "/.well-known/", "/healthz", "/readyz")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response


class DatabaseUnavailableMiddleware:
    """When the database cannot be reached, say so with a 503 (JSON on the
    APIs, a friendly page in the console) instead of a stack trace. Django
    opens a new connection on the next request, so service resumes by itself
    when the database is back."""

    RETRY_AFTER = "5"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except (OperationalError, InterfaceError) as exc:
            # Raised outside a view (a middleware touching the session, say).
            return self._unavailable(request, exc)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, OperationalError | InterfaceError) or (
            isinstance(exception, DatabaseError) and _looks_like_outage(exception)
        ):
            return self._unavailable(request, exception)
        return None

    def _unavailable(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.error("Database unavailable: %s", type(exc).__name__)
        if is_api_path(request.path):
            response = JsonResponse(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The service is temporarily unavailable. "
                    "Retry after a few seconds.",
                },
                status=503,
            )
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = self.RETRY_AFTER
        response["Cache-Control"] = "no-store"
        return response


def _looks_like_outage(exc: DatabaseError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("connection", "server closed", "terminating"))
