"""Error handlers: JSON on the APIs, friendly pages in the console, a 503
with Retry-After when the database is unreachable, and never a stack trace."""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/api/", "/.well-known/", "/healthz", "/readyz")
RETRY_AFTER = "5"


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


def _database_down(exc: BaseException | None) -> bool:
    # OperationalError covers a refused or dropped connection on both
    # backends; InterfaceError a connection that was closed under us.
    return isinstance(exc, OperationalError | InterfaceError)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its except block, so the exception is at hand
    # whether it came from a view or from a middleware (the session's, say).
    exc = sys.exc_info()[1]
    if _database_down(exc):
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
        response["Retry-After"] = RETRY_AFTER
    elif is_api_path(request.path):
        response = JsonResponse(
            {"error": "server_error", "error_description": "Internal server error"}, status=500
        )
    else:
        response = HttpResponse(render_to_string("500.html"), status=500)
    response["Cache-Control"] = "no-store"
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse(
            {"error": "not_found", "error_description": "No such endpoint"}, status=404
        )
    return HttpResponse(render_to_string("404.html", request=request), status=404)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Reached for a foreign Host header too, so nothing here may call
    # request.get_host().
    if is_api_path(request.path):
        return JsonResponse(
            {"error": "invalid_request", "error_description": "Bad request"}, status=400
        )
    return HttpResponse(render_to_string("400.html"), status=400)
