"""The Taegis XDR GraphQL operations on API clients, at /graphql, so that
scripts written against that vendor's documentation run unchanged (only the
host and the credentials differ): the `clients` query and the `createClient`,
`rotateClientSecret` and `deleteClient` mutations, with its argument and
field names (snake_case, hence no automatic camelCase).

Built on strawberry-graphql's Django view, over the same callers, guards,
forms and services as the REST API. `X-Tenant-Context`, when sent, must name
the caller's own tenant.
"""

import json
from datetime import UTC, datetime
from uuid import UUID

import strawberry
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from graphql import GraphQLError
from strawberry.django.views import GraphQLView
from strawberry.extensions import MaskErrors
from strawberry.schema.config import StrawberryConfig

from apiclients import services
from apiclients.api import guards, validation
from apiclients.api.callers import Caller, caller_authenticate, require_read, require_write
from apiclients.api.problems import Problem, not_found
from apiclients.catalog import DEFAULT_GRAPHQL_ROLE
from apiclients.client_roles import (
    InvalidRoles,
    assignments_for,
    assignments_view,
    role_grants,
)
from apiclients.forms import OVERLAPS
from apiclients.models import ApiClient
from apiclients.roles import source_ip

MAX_PER_PAGE = 200


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@strawberry.type
class ClientRoleAssignment:
    id: strawberry.ID
    tenant_id: strawberry.ID
    role_id: strawberry.ID
    role_name: str
    expires_at: str | None


@strawberry.type
class Client:
    id: strawberry.ID
    name: str
    client_id: str
    roles: str | None
    role_assignments: list[ClientRoleAssignment]
    tenant_id: strawberry.ID
    created_at: str
    updated_at: str
    created_by: str | None
    updated_by: str | None
    environment: str


@strawberry.type
class ClientWithSecret:
    client: Client
    client_secret: str


def _client(client: ApiClient) -> Client:
    assignments = assignments_view(client.role_assignments)
    tenant_id = str(client.tenant_id)
    return Client(
        id=strawberry.ID(str(client.public_id)),
        name=client.name,
        client_id=client.client_id,
        # As that API writes it: the live roles' names, in camelCase.
        roles=",".join(a["role"].camel_name for a in assignments if a["live"]) or None,
        role_assignments=[
            ClientRoleAssignment(
                id=strawberry.ID(a["id"]),
                tenant_id=strawberry.ID(tenant_id),
                role_id=strawberry.ID(a["role"].id),
                role_name=a["role"].name,
                expires_at=_time(a["expires_at"]),
            )
            for a in assignments
        ],
        tenant_id=strawberry.ID(tenant_id),
        created_at=_time(client.created_at),
        updated_at=_time(client.updated_at),
        created_by=client.created_by.get_username() if client.created_by else None,
        updated_by=client.updated_by.get_username() if client.updated_by else None,
        environment=settings.ENVIRONMENT_NAME,
    )


def _caller(info: strawberry.Info) -> Caller:
    return info.context.request.auth


def _rows(caller: Caller):
    return ApiClient.objects.for_tenant(caller.tenant).select_related("created_by", "updated_by")


def _by_id(caller: Caller, value: str) -> ApiClient:
    """`id` is the client's UUID or its client ID, as that API accepts."""
    value = str(value).strip()
    try:
        condition = Q(public_id=UUID(value))
    except ValueError:
        if not value.isprintable() or not 0 < len(value) <= 64:
            raise not_found() from None
        condition = Q(client_id=value)
    client = _rows(caller).filter(condition).first()
    if client is None:
        raise not_found()
    return client


def _own_tenant(caller: Caller, tenant_ids) -> bool:
    wanted = {str(t).strip().lower() for t in tenant_ids if t is not None}
    return not wanted or str(caller.tenant.pk) in wanted


@strawberry.type
class Query:
    @strawberry.field
    def clients(
        self,
        info: strawberry.Info,
        name: str | None = None,
        clientIDs: list[str | None] | None = None,  # the vendor's argument names
        tenantID: strawberry.ID | None = None,
        roleIDs: list[strawberry.ID | None] | None = None,
        tenantIDs: list[strawberry.ID | None] | None = None,
        page: int | None = None,
        perPage: int | None = None,
    ) -> list[Client]:
        caller = _caller(info)
        require_read(caller)
        # Another tenant's clients are nobody's business: asking for them
        # finds nothing.
        if not _own_tenant(caller, [tenantID, *(tenantIDs or [])]):
            return []
        page = 1 if page is None else page
        per_page = 50 if perPage is None else perPage
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise Problem(400, f"page must be 1 or more and perPage from 1 to {MAX_PER_PAGE}.")
        rows = _rows(caller)
        if name:
            rows = rows.filter(name__icontains=name.replace("\x00", "")[:100])
        ids = [c for c in clientIDs or [] if c]
        if ids:
            rows = rows.filter(client_id__in=[c[:64].replace("\x00", "") for c in ids])
        roles = [str(r).strip().lower() for r in roleIDs or [] if r]
        if roles:
            condition = Q()
            for role in roles:
                condition |= Q(role_assignments__icontains=json.dumps(role[:40]))
            rows = rows.filter(condition)
        start = (page - 1) * per_page
        if start > 2**31:
            return []
        return [_client(c) for c in rows.order_by("-created_at", "-pk")[start : start + per_page]]


