"""The REST management API: /v1/api-clients (django-ninja).

Views are thin: authenticate (callers), check (guards), validate with the
console's forms (validation), call one service. Errors are RFC 9457 problem
details; updates need If-Match with the ETag of the version they start
from; requests that mint a secret take an Idempotency-Key.
"""

import base64
import binascii
import json
import logging
import re
from datetime import UTC, date, datetime
from functools import wraps
from typing import Literal

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from ninja import Field, NinjaAPI, Query, Schema, Status, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security.http import HttpAuthBase

from apiclients import hygiene, services
from apiclients.api import guards, idempotency, validation
from apiclients.api.callers import Caller, caller_authenticate, require_read, require_write
from apiclients.api.problems import PROBLEM_JSON, Problem, not_found
from apiclients.api.spec import extra_paths
from apiclients.catalog import ROLES
from apiclients.client_roles import (
    InvalidRoles,
    assignments_for,
    assignments_view,
    client_effective_grants,
    role_grants,
)
from apiclients.models import ApiClient
from apiclients.roles import source_ip

logger = logging.getLogger("apiclients.api")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class BearerToken(HttpAuthBase):
    """`Authorization: Bearer`: a personal access token or an API client's
    access token (apiclients.api.callers)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> Caller:
        return caller_authenticate(request)


class ManagementApi(NinjaAPI):
    def create_response(self, request, data, *, status=None, temporal_response=None):
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        _rate_headers(request, response)
        return response

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # The token endpoint and the bearer APIs are plain Django views (the
        # token endpoint is kept fast and framework-free); they are described
        # here so that one document covers everything an integration calls.
        for item in schema["paths"].values():
            for operation in item.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        paths, security_schemes = extra_paths()
        schema["paths"].update(paths)
        schema["components"].setdefault("securitySchemes", {}).update(security_schemes)
        return schema


def _rate_headers(request: HttpRequest, response: HttpResponse) -> None:
    caller = getattr(request, "auth", None)
    if isinstance(caller, Caller):
        for name, value in caller.rate_headers.items():
            response.headers.setdefault(name, value)


api = ManagementApi(
    title="API Clients management API",
    version="1",
    description=(
        "Manage API clients from code: list, create, read, update, rotate, reset and delete. "
        "Authenticate with `Authorization: Bearer` and either a personal access token "
        "(created in the console: Access tokens, beside your name) or the access token of an "
        "API client granted **API Clients** (read, or read/write). Errors are RFC 9457 problem "
        "details."
    ),
    urls_namespace="mgmt",
    auth=BearerToken(),
    docs=Swagger(settings={"persistAuthorization": True}),
)


def management_urls():
    """The API's URL patterns; a wrong method is a problem too (405 with
    Allow), not the framework's plain-text page."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = _method_problem(pattern.callback)
    return patterns, app_name, namespace


