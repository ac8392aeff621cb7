"""Parsing of token, introspection and revocation requests.

Everything a caller can send is checked here, and anything unexpected becomes
an `invalid_request` (400), never an exception that reaches Django's error
pages. Client credentials may come from exactly one of: HTTP Basic (RFC 6749
2.3.1, the `curl -u` of Code42's documentation), form fields `client_id`/`client_secret`, or a
JSON body (`client_secret` or `client_password`, as in Cisco's API).
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from oauth.errors import OAuthError, invalid_client, invalid_request

# A token request is a few hundred bytes; anything this large is not one.
MAX_BODY = 16 * 1024
MAX_FIELDS = 32
SECRET_FIELDS = ("client_secret", "client_password")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str = field(repr=False)
    method: str


@dataclass(frozen=True)
class TokenRequest:
    credentials: Credentials | None
    scope: str | None


def parse_token_request(request: HttpRequest) -> TokenRequest:
    query = _query_params(request)
    params = body_params(request)

    grant_type = params.get("grant_type")
    query_grant_type = query.get("grant_type")
    if grant_type is not None and query_grant_type is not None and grant_type != query_grant_type:
        raise invalid_request("grant_type differs between the query string and the body")
    grant_type = grant_type if grant_type is not None else query_grant_type
    if grant_type is None and not params:
        # `curl -X POST -u id:secret -d "" .../v1/oauth`, as Code42 documents it.
        grant_type = "client_credentials"
    if not grant_type:
        raise invalid_request("grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Only client_credentials is supported")

    return TokenRequest(credentials=client_credentials(request, params), scope=params.get("scope"))


def parse_token_param_request(request: HttpRequest) -> tuple[Credentials | None, dict[str, str]]:
    """Introspection and revocation: client credentials plus a `token`."""
    _query_params(request)
    params = body_params(request)
    credentials = client_credentials(request, params)
    if not params.get("token"):
        raise invalid_request("token is required")
    return credentials, params


def _query_params(request: HttpRequest) -> dict[str, str]:
    raw = request.META.get("QUERY_STRING", "")
    if not raw:
        return {}
    try:
        # WSGI hands the query string over as latin-1; the bytes must be UTF-8.
        text = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise invalid_request("The query string is not UTF-8") from None
    query = _form_params(text)
    if any(name in query for name in SECRET_FIELDS):
        # RFC 6749 2.3.1: secrets in URLs end up in logs.
        raise invalid_request("Client credentials must not be sent in the query string")
    return query


def body_params(request: HttpRequest) -> dict[str, str]:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise invalid_request("Invalid Content-Length") from None
    if length > MAX_BODY:
        raise invalid_request("The request body is too large")
    if length <= 0:
        return {}
    try:
        body = request.body
    except OSError:
        raise invalid_request("The request body could not be read") from None
    if not body:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_request("The request body is not UTF-8") from None

    content_type = (request.content_type or "").lower()
    if content_type == FORM:
        return _form_params(text)
    if content_type == JSON:
        return _json_params(text)
    raise invalid_request(f"Send the parameters as {FORM} or {JSON}")


def _form_params(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except ValueError:  # too many fields, or percent-escapes that are not UTF-8
        raise invalid_request("The parameters are malformed") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # RFC 6749 3.2: parameters must not be included more than once.
            raise invalid_request("A parameter is repeated")
        params[name] = value
    return params


def _json_params(text: str) -> dict[str, str]:
    def no_duplicates(pairs):
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            raise invalid_request("A parameter is repeated")
        return dict(pairs)

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise invalid_request("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise invalid_request("The JSON body must be an object")
    if len(data) > MAX_FIELDS:
        raise invalid_request("The parameters are malformed")
    params = {}
    for name, value in data.items():
        if isinstance(value, str):
            params[name] = value
        elif value is not None:
            raise invalid_request("Every parameter must be a string")
    return params


@sensitive_variables()
def client_credentials(request: HttpRequest, params: dict[str, str]) -> Credentials | None:
    """The client's credentials, or None when it sent none; more than one
    authentication method in one request is an invalid_request."""
    in_body = [name for name in SECRET_FIELDS if name in params]
    if len(in_body) > 1:
        raise invalid_request("Send client_secret or client_password, not both")
    body_secret = params[in_body[0]] if in_body else None
    body_client_id = params.get("client_id")

    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        basic = _basic_credentials(header)
        if body_secret is not None:
            raise invalid_request("Use one client authentication method, not several")
        # Some clients repeat client_id in the body beside Basic; allowed if equal.
        if body_client_id is not None and body_client_id != basic.client_id:
            raise invalid_request("client_id differs from the Authorization header")
        return basic

    if body_secret is not None:
        if not body_client_id:
            raise invalid_request("client_id is required")
        method = "client_secret_post" if in_body[0] == "client_secret" else "client_password"
        return Credentials(client_id=body_client_id, secret=body_secret, method=method)
    return None


@sensitive_variables()
def _basic_credentials(header: str) -> Credentials:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        # RFC 6749 5.2: a failed header authentication is a 401 invalid_client.
        raise invalid_client("Use HTTP Basic authentication with the client ID and secret")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request("The Basic credentials are not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_request("The Basic credentials are not UTF-8") from None
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise invalid_request("The Basic credentials must be client_id:secret")
    try:
        # RFC 6749 2.3.1 form-encodes both before Base64; our IDs and secrets
        # use only unreserved characters, so a client that skips it works too.
        client_id = unquote_plus(client_id, errors="strict")
        secret = unquote_plus(secret, errors="strict")
    except UnicodeDecodeError:
        raise invalid_request("The Basic credentials are not UTF-8") from None
    return Credentials(client_id=client_id, secret=secret, method="client_secret_basic")
