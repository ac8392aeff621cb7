"""Roles for clients: what an assignment looks like, and the grants a
client holds through its roles and explicit grants together."""

import uuid
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apiclients.catalog import ROLES, ROLES_BY_ID, normalize_grants


class InvalidRoles(ValueError):
    """A message for the caller, naming what is wrong."""


def _known() -> str:
    return ", ".join(f"{role.label} ({role.id})" for role in ROLES)


def assignments_for(
    wanted: list[tuple[str, datetime | None]],
    *,
    current: list[dict] = (),
    now: datetime | None = None,
) -> list[dict]:
    """The stored form of the roles `wanted` ((role ID, expiry or None) in
    order), keeping the assignment IDs of roles already held. Raises
    InvalidRoles for an unknown role, a duplicate or an expiry in the past."""
    now = now or timezone.now()
    kept = {a["role_id"]: a for a in current}
    result, seen = [], set()
    for role_id, expires_at in wanted:
        role_id = str(role_id).strip().lower()
        if role_id not in ROLES_BY_ID:
            shown = role_id[:40] if role_id.isprintable() else "(unprintable)"
            raise InvalidRoles(f"“{shown}” is not a role. Roles: {_known()}.")
        if role_id in seen:
            raise InvalidRoles(f"The role {ROLES_BY_ID[role_id].label} is named twice.")
        seen.add(role_id)
        if expires_at is not None:
            if timezone.is_naive(expires_at):
                expires_at = timezone.make_aware(expires_at)
            if expires_at <= now:
                raise InvalidRoles(
                    "A role's expiry must be in the future; leave it empty for no expiry."
                )
            if expires_at.year > 9000:
                raise InvalidRoles("Choose a role expiry before the year 9000.")
        previous = kept.get(role_id)
        result.append(
            {
                "id": previous["id"] if previous else str(uuid.uuid4()),
                "role_id": role_id,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
        )
    return result


def role_grants(assignments) -> tuple[tuple[str, datetime | None], ...]:
    """(grant, until) for every grant of every assigned role, computed once
    when a client is loaded; whether each is still live is asked at use."""
    pairs = []
    for assignment in assignments or ():
        role = ROLES_BY_ID.get(assignment.get("role_id"))
        if role is None:
            continue
        until = assignment.get("expires_at")
        until = parse_datetime(until) if isinstance(until, str) else None
        pairs.extend((grant, until) for grant in role.grants)
    return tuple(pairs)


def live_grants(grants, pairs, now: datetime) -> list[str]:
    """Explicit grants and those of roles whose assignment has not expired."""
    return normalize_grants(
        {*grants, *(grant for grant, until in pairs if until is None or until > now)}
    )


def client_effective_grants(client, now: datetime | None = None) -> list[str]:
    return live_grants(client.grants, role_grants(client.role_assignments), now or timezone.now())


def assignments_view(assignments, now: datetime | None = None) -> list[dict]:
    """For display and the APIs: each assignment with its role's names."""
    now = now or timezone.now()
    result = []
    for assignment in assignments or ():
        role = ROLES_BY_ID.get(assignment.get("role_id"))
        if role is None:
            continue
        expires = assignment.get("expires_at")
        expires = parse_datetime(expires) if isinstance(expires, str) else None
        result.append(
            {
                "id": assignment["id"],
                "role": role,
                "expires_at": expires,
                "live": expires is None or expires > now,
            }
        )
    return result