def _method_problem(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and "problem" not in response.get("Content-Type", ""):
            allowed = response.get("Allow", "")
            return Problem(405, f"Use {allowed}.", headers={"Allow": allowed}).response(
                request.path
            )
        return response

    return wrapper


# -- errors --------------------------------------------------------------------------


def _problem(request: HttpRequest, problem: Problem) -> HttpResponse:
    response = problem.response(instance=request.path)
    _rate_headers(request, response)
    return response


@api.exception_handler(Problem)
def _on_problem(request, exc: Problem):
    return _problem(request, exc)


@api.exception_handler(ValidationError)
def _on_validation(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        if loc[:1] == ["payload"]:
            loc = loc[1:]
        errors.append({"field": ".".join(loc), "message": str(error.get("msg", "Invalid"))})
    detail = (
        f"{errors[0]['field'] or 'The request'}: {errors[0]['message']}"
        if len(errors) == 1
        else "Some fields are not valid; see errors."
    )
    return _problem(request, Problem(422, detail, errors=errors))


@api.exception_handler(AuthenticationError)
def _on_authentication(request, exc):
    return _problem(request, Problem(401, "Authentication is required."))


@api.exception_handler(Http404)
def _on_404(request, exc):
    return _problem(request, Problem(404, "Not found."))


@api.exception_handler(HttpError)
def _on_http_error(request, exc: HttpError):
    return _problem(request, Problem(exc.status_code, str(exc)))


@api.exception_handler(DatabaseError)
def _on_database(request, exc):
    logger.exception("Database unavailable in %s", request.path)
    return _problem(
        request,
        Problem(503, "The service is temporarily unavailable.", headers={"Retry-After": "5"}),
    )


@api.exception_handler(Exception)
def _on_error(request, exc):
    logger.exception("Unexpected error in %s", request.path)
    return _problem(request, Problem(500, "The server could not handle the request."))


# -- schemas -------------------------------------------------------------------------


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str


RoleId = Literal[tuple(role.id for role in ROLES)]  # type: ignore[valid-type]


class RoleAssignmentIn(Schema):
    roleId: RoleId = Field(description="A role's ID (GET /v1/roles)")
    expiresAt: datetime | None = Field(None, description="Optional: when the role stops")


class RoleAssignmentOut(Schema):
    id: str
    roleId: str
    roleName: str
    expiresAt: datetime | None
    live: bool = Field(description="False once it has expired")


class RoleOut(Schema):
    id: str
    name: str
    label: str
    description: str
    permissions: list[str]


class ApiClientOut(Schema):
    clientId: str
    name: str
    description: str
    status: Literal["active", "inactive"]
    permissions: list[str] = Field(description="The explicit grants")
    roles: list[RoleAssignmentOut]
    effectivePermissions: list[str] = Field(
        description="What its tokens may carry now: the explicit grants and those of live roles"
    )
    ipAllowlist: list[str]
    expiresOn: date | None
    allowSelfRotation: bool
    createdAt: datetime
    updatedAt: datetime
    lastRedeemedAt: datetime | None
    secretResetAt: datetime | None
    previousSecretExpiresAt: datetime | None = Field(
        description="While a rotation's overlap lasts, when the old secret stops working"
    )
    createdBy: str | None
    updatedBy: str | None
    version: int = Field(description="Changes with every change; the ETag is its quoted value")


class ApiClientPage(Schema):
    items: list[ApiClientOut]
    nextCursor: str | None = Field(description="Pass back as `cursor` for the next page")
    pageSize: int


class SecretOut(Schema):
    client: ApiClientOut
    clientSecret: str = Field(description="Shown in this answer only; never again")


class ApiClientCreate(Schema):
    name: str = Field(json_schema_extra={"maxLength": 100})
    description: str = Field("", json_schema_extra={"maxLength": 1000})
    permissions: list[str] = Field(
        default_factory=list, description="Grants such as alerts:read (see the console's matrix)"
    )
    ipAllowlist: list[str] = Field(
        default_factory=list,
        description="IP addresses and CIDR ranges; empty allows all addresses",
    )
    status: Literal["active", "inactive"] = "active"
    expiresOn: date | None = Field(None, description="The last day the client gets tokens")
    allowSelfRotation: bool = Field(
        False, description="The client may rotate its own secret (admins only)"
    )
    roles: list[RoleAssignmentIn] = Field(default_factory=list)


class ApiClientUpdate(Schema):
    name: str | None = Field(None, json_schema_extra={"maxLength": 100})
    description: str | None = Field(None, json_schema_extra={"maxLength": 1000})
    permissions: list[str] | None = None
    ipAllowlist: list[str] | None = None
    status: Literal["active", "inactive"] | None = None
    expiresOn: date | None = None
    allowSelfRotation: bool | None = None
    roles: list[RoleAssignmentIn] | None = None


class RotateIn(Schema):
    overlap: Literal["1h", "24h", "7d"] = Field(
        "24h", description="How long the old secret keeps working"
    )


class ListFilters(Schema):
    search: str = Field("", description="Part of a name or client ID")
    status: Literal["active", "inactive"] | None = None
    role: RoleId | None = Field(None, description="Clients holding this role")
    filter: Literal[tuple(k for k in hygiene.FILTERS if k)] | None = Field(  # type: ignore[valid-type]
        None, description="One of the console's hygiene filters"
    )
    pageSize: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = None


_ERRORS = {
    400: ProblemOut,
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    422: ProblemOut,
    429: ProblemOut,
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "description": "The ETag of the API client as you read it",
    "schema": {"type": "string"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": (
        "Any unique value (a UUID): a retry with the same key is refused with 409 instead of "
        "minting a second secret"
    ),
    "schema": {"type": "string", "maxLength": 255},
}


# -- helpers -------------------------------------------------------------------------


def _assignments(roles, current=()) -> list[dict]:
    try:
        return assignments_for(
            [(role["roleId"], role.get("expiresAt")) for role in roles], current=list(current)
        )
    except InvalidRoles as exc:
        raise Problem(422, str(exc), errors=[{"field": "roles", "message": str(exc)}]) from None


def _all_grants(grants, assignments) -> set[str]:
    """Every grant these would give, expiring or not."""
    return set(grants) | {grant for grant, _ in role_grants(assignments)}


def _etag(client: ApiClient) -> str:
    return f'"{client.version}"'


def client_json(client: ApiClient) -> dict:
    return {
        "clientId": client.client_id,
        "name": client.name,
        "description": client.description,
        "status": "active" if client.is_active else "inactive",
        "permissions": list(client.grants),
        "roles": [
            {
                "id": a["id"],
                "roleId": a["role"].id,
                "roleName": a["role"].label,
                "expiresAt": a["expires_at"],
                "live": a["live"],
            }
            for a in assignments_view(client.role_assignments)
        ],
        "effectivePermissions": client_effective_grants(client),
        "ipAllowlist": list(client.ip_allowlist),
        "expiresOn": validation.expires_on_date(client.expires_at),
        "allowSelfRotation": client.allow_self_rotation,
        "createdAt": client.created_at,
        "updatedAt": client.updated_at,
        "lastRedeemedAt": client.last_redeemed_at,
        "secretResetAt": client.secret_reset_at,
        "previousSecretExpiresAt": client.previous_secret_expires_at,
        "createdBy": client.created_by.get_username() if client.created_by else None,
        "updatedBy": client.updated_by.get_username() if client.updated_by else None,
        "version": client.version,
    }


def _client_or_404(caller: Caller, client_id: str) -> ApiClient:
    if not _CLIENT_ID_RE.fullmatch(client_id):
        raise not_found()
    client = (
        ApiClient.objects.for_tenant(caller.tenant)
        .select_related("created_by", "updated_by", "tenant")
        .filter(client_id=client_id)
        .first()
    )
    if client is None:
        raise not_found()
    return client


def _reloaded(client: ApiClient) -> ApiClient:
    return ApiClient.objects.select_related("created_by", "updated_by").get(pk=client.pk)


def _encode_cursor(client: ApiClient) -> str:
    raw = json.dumps([client.created_at.isoformat(), client.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str):
    try:
        created_at, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = parse_datetime(created_at)
        if created_at is None or not isinstance(pk, int) or not 0 < pk < 2**63:
            raise ValueError
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        created_at.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "cursor is not one this API returned.") from None
    return created_at, pk


def _if_match(request: HttpRequest, client: ApiClient) -> int:
    header = request.headers.get("If-Match")
    if header is None:
        raise Problem(
            428,
            "Send If-Match with the ETag of the API client (from GET), so that a change "
            "made by someone else since is never silently overwritten.",
        )
    if header.strip() != _etag(client):
        raise Problem(
            412,
            "The API client was changed since you read it. GET it again, then apply "
            "your change to what it is now.",
            headers={"ETag": _etag(client)},
        )
    return client.version


def _secret_response(response: HttpResponse, client: ApiClient, secret: str) -> dict:
    for name, value in NO_STORE.items():
        response.headers[name] = value
    response.headers["ETag"] = _etag(client)
    return {"client": client_json(client), "clientSecret": secret}


# -- endpoints -----------------------------------------------------------------------


@api.get(
    "/api-clients",
    response={200: ApiClientPage, **_ERRORS},
    summary="List API clients",
    tags=["API clients"],
)
def list_clients(request: HttpRequest, filters: Query[ListFilters]):
    """Newest first. Pass `nextCursor` back as `cursor` for the next page."""
    caller: Caller = request.auth
    require_read(caller)
    clients = ApiClient.objects.for_tenant(caller.tenant).select_related("created_by", "updated_by")
    search = filters.search.replace("\x00", "").strip()[:100]
    if search:
        clients = clients.filter(Q(name__icontains=search) | Q(client_id__icontains=search))
    if filters.status:
        clients = clients.filter(is_active=filters.status == "active")
    if filters.role:
        # Role IDs are UUIDs of the catalog: matched in the stored JSON.
        clients = clients.filter(role_assignments__icontains=f'"{filters.role}"')
    if filters.filter:
        clients = hygiene.apply_filter(clients, filters.filter, timezone.now())
    if filters.cursor:
        created_at, pk = _decode_cursor(filters.cursor)
        clients = clients.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    rows = list(clients.order_by("-created_at", "-pk")[: filters.pageSize + 1])
    more = len(rows) > filters.pageSize
    rows = rows[: filters.pageSize]
    return {
        "items": [client_json(c) for c in rows],
        "nextCursor": _encode_cursor(rows[-1]) if more else None,
        "pageSize": filters.pageSize,
    }


@api.post(
    "/api-clients",
    response={201: SecretOut, 409: ProblemOut, **_ERRORS},
    summary="Create an API client",
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY]},
    tags=["API clients"],
)
def create_client(request: HttpRequest, payload: ApiClientCreate, response: HttpResponse):
    """The answer holds the secret, once (`Cache-Control: no-store`). Send an
    `Idempotency-Key` to retry safely: a retry is refused with 409 rather than
    minting a second client and secret."""
    caller: Caller = request.auth
    require_write(caller)
    with transaction.atomic():
        # First: a retry is answered as a retry, whatever has changed since.
        entry = idempotency.claim(request, caller, "POST /v1/api-clients")
        values = payload.model_dump()
        arguments = validation.create_arguments(tenant=caller.tenant, values=values)
        arguments["role_assignments"] = _assignments(values["roles"])
        guards.check_grants(
            caller,
            _all_grants(arguments["grants"], arguments["role_assignments"]),
            allow_self_rotation=payload.allowSelfRotation,
        )
        try:
            client, secret = services.api_client_create(
                tenant=caller.tenant,
                allow_self_rotation=payload.allowSelfRotation,
                actor=caller.actor,
                source_ip=source_ip(request),
                **arguments,
            )
        except services.NameTaken:
            raise Problem(
                422,
                f"An API client named “{arguments['name']}” already exists. Choose another name.",
                errors=[{"field": "name", "message": "This name is taken."}],
            ) from None
        idempotency.record(entry, client.client_id)
    response.headers["Location"] = f"/v1/api-clients/{client.client_id}"
    return Status(201, _secret_response(response, _reloaded(client), secret))


