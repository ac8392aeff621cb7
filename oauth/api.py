"""The bearer APIs: the tenant's console users and its audit log.

Everything is scoped by the token's tenant, so another tenant's data cannot
be named, let alone read. Field names are camelCase like Code42 Incydr's APIs
(`pageSize`). Bad parameters are a 400 JSON `invalid_request`.
"""

import base64
import binascii
import json
from datetime import UTC
from functools import lru_cache
from json.encoder import encode_basestring_ascii

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.dateparse import parse_datetime

from apiclients.models import AuditAction, AuditEvent, Membership
from oauth import clientcache
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
def users(request: HttpRequest) -> HttpResponse:
    """`active`, `blocked`, `pageSize` and `page`, as in Code42 Incydr's example.

    The console has one switch per user (Django's is_active): a user who may
    not sign in is reported as inactive and blocked, so `active=true` and
    `blocked=false` select the same people."""
    active = _bool_param(request.GET, "active")
    blocked = _bool_param(request.GET, "blocked")
    page_size = _int_param(
        request.GET, "pageSize", default=DEFAULT_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE
    )
    page = _int_param(request.GET, "page", default=1, low=1, high=1_000_000)

    wanted = {v for v in (active, None if blocked is None else not blocked) if v is not None}
    if len(wanted) > 1:
        users_json, total = "", 0  # active and blocked at once: nobody
    else:
        users_json, total = _users_json_page(
            tenant_id=request.oauth.tenant_id,
            is_active=wanted.pop() if wanted else None,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
    return HttpResponse(
        f'{{"users": [{users_json}], "totalCount": {int(total)}, "page": {page}, '
        f'"pageSize": {page_size}}}',
        content_type="application/json",
    )


def _users_json_page(*, tenant_id, is_active: bool | None, limit: int, offset: int):
    """(the page's users as JSON objects, total). Kept in this worker's
    memory while it holds the client cache's lease: every change to the
    tenant's users or memberships reaches every worker before it is
    confirmed (oauth.clientcache), and a page is read again at least every
    CLIENT_CACHE_MAX_AGE seconds. An integration polling the same
    page then costs no query for it."""
    key = ("users", tenant_id, is_active, limit, offset)
    kept = clientcache.page_get(key, tenant_id)
    if kept is not None:
        return kept
    read_at = clientcache.page_epoch(tenant_id)
    rows, total = _users_page(tenant_id=tenant_id, is_active=is_active, limit=limit, offset=offset)
    page = _users_json(rows), total
    clientcache.page_keep(key, tenant_id, read_at, page)
    return page


def _users_json(rows) -> str:
    # Written directly: json.dumps() of a page of dicts cost more than the
    # query. The same bytes as JsonResponse would send (a test holds it to that).
    return ", ".join(
        _USER_JSON
        % (
            _json_str(str(pk)),
            _json_str(username),
            _json_str(first_name),
            _json_str(last_name),
            _json_str(email),
            _json_str(role),
            _JSON_BOOL[bool(active)],
            _JSON_BOOL[not active],
            _json_time(date_joined),
            _json_time(last_login),
        )
        for (
            pk,
            username,
            first_name,
            last_name,
            email,
            active,
            date_joined,
            last_login,
            role,
            _total,
        ) in rows
    )


_USER_JSON = (
    '{"userId": %s, "username": %s, "firstName": %s, "lastName": %s, "email": %s, '
    '"role": %s, "active": %s, "blocked": %s, "creationDate": %s, "lastLogin": %s}'
)
_JSON_BOOL = {True: "true", False: "false"}


def _json_str(value) -> str:
    # What json.dumps() writes for a string (ensure_ascii, its C escaper).
    return "null" if value is None else encode_basestring_ascii(value)


def _json_time(value) -> str:
    # A JSON string as DjangoJSONEncoder writes a datetime.
    if value is None:
        return "null"
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return f'"{text}"'


def _users_page(*, tenant_id, is_active: bool | None, limit: int, offset: int):
    """(rows, total) of one page of the tenant's users, in one query (the
    total rides along as a window count); a second only for a page past the
    end, to still say how many there are.

    The SQL is built once per connection from the models' metadata: through
    the ORM, building the query and converting a page of rows cost three
    times what the database took to answer. Pages are kept in memory
    besides (_users_json_page)."""
    connection = connections[DEFAULT_DB_ALIAS]
    page_sql, count_sql, tenant_field, converters = _users_sql(connection, is_active is not None)
    params = [tenant_field.get_db_prep_value(tenant_id, connection)]
    if is_active is not None:
        params.append(is_active)
    with connection.cursor() as cursor:
        cursor.execute(page_sql, [*params, limit, offset])
        rows = cursor.fetchall()
        if rows:
            total = rows[0][-1]
        elif offset:
            cursor.execute(count_sql, params)
            total = cursor.fetchone()[0]
        else:
            total = 0
    if converters:
        # SQLite: text to datetimes, integers to booleans; the total stays last.
        rows = [
            (
                *(
                    _convert(value, col_converters, connection)
                    for value, col_converters in zip(row, converters, strict=False)
                ),
                row[-1],
            )
            for row in rows
        ]
    return rows, total


def _convert(value, col_converters, connection):
    col, functions = col_converters
    for function in functions:
        value = function(value, col, connection)
    return value


@lru_cache(maxsize=16)
def _users_sql(connection, filtered: bool):
    User = get_user_model()
    quote = connection.ops.quote_name
    user_table, member_table = quote(User._meta.db_table), quote(Membership._meta.db_table)
    fields = [
        User._meta.get_field(name)
        for name in (
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_active",
            "date_joined",
            "last_login",
        )
    ]
    role = Membership._meta.get_field("role")
    tenant = Membership._meta.get_field("tenant")
    member_user = Membership._meta.get_field("user")
    columns = ", ".join(f"{user_table}.{quote(f.column)}" for f in fields)
    columns += f", {member_table}.{quote(role.column)}"
    where = f"{member_table}.{quote(tenant.column)} = %s"
    if filtered:
        where += f" AND {user_table}.{quote(User._meta.get_field('is_active').column)} = %s"
    joined = (
        f"{user_table} INNER JOIN {member_table} ON "
        f"{user_table}.{quote(User._meta.pk.column)} = {member_table}.{quote(member_user.column)}"
    )
    order = ", ".join(
        f"{user_table}.{quote(User._meta.get_field(n).column)}" for n in ("username", "id")
    )
    page_sql = (
        f"SELECT {columns}, COUNT(*) OVER () FROM {joined} WHERE {where} "  # noqa: S608
        f"ORDER BY {order} LIMIT %s OFFSET %s"
    )
    count_sql = f"SELECT COUNT(*) FROM {joined} WHERE {where}"  # noqa: S608
    converters = []
    for field in [*fields, role]:
        col = field.get_col(field.model._meta.db_table)
        converters.append(
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        )
    if not any(functions for _, functions in converters):
        converters = None  # PostgreSQL: psycopg already loads every column as Python wants it
    return page_sql, count_sql, tenant, converters


def _encode_cursor(event: dict) -> str:
    raw = json.dumps([event["created_at"].isoformat(), event["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str):
    try:
        created_at, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = parse_datetime(created_at)
        # Within the columns' ranges: anything else would reach the database
        # and fail there, not here with a 400.
        if created_at is None or not isinstance(pk, int) or not 0 < pk < 2**63:
            raise ValueError
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
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
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        # The database compares in UTC: an offset that carries the time past
        # year 9999 or before year 1 cannot be expressed there. Sent in UTC,
        # as PostgreSQL refuses offsets beyond 15:59 that Python accepts.
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid_request(f"{name} is out of range") from None


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
        if "\x00" in client_id:
            # PostgreSQL refuses NUL in text; no client ID can hold one.
            raise invalid_request("clientId must not contain NUL characters")
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
