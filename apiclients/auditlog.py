"""Audit events made readable: for the audit log page and its CSV export."""

import csv
import json
from collections.abc import Iterable, Iterator

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from apiclients.catalog import APIS
from apiclients.models import AuditAction, AuditEvent

FIELD_LABELS = {
    "name": "Name",
    "description": "Description",
    "grants": "API permissions",
    "ip_allowlist": "IP restriction",
    "is_active": "Status",
    "status": "Status",
    "reason": "Reason",
    "suppressed_failures": "Failed requests counted here, not listed one by one",
}
# Why the token endpoint refused a request (oauth), in words.
REASONS = {
    "unknown_client": "unknown client ID",
    "invalid_client": "client authentication failed",
    "wrong_secret": "wrong secret",
    "inactive": "the client is inactive",
    "expired": "the client has expired",
    "ip_not_allowed": "address not in the IP restriction",
    "too_many_failures": "locked out after too many failures",
}
_API_LABELS = {api.key: api.label for api in APIS}


def grant_label(grant: str) -> str:
    api, _, level = grant.partition(":")
    return f"{_API_LABELS.get(api, api)} {level}".strip()


def _grants(grants) -> str:
    return ", ".join(grant_label(g) for g in grants) or "none"


def _ips(ips) -> str:
    return ", ".join(ips) if ips else "all IP addresses"


def value_text(field: str, value) -> str:
    if field == "grants":
        return _grants(value)
    if field == "ip_allowlist":
        return _ips(value)
    if field == "is_active":
        return "Active" if value else "Inactive"
    if field in ("role_assignments", "roles") and isinstance(value, list):
        return _roles(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if field == "reason" and value in REASONS:
        return f"{REASONS[value]} ({value})"
    return str(value)


def _roles(assignments: list) -> str:
    from apiclients.catalog import ROLES_BY_ID

    shown = []
    for a in assignments:
        role = ROLES_BY_ID.get(a.get("role_id")) if isinstance(a, dict) else None
        if role is not None:
            until = a.get("expires_at")
            shown.append(f"{role.label} until {until[:16]}" if until else role.label)
    return ", ".join(shown) or "none"


def _change(field: str, old, new) -> str:
    label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
    if field == "grants":
        added = [g for g in new if g not in old]
        removed = [g for g in old if g not in new]
        parts = []
        if added:
            parts.append("added " + _grants(added))
        if removed:
            parts.append("removed " + _grants(removed))
        return f"{label}: " + ("; ".join(parts) or "unchanged")
    if field == "description":
        return f"{label}: “{old}” → “{new}”" if len(old) + len(new) < 120 else f"{label} changed"
    return f"{label}: “{value_text(field, old)}” → “{value_text(field, new)}”"


def describe(event: AuditEvent, *, hide_suppressed: bool = False) -> list[str]:
    """One readable line per fact in the event's details. `hide_suppressed`
    leaves out the count of aggregated failures, for a page that says it in
    a sentence of its own (failure_bursts)."""
    details = event.details or {}
    if event.action == AuditAction.LOCKED_OUT:
        return [_lockout(event, details)]
    if event.action == AuditAction.LOCKOUT_LIFTED:
        address = details.get("address")
        return [f"Failures {f'from {address}' if address else 'from anywhere'} count afresh"]
    lines = []
    changes = details.get("changes")
    if isinstance(changes, dict):
        for field, pair in changes.items():
            if isinstance(pair, list | tuple) and len(pair) == 2:
                lines.append(_change(field, *pair))
            else:
                lines.append(f"{FIELD_LABELS.get(field, field)}: {value_text(field, pair)}")
    for key, value in details.items():
        if key == "changes" or (key == "suppressed_failures" and hide_suppressed):
            continue
        label = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
        lines.append(f"{label}: {value_text(key, value)}")
    return lines


def _lockout(event: AuditEvent, details: dict) -> str:
    where = "from several addresses" if details.get("from_anywhere") else f"from {event.source_ip}"
    minutes = max(1, int(details.get("window_seconds") or 0) // 60)
    until = parse_datetime(str(details.get("until", "")))
    ends = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    return (
        f"{details.get('failures')} failed attempts {where} in {minutes} minutes: failures "
        f"answered “too many requests”{ends}; the correct secret still works"
    )


def failure_bursts(events) -> dict[int, dict]:
    """Token failures are written at most once per client and address per
    interval (oauth.throttle); an event with `suppressed_failures` also
    stands for the failures since the previous event of that client and
    address. For each such event on a page: how many requests it stands for
    and since when, e.g. "12 failed requests from 198.51.100.7 between 10:31
    and 10:40". One query per such event, at most a page of them."""
    bursts = {}
    for event in events:
        if event.action != AuditAction.TOKEN_FAILED:
            continue
        suppressed = (event.details or {}).get("suppressed_failures")
        if not isinstance(suppressed, int) or suppressed <= 0:
            continue
        previous = (
            AuditEvent.objects.filter(
                Q(created_at__lt=event.created_at)
                | Q(created_at=event.created_at, id__lt=event.id),
                tenant_id=event.tenant_id,
                action=AuditAction.TOKEN_FAILED,
                client_id=event.client_id,
                source_ip=event.source_ip,
            )
            .order_by("-created_at", "-id")
            .values_list("created_at", flat=True)
            .first()
        )
        bursts[event.pk] = {"count": suppressed + 1, "since": previous}
    return bursts


# CSV export. Spreadsheet apps execute cells that start with these characters
# as formulas (CSV injection), and client names and actors are user-typed.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CSV_HEADER = [
    "time",
    "actor",
    "action",
    "action_label",
    "client_id",
    "client_name",
    "source_ip",
    "details",
    "details_json",
]


def csv_safe(value) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_row(event: AuditEvent) -> list[str]:
    return [
        csv_safe(cell)
        for cell in (
            event.created_at.isoformat(),
            event.actor,
            event.action,
            event.get_action_display(),
            event.client_id,
            event.client_name,
            event.source_ip or "",
            "; ".join(describe(event)),
            json.dumps(event.details, sort_keys=True),
        )
    ]


class _Echo:
    def write(self, value):
        return value


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for event in events:
        yield writer.writerow(csv_row(event))
