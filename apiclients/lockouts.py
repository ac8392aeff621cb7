"""Lockouts of a client, as the console shows them: each failure limit a
client reached (oauth.throttle: failures answered 429, the correct secret
still working) is an audit event; one is in force until its `until` unless
an admin lifted it since."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils.dateparse import parse_datetime

from apiclients.models import ApiClient, AuditAction, AuditEvent


def active_lockouts(client: ApiClient, now: datetime) -> list[dict]:
    """{address, failures, window_minutes, until, from_anywhere}, newest first;
    `address` is None for a lockout from anywhere."""
    since = now - timedelta(seconds=settings.OAUTH["FAILURE_WINDOW"] * 2)
    events = AuditEvent.objects.filter(
        tenant_id=client.tenant_id,
        client_id=client.client_id,
        action__in=[AuditAction.LOCKED_OUT, AuditAction.LOCKOUT_LIFTED],
        created_at__gte=since,
    )
    lifted_at: dict[str | None, datetime] = {}
    active = []
    # Oldest first, so each lift cancels the lockouts that came before it.
    for event in events.order_by("created_at", "id"):
        if event.action == AuditAction.LOCKOUT_LIFTED:
            for address in (event.details.get("address"), None):
                lifted_at[address] = event.created_at
            continue
        until = parse_datetime(event.details.get("until", ""))
        address = None if event.details.get("from_anywhere") else event.source_ip
        if until is None or until <= now:
            continue
        active.append(
            {
                "event": event,
                "address": address,
                "failures": event.details.get("failures"),
                "window_minutes": max(1, event.details.get("window_seconds", 0) // 60),
                "until": until,
                "from_anywhere": address is None,
            }
        )
    never = datetime.min.replace(tzinfo=now.tzinfo)
    active = [a for a in active if a["event"].created_at > lifted_at.get(a["address"], never)]
    return sorted(active, key=lambda a: a["event"].created_at, reverse=True)