@api.get(
    "/api-clients/{client_id}",
    response={200: ApiClientOut, **_ERRORS},
    summary="Read an API client",
    tags=["API clients"],
)
def read_client(request: HttpRequest, client_id: str, response: HttpResponse):
    caller: Caller = request.auth
    require_read(caller)
    client = _client_or_404(caller, client_id)
    response.headers["ETag"] = _etag(client)
    return client_json(client)


@api.patch(
    "/api-clients/{client_id}",
    response={200: ApiClientOut, 412: ProblemOut, 428: ProblemOut, **_ERRORS},
    summary="Update an API client",
    openapi_extra={"parameters": [_IF_MATCH]},
    tags=["API clients"],
)
def update_client(
    request: HttpRequest, client_id: str, payload: ApiClientUpdate, response: HttpResponse
):
    """Send only the fields to change, with `If-Match: <ETag>`."""
    caller: Caller = request.auth
    client = _client_or_404(caller, client_id)
    guards.check_manage(caller, client)
    version = _if_match(request, client)
    changes = payload.model_dump(exclude_unset=True)
    allow_self_rotation = changes.pop("allowSelfRotation", None)
    arguments = validation.update_arguments(
        client=client,
        changes={k: v for k, v in changes.items() if v is not None or k == "expiresOn"},
    )
    if "grants" in arguments:
        added = set(arguments["grants"]) - set(client.grants)
        guards.check_grants(caller, added)
    if allow_self_rotation is not None:
        if allow_self_rotation != client.allow_self_rotation and not caller.is_person:
            guards.check_grants(caller, (), allow_self_rotation=True)
        arguments["allow_self_rotation"] = allow_self_rotation
    try:
        updated = services.api_client_update(
            client=client,
            actor=caller.actor,
            expected_version=version,
            source_ip=source_ip(request),
            **arguments,
        )
    except services.EditConflict as exc:
        raise Problem(
            412,
            "The API client was changed since you read it. GET it again, then apply "
            "your change to what it is now.",
            headers={"ETag": _etag(exc.current)},
        ) from None
    except services.NameTaken:
        raise Problem(
            422,
            f"An API client named “{arguments['name']}” already exists. Choose another name.",
            errors=[{"field": "name", "message": "This name is taken."}],
        ) from None
    updated = _reloaded(updated)
    response.headers["ETag"] = _etag(updated)
    return client_json(updated)


