"""Credential hygiene at a glance: expiry, secret age, unused clients.

One place decides what "expiring soon", "old secret" and "unused" mean, for
the list's badges, its filters and the details drawer.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce

from apiclients.models import ApiClient

UNUSED_DAYS = 90

# ?show= values of the list, in the order the filter menu offers them.
FILTERS = {
    "": "All API clients",
    "active": "Active",
    "inactive": "Inactive",
    "expiring": "Expiring soon",
    "expired": "Expired",
    "old-secret": "Secret due for rotation",
    "never-redeemed": "Never redeemed",
    "unused": f"Not redeemed in {UNUSED_DAYS} days",
    "overlap": "Rotation in progress",
}


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str  # warning, danger, info
    title: str = ""


def _days(delta: timedelta) -> int:
    return max(0, delta.days)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def secret_age_days(client: ApiClient, now: datetime) -> int:
    return _days(now - client.secret_changed_at)


def secret_is_old(client: ApiClient, now: datetime) -> bool:
    return secret_age_days(client, now) >= settings.SECRET_ROTATION_REMINDER_DAYS


def badges(client: ApiClient, now: datetime, *, overlap: bool = True) -> list[Badge]:
    """Warnings for one client; needs expires_at, secret_reset_at,
    created_at and previous_secret_* loaded. `overlap=False` leaves out the
    rotation badge where a fuller notice says it."""
    result = []
    if client.expires_at is not None:
        if client.expires_at <= now:
            result.append(Badge("Expired", "danger", "This client gets no tokens."))
        else:
            left = client.expires_at - now
            if left <= timedelta(days=settings.CLIENT_EXPIRY_WARNING_DAYS):
                days = _days(left)
                label = "Expires today" if days == 0 else f"Expires in {_plural(days, 'day')}"
                result.append(Badge(label, "warning"))
    if overlap and client.previous_secret_live(now):
        result.append(
            Badge("2 secrets live", "info", "A rotation is in progress: the old secret works.")
        )
    if secret_is_old(client, now):
        age = secret_age_days(client, now)
        result.append(
            Badge(
                f"Secret {age} days old",
                "warning",
                f"Rotate secrets at least every {settings.SECRET_ROTATION_REMINDER_DAYS} days.",
            )
        )
    return result


def apply_filter(clients: QuerySet, show: str, now: datetime) -> QuerySet:
    soon = now + timedelta(days=settings.CLIENT_EXPIRY_WARNING_DAYS)
    unused_since = now - timedelta(days=UNUSED_DAYS)
    old_secret_since = now - timedelta(days=settings.SECRET_ROTATION_REMINDER_DAYS)
    if show == "active":
        return clients.filter(is_active=True)
    if show == "inactive":
        return clients.filter(is_active=False)
    if show == "expiring":
        return clients.filter(expires_at__gt=now, expires_at__lte=soon)
    if show == "expired":
        return clients.filter(expires_at__lte=now)
    if show == "old-secret":
        return clients.alias(changed=Coalesce("secret_reset_at", "created_at")).filter(
            changed__lte=old_secret_since
        )
    if show == "never-redeemed":
        return clients.filter(last_redeemed_at__isnull=True)
    if show == "unused":
        # Redeemed long ago, or never in a life longer than the window.
        return clients.filter(
            Q(last_redeemed_at__lte=unused_since)
            | Q(last_redeemed_at__isnull=True, created_at__lte=unused_since)
        )
    if show == "overlap":
        return clients.filter(previous_secret_expires_at__gt=now).exclude(previous_secret_digest="")
    return clients