@strawberry.type
class Mutation:
    @strawberry.mutation
    def createClient(  # the vendor's operation names
        self, info: strawberry.Info, name: str, roles: list[strawberry.ID] | None = None
    ) -> ClientWithSecret:
        caller = _caller(info)
        require_write(caller)
        if services.name_is_taken(tenant=caller.tenant, name=name):
            # The vendor's words for it.
            raise Problem(409, "Existing client in tenant")
        arguments = validation.create_arguments(tenant=caller.tenant, values={"name": name})
        wanted = [str(r) for r in roles] if roles else [DEFAULT_GRAPHQL_ROLE]
        try:
            assignments = assignments_for([(role, None) for role in wanted])
        except InvalidRoles as exc:
            raise Problem(422, str(exc)) from None
        guards.check_grants(caller, {grant for grant, _ in role_grants(assignments)})
        try:
            client, secret = services.api_client_create(
                tenant=caller.tenant,
                role_assignments=assignments,
                actor=caller.actor,
                source_ip=source_ip(info.context.request),
                **arguments,
            )
        except services.NameTaken:
            raise Problem(409, "Existing client in tenant") from None
        info.context.response.headers["Cache-Control"] = "no-store"
        client = _rows(caller).get(pk=client.pk)
        return ClientWithSecret(client=_client(client), client_secret=secret)

    @strawberry.mutation
    def rotateClientSecret(
        self, info: strawberry.Info, id: strawberry.ID, overlap: str | None = "24h"
    ) -> ClientWithSecret:
        """A new secret, same client ID. The old secret keeps working for
        `overlap` (1h, 24h, 7d) so that the integration can switch; "none"
        stops it at once (a reset)."""
        caller = _caller(info)
        client = _by_id(caller, id)
        request = info.context.request
        if overlap == "none":
            guards.check_manage(caller, client)
            updated, secret = services.api_client_reset_secret(
                client=client, actor=caller.actor, source_ip=source_ip(request)
            )
        else:
            guards.check_rotate(caller, client)
            if overlap not in OVERLAPS:
                raise Problem(422, "overlap must be one of none, 1h, 24h or 7d.")
            updated, secret = services.api_client_rotate_secret(
                client=client,
                grace=OVERLAPS[overlap],
                actor=caller.actor,
                source_ip=source_ip(request),
            )
        info.context.response.headers["Cache-Control"] = "no-store"
        updated = _rows(caller).get(pk=updated.pk)
        return ClientWithSecret(client=_client(updated), client_secret=secret)

    @strawberry.mutation
    def deleteClient(self, info: strawberry.Info, id: strawberry.ID) -> Client:
        caller = _caller(info)
        client = _by_id(caller, id)
        guards.check_manage(caller, client)
        gone = _client(client)
        services.api_client_delete(
            client=client, actor=caller.actor, source_ip=source_ip(info.context.request)
        )
        return gone


def _mask(error: GraphQLError) -> bool:
    # Our refusals say what to do; anything else unexpected says nothing.
    original = error.original_error
    return original is not None and not isinstance(original, Problem)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(auto_camel_case=False),
    extensions=[lambda: MaskErrors(should_mask_error=_mask)],
)


def _refusal(problem: Problem) -> HttpResponse:
    response = HttpResponse(
        json.dumps(
            {"errors": [{"message": problem.detail, "extensions": {"status": problem.status}}]}
        ),
        status=problem.status,
        content_type="application/json",
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


class TaegisGraphQLView(GraphQLView):
    # No GraphiQL: it needs inline scripts, which the CSP forbids.
    graphql_ide = None
    allow_queries_via_get = False

    def dispatch(self, request: HttpRequest, *args, **kwargs):
        if request.method != "POST":
            return _refusal(
                Problem(405, "Send GraphQL operations with POST.", headers={"Allow": "POST"})
            )
        try:
            caller = caller_authenticate(request)
            tenant = request.headers.get("X-Tenant-Context")
            if tenant is not None and tenant.strip().lower() != str(caller.tenant.pk):
                raise Problem(
                    403, "X-Tenant-Context names a tenant your credentials do not belong to."
                )
        except Problem as problem:
            return _refusal(problem)
        request.auth = caller
        response = super().dispatch(request, *args, **kwargs)
        for name, value in caller.rate_headers.items():
            response.headers.setdefault(name, value)
        return response


graphql_view = csrf_exempt(TaegisGraphQLView.as_view(schema=schema))
