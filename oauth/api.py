"""The bearer APIs: the tenant's console users and its audit log.

Everything is scoped by the token's tenant, so another tenant's data cannot
be named, let alone read. Field names are camelCase like the seeds' APIs
(`pageSize`). Bad parameters are a 400 JSON `invalid_request`.
"""

import base64
import binascii
import json
from datetime import UTC

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Window
from django.http import HttpRequest, JsonResponse, QueryDict
from django.utils.dateparse import parse_datetime

from apiclients.models import AuditAction, AuditEvent
from oauth.bearer import require_scope
from oauth.errors import invalid_request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def _int_param(query: QueryDict, name: str, *, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise invalid_request(f"{name} must be an integer from {low} to {high}")
    return value


def _bool_param(query: QueryDict, name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise invalid_request(f"{name} must be true or false")
    return lowered == "true"


@require_scope("users:read")
def users(request: HttpRequest) -> JsonResponse:
    """`active`, `blocked`, `pageSize` and `page`, as in the seeds' example.

    The console has one switch per user (Django's is_active): a user who may
    not sign in is reported as inactive and blocked, so `active=true` and
    `blocked=false` select the same people."""
    active = _bool_param(request.GET, "active")
    blocked = _bool_param(request.GET, "blocked")
    page_size = _int_param(
        request.GET, "pageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE
    )
    page = _int_param(request.GET, "page", default=1, low=1, high=1_000_000)

    query = get_user_model().objects.filter(membership__tenant_id=request.oauth.tenant_id)
    if active is not None:
        query = query.filter(is_active=active)
    if blocked is not None:
        query = query.filter(is_active=not blocked)
    offset = (page - 1) * page_size
    rows = list(
        query.order_by("username", "id")
        # The total rides along with the page: one query instead of two.
        .annotate(total=Window(Count("id")), role=F("membership__role"))
        .values(
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "role",
            "date_joined",
            "last_login",
            "total",
        )[offset : offset + page_size]
    )
    total = rows[0]["total"] if rows else (query.count() if page > 1 else 0)
    return JsonResponse(
        {
            "users": [
                {
                    "userId": str(row["id"]),
                    "username": row["username"],
                    "firstName": row["first_name"],
                    "lastName": row["last_name"],
                    "email": row["email"],
                    "role": row["role"],
                    "active": row["is_active"],
                    "blocked": not row["is_active"],
                    "creationDate": row["date_joined"],
                    "lastLogin": row["last_login"],
                }
                for row in rows
            ],
            "totalCount": total,
            "page": page,
            "pageSize": page_size,
        }
    )


def _encode_cursor(event: dict) -> str:
    raw = json.dumps([event["created_at"].isoformat(), event["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str):
    try:
        created_at, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = parse_datetime(created_at)
        if created_at is None or not isinstance(pk, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise invalid_request("cursor is not one this API returned") from None
    return created_at, pk


def _datetime_param(query: QueryDict, name: str):
    raw = query.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise invalid_request(f"{name} must be an ISO 8601 date and time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@require_scope("audit-log:read")
def audit_log(request: HttpRequest) -> JsonResponse:
    """Newest first. Pass `nextCursor` back as `cursor` for the next page; a
    SIEM polling for news passes `since` (the time of the newest event it
    has). Optional filters: `action`, `clientId`, `since`, `until`."""
    page_size = _int_param(
        request.GET, "pageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE
    )
    query = AuditEvent.objects.filter(tenant_id=request.oauth.tenant_id)
    action = request.GET.get("action")
    if action:
        if action not in AuditAction.values:
            raise invalid_request("action must be one of " + ", ".join(AuditAction.values))
        query = query.filter(action=action)
    if client_id := request.GET.get("clientId"):
        query = query.filter(client_id=client_id[:64])
    if since := _datetime_param(request.GET, "since"):
        query = query.filter(created_at__gte=since)
    if until := _datetime_param(request.GET, "until"):
        query = query.filter(created_at__lt=until)
    if cursor := request.GET.get("cursor"):
        created_at, pk = _decode_cursor(cursor)
        query = query.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))

    rows = list(
        query.order_by("-created_at", "-id").values(
            "id",
            "created_at",
            "action",
            "actor",
            "source_ip",
            "client_id",
            "client_name",
            "details",
        )[: page_size + 1]
    )
    more = len(rows) > page_size
    rows = rows[:page_size]
    return JsonResponse(
        {
            "events": [
                {
                    "id": str(row["id"]),
                    "time": row["created_at"],
                    "action": row["action"],
                    "actor": row["actor"],
                    "sourceIp": row["source_ip"],
                    "clientId": row["client_id"],
                    "clientName": row["client_name"],
                    "details": row["details"],
                }
                for row in rows
            ],
            "nextCursor": _encode_cursor(rows[-1]) if more else None,
            "pageSize": page_size,
        }
    )
