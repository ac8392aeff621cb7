"""Tenant policies: rules a Customer Cloud Admin sets for every API client
of the tenant, enforced by the services (so by the console and any API that
calls them) and by the token endpoint.

- Maximum secret age: older secrets are flagged; with a grace period, a
  secret stops working once it is older than the maximum plus the grace.
- Expiry required within N days: a client created or edited must expire
  within N days of the change.
- IP restriction required: a client created or edited must have one.
- Maximum token lifetime: tokens never live longer (seconds).

A new policy never breaks an existing client silently: the Policies page
lists the clients that violate it. The token path reads the two values it
needs with the client's row (oauth.clients), and a change of policy is
published to every process like a change of a client (oauth.clientcache).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from apiclients.models import ApiClient, Tenant, TenantPolicy


class PolicyViolation(ValueError):
    """A change that breaks a tenant policy; the message names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def policy_of(tenant: Tenant) -> TenantPolicy:
    """The tenant's policy (unsaved and empty when it has none)."""
    try:
        return TenantPolicy.objects.get(tenant=tenant)
    except TenantPolicy.DoesNotExist:
        return TenantPolicy(tenant=tenant)


def check_client(
    *,
    tenant: Tenant,
    ip_allowlist,
    expires_at: datetime | None,
    only=("ip_allowlist", "expires_at"),
    now: datetime | None = None,
) -> None:
    """Raises PolicyViolation if a client with these settings breaks a
    policy; `only` the rules of these fields (an edit is held to the rules
    of what it changes)."""
    policy = policy_of(tenant)
    now = now or timezone.now()
    if "ip_allowlist" in only and policy.require_ip_restriction and not list(ip_allowlist or ()):
        raise PolicyViolation(
            "ip_allowlist",
            "The tenant policy “IP restriction required” needs at least one address or range.",
        )
    if "expires_at" in only and policy.require_expiry_days:
        limit = now + timedelta(days=policy.require_expiry_days)
        if expires_at is None or expires_at > limit:
            raise PolicyViolation(
                "expires_at",
                f"The tenant policy “Expiry required within {policy.require_expiry_days} days” "
                f"needs an expiry date no later than {limit:%Y-%m-%d}.",
            )


def secret_stops_at(
    changed_at: datetime, max_age_days: int | None, grace_days: int | None
) -> datetime | None:
    """When a secret changed at `changed_at` stops working, or None."""
    if max_age_days is None or grace_days is None:
        return None
    return changed_at + timedelta(days=max_age_days + grace_days)


@dataclass
class Violation:
    client: ApiClient
    policy: str
    detail: str


def violations(tenant: Tenant, now: datetime | None = None) -> list[Violation]:
    """The tenant's clients that break its policy now, with why."""
    policy = policy_of(tenant)
    now = now or timezone.now()
    found = []
    clients = ApiClient.objects.for_tenant(tenant).order_by("name")
    for client in clients.only(
        "name", "client_id", "ip_allowlist", "expires_at", "secret_reset_at", "created_at"
    ):
        if policy.max_secret_age_days is not None:
            age = (now - client.secret_changed_at).days
            if age > policy.max_secret_age_days:
                stops = secret_stops_at(
                    client.secret_changed_at,
                    policy.max_secret_age_days,
                    policy.secret_age_grace_days,
                )
                if stops is None:
                    detail = f"secret is {age} days old"
                elif stops <= now:
                    detail = f"secret is {age} days old: it stopped working on {stops:%Y-%m-%d}"
                else:
                    detail = f"secret is {age} days old: it stops working on {stops:%Y-%m-%d}"
                found.append(Violation(client, "Maximum secret age", detail))
        if policy.require_ip_restriction and not client.ip_allowlist:
            found.append(Violation(client, "IP restriction required", "no IP restriction"))
        if policy.require_expiry_days:
            limit = now + timedelta(days=policy.require_expiry_days)
            if client.expires_at is None:
                found.append(Violation(client, "Expiry required", "no expiry date"))
            elif client.expires_at > limit:
                found.append(
                    Violation(client, "Expiry required", f"expires {client.expires_at:%Y-%m-%d}")
                )
    return found


FIELDS = (
    "max_secret_age_days",
    "secret_age_grace_days",
    "require_expiry_days",
    "require_ip_restriction",
    "max_token_lifetime",
)