@api.delete(
    "/api-clients/{client_id}",
    response={204: None, 412: ProblemOut, **_ERRORS},
    summary="Delete an API client",
    openapi_extra={"parameters": [_IF_MATCH]},
    tags=["API clients"],
)
def delete_client(request: HttpRequest, client_id: str):
    """Its tokens stop at once; its audit history stays. `If-Match` is
    optional here."""
    caller: Caller = request.auth
    client = _client_or_404(caller, client_id)
    guards.check_manage(caller, client)
    if request.headers.get("If-Match") is not None:
        _if_match(request, client)
    services.api_client_delete(client=client, actor=caller.actor, source_ip=source_ip(request))
    return Status(204, None)


@api.post(
    "/api-clients/{client_id}/rotate-secret",
    response={200: SecretOut, 409: ProblemOut, **_ERRORS},
    summary="Rotate the secret, keeping the old one working for an overlap",
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY]},
    tags=["API clients"],
)
def rotate_secret(request: HttpRequest, client_id: str, payload: RotateIn, response: HttpResponse):
    """A client allowed to rotate its own secret may call this on itself."""
    caller: Caller = request.auth
    client = _client_or_404(caller, client_id)
    guards.check_rotate(caller, client)
    grace = validation.rotate_grace(payload.overlap)
    with transaction.atomic():
        entry = idempotency.claim(request, caller, f"POST rotate {client.client_id}")
        updated, secret = services.api_client_rotate_secret(
            client=client, grace=grace, actor=caller.actor, source_ip=source_ip(request)
        )
        idempotency.record(entry, client.client_id)
    return _secret_response(response, _reloaded(updated), secret)


