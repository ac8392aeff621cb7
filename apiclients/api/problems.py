"""RFC 9457 problem details: every error of the management API is one.

`type` is "about:blank" (RFC 9457 4.2.1): the status says what kind of
problem it is, `title` is its phrase, `detail` says what to do. Validation
errors add `errors`, one per field with the console's message.
"""

import json
from http import HTTPStatus

from django.http import HttpResponse

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str = "") -> dict:
        body = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body

    def response(self, instance: str = "") -> HttpResponse:
        response = HttpResponse(
            json.dumps(self.body(instance), default=str),
            status=self.status,
            content_type=PROBLEM_JSON,
        )
        response.headers["Cache-Control"] = "no-store"
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def not_found() -> Problem:
    # The same for another tenant's client as for one that never existed.
    return Problem(404, "No API client with this client ID in your tenant.")


def forbidden(detail: str) -> Problem:
    return Problem(403, detail)


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> Problem:
    challenge = 'Bearer realm="api"'
    if error:
        challenge += f', error="{error}"'
    return Problem(401, detail, headers={"WWW-Authenticate": challenge})