@api.post(
    "/api-clients/{client_id}/revoke-previous-secret",
    response={200: ApiClientOut, **_ERRORS},
    summary="End a rotation's overlap now",
    tags=["API clients"],
)
def revoke_previous_secret(request: HttpRequest, client_id: str, response: HttpResponse):
    caller: Caller = request.auth
    client = _client_or_404(caller, client_id)
    guards.check_rotate(caller, client)
    updated = services.api_client_revoke_previous_secret(
        client=client, actor=caller.actor, source_ip=source_ip(request)
    )
    updated = _reloaded(updated)
    response.headers["ETag"] = _etag(updated)
    return client_json(updated)


@api.post(
    "/api-clients/{client_id}/reset-secret",
    response={200: SecretOut, 409: ProblemOut, **_ERRORS},
    summary="Reset the secret: the old one and its tokens stop at once",
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY]},
    tags=["API clients"],
)
def reset_secret(request: HttpRequest, client_id: str, response: HttpResponse):
    caller: Caller = request.auth
    client = _client_or_404(caller, client_id)
    guards.check_manage(caller, client)
    with transaction.atomic():
        entry = idempotency.claim(request, caller, f"POST reset {client.client_id}")
        updated, secret = services.api_client_reset_secret(
            client=client, actor=caller.actor, source_ip=source_ip(request)
        )
        idempotency.record(entry, client.client_id)
    return _secret_response(response, _reloaded(updated), secret)


@api.get(
    "/roles",
    response={200: list[RoleOut], **_ERRORS},
    summary="The roles a client can be given",
    tags=["API clients"],
)
def list_roles(request: HttpRequest):
    require_read(request.auth)
    return [
        {
            "id": role.id,
            "name": role.name,
            "label": role.label,
            "description": role.description,
            "permissions": sorted(role.grants),
        }
        for role in ROLES
    ]
