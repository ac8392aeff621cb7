"""Every state change of an API client, each in one transaction with its audit
event. Views parse input and call exactly one of these.

Functions that mint a secret return it; it is the only copy that will ever
exist in clear, and the caller shows it once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apiclients import policies, secrets
from apiclients.catalog import normalize_grants
from apiclients.models import ApiClient, AuditAction, AuditEvent, Tenant, TenantPolicy
from oauth import clientcache, throttle


class NameTaken(Exception):
    """Another client in the tenant already has this name (case-insensitive)."""


class EditConflict(Exception):
    """The client changed since the editor loaded it."""

    def __init__(self, current: ApiClient):
        super().__init__("The API client was changed by someone else")
        self.current = current


@dataclass(frozen=True)
class ClientActor:
    """An API client acting through the management API: audited under its
    client ID; it is nobody's created_by or updated_by (those name people)."""

    client_id: str

    def get_username(self) -> str:
        return self.client_id


def _actor_label(actor) -> str:
    return actor.get_username() if actor is not None else "system"


def _actor_user(actor):
    return None if isinstance(actor, ClientActor) else actor


def audit_record(
    *,
    tenant: Tenant,
    action: str,
    actor: str,
    source_ip: str | None = None,
    client: ApiClient | None = None,
    client_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        tenant=tenant,
        action=action,
        actor=actor[:150],
        source_ip=source_ip,
        client_id=client.client_id if client else client_id[:64],
        client_name=client.name if client else "",
        details=details or {},
    )


def name_is_taken(*, tenant: Tenant, name: str, exclude_pk: int | None = None) -> bool:
    qs = ApiClient.objects.for_tenant(tenant).filter(name__iexact=name.strip())
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def api_client_create(
    *,
    tenant: Tenant,
    name: str,
    description: str = "",
    grants: list[str] = (),
    ip_allowlist: list[str] = (),
    is_active: bool = True,
    expires_at: datetime | None = None,
    allow_self_rotation: bool = False,
    role_assignments: list[dict] = (),
    actor,
    source_ip: str | None = None,
) -> tuple[ApiClient, str]:
    """`role_assignments` as apiclients.client_roles.assignments_for makes them."""
    # Tenant policies (an expiry, an IP restriction) hold for every caller.
    policies.check_client(tenant=tenant, ip_allowlist=ip_allowlist, expires_at=expires_at)
    secret = secrets.new_secret()
    client = ApiClient(
        tenant=tenant,
        name=name.strip(),
        description=description.strip(),
        client_id=secrets.new_client_id(),
        grants=normalize_grants(grants),
        ip_allowlist=list(ip_allowlist),
        is_active=is_active,
        expires_at=expires_at,
        allow_self_rotation=allow_self_rotation,
        role_assignments=list(role_assignments),
        created_by=_actor_user(actor),
        updated_by=_actor_user(actor),
    )
    client.set_secret(secret)
    try:
        with transaction.atomic():
            client.save()
            audit_record(
                tenant=tenant,
                action=AuditAction.CREATED,
                actor=_actor_label(actor),
                source_ip=source_ip,
                client=client,
                details={
                    "grants": client.grants,
                    "ip_allowlist": client.ip_allowlist,
                    "status": client.status_label,
                    **({"expires_at": expires_at.isoformat()} if expires_at else {}),
                    **({"allow_self_rotation": True} if allow_self_rotation else {}),
                    **({"roles": client.role_assignments} if client.role_assignments else {}),
                },
            )
    except IntegrityError as exc:
        # The form checked the name, but a concurrent create can still win.
        if name_is_taken(tenant=tenant, name=name):
            raise NameTaken(name) from exc
        raise
    return client, secret


_EDITABLE = (
    "name",
    "description",
    "grants",
    "ip_allowlist",
    "is_active",
    "expires_at",
    "allow_self_rotation",
    "role_assignments",
)


def api_client_update(
    *,
    client: ApiClient,
    actor,
    expected_version: int | None = None,
    source_ip: str | None = None,
    **changes,
) -> ApiClient:
    """Apply `changes` (any of name, description, grants, ip_allowlist,
    is_active, expires_at). With `expected_version`, refuses to overwrite a
    newer save."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise TypeError(f"Not editable: {', '.join(sorted(unknown))}")
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    if "description" in changes:
        changes["description"] = changes["description"].strip()
    if "grants" in changes:
        changes["grants"] = normalize_grants(changes["grants"])
    if "ip_allowlist" in changes:
        changes["ip_allowlist"] = list(changes["ip_allowlist"])

    try:
        with transaction.atomic():
            current = ApiClient.objects.select_for_update().get(pk=client.pk)
            if expected_version is not None and current.version != expected_version:
                raise EditConflict(current)
            diff = {
                field: [_jsonable(getattr(current, field)), _jsonable(value)]
                for field, value in changes.items()
                if getattr(current, field) != value
            }
            if not diff:
                return current
            policies.check_client(
                tenant=current.tenant,
                ip_allowlist=changes.get("ip_allowlist", current.ip_allowlist),
                expires_at=changes.get("expires_at", current.expires_at),
                only=set(diff),
            )
            for field, value in changes.items():
                setattr(current, field, value)
            current.updated_by = _actor_user(actor)
            current.version = F("version") + 1
            current.save()
            current.refresh_from_db()
            # Every process drops its copy before this returns (oauth.coherence).
            clientcache.client_changed(current.client_id)

            status = diff.pop("is_active", None)
            if diff:
                audit_record(
                    tenant=current.tenant,
                    action=AuditAction.EDITED,
                    actor=_actor_label(actor),
                    source_ip=source_ip,
                    client=current,
                    details={"changes": diff},
                )
            if status is not None:
                audit_record(
                    tenant=current.tenant,
                    action=AuditAction.ACTIVATED if status[1] else AuditAction.DEACTIVATED,
                    actor=_actor_label(actor),
                    source_ip=source_ip,
                    client=current,
                )
    except IntegrityError as exc:
        if name_is_taken(tenant=client.tenant, name=changes.get("name", ""), exclude_pk=client.pk):
            raise NameTaken(changes["name"]) from exc
        raise
    return current


def _jsonable(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _new_secret_locked(client: ApiClient, actor) -> tuple[ApiClient, str, str]:
    """Inside a transaction: lock the row and give it a new secret and
    generation. Returns the locked row, the new secret and the old digest."""
    secret = secrets.new_secret()
    current = ApiClient.objects.select_for_update().get(pk=client.pk)
    old_digest = current.secret_digest
    current.set_secret(secret)
    current.secret_generation = F("secret_generation") + 1
    current.secret_reset_at = timezone.now()
    current.updated_by = _actor_user(actor)
    current.version = F("version") + 1
    return current, secret, old_digest


def api_client_reset_secret(
    *, client: ApiClient, actor, source_ip: str | None = None
) -> tuple[ApiClient, str]:
    """New secret; the old one (and a rotated-out one still in its overlap)
    and every token issued with them stop working as soon as this commits
    (tokens carry the secret generation)."""
    with transaction.atomic():
        current, secret, _ = _new_secret_locked(client, actor)
        current.previous_secret_digest = ""
        current.previous_secret_expires_at = None
        current.save()
        current.refresh_from_db()
        clientcache.client_changed(current.client_id)
        audit_record(
            tenant=current.tenant,
            action=AuditAction.SECRET_RESET,
            actor=_actor_label(actor),
            source_ip=source_ip,
            client=current,
        )
    return current, secret


def api_client_rotate_secret(
    *, client: ApiClient, grace: timedelta, actor, source_ip: str | None = None
) -> tuple[ApiClient, str]:
    """New secret, while the current one keeps working for `grace` so the
    integration can switch without downtime. At most two secrets are live: a
    secret still in the overlap of an earlier rotation stops now."""
    if grace <= timedelta(0):
        raise ValueError("The overlap must be positive")
    with transaction.atomic():
        current, secret, old_digest = _new_secret_locked(client, actor)
        now = timezone.now()
        dropped = current.previous_secret_live(now)
        current.previous_secret_digest = old_digest
        current.previous_secret_expires_at = now + grace
        current.save()
        current.refresh_from_db()
        clientcache.client_changed(current.client_id)
        audit_record(
            tenant=current.tenant,
            action=AuditAction.SECRET_ROTATED,
            actor=_actor_label(actor),
            source_ip=source_ip,
            client=current,
            details={
                "old_secret_expires_at": current.previous_secret_expires_at.isoformat(),
                "overlap_seconds": int(grace.total_seconds()),
                **({"earlier_old_secret_revoked": True} if dropped else {}),
            },
        )
    return current, secret


def api_client_revoke_previous_secret(
    *, client: ApiClient, actor, source_ip: str | None = None
) -> ApiClient:
    """Ends a rotation's overlap now: the old secret and its tokens stop."""
    with transaction.atomic():
        current = ApiClient.objects.select_for_update().get(pk=client.pk)
        if not current.previous_secret_live(timezone.now()):
            return current
        current.previous_secret_digest = ""
        current.previous_secret_expires_at = None
        current.updated_by = _actor_user(actor)
        current.version = F("version") + 1
        current.save()
        current.refresh_from_db()
        clientcache.client_changed(current.client_id)
        audit_record(
            tenant=current.tenant,
            action=AuditAction.PREVIOUS_SECRET_REVOKED,
            actor=_actor_label(actor),
            source_ip=source_ip,
            client=current,
        )
    return current


def api_client_lockout_lift(
    *, client: ApiClient, address: str | None, actor, source_ip: str | None = None
) -> None:
    """Ends the client's lockout from `address` (and from anywhere): failures
    from there are answered 401 again, and counted afresh. Raises one of
    config.redis.ERRORS when the counters cannot be reached."""
    throttle.lift(client_id=client.client_id, ip=address)
    audit_record(
        tenant=client.tenant,
        action=AuditAction.LOCKOUT_LIFTED,
        actor=_actor_label(actor),
        source_ip=source_ip,
        client=client,
        details={"address": address},
    )


def api_client_delete(*, client: ApiClient, actor, source_ip: str | None = None) -> None:
    """Removes the client (its tokens die with it); its audit history stays."""
    with transaction.atomic():
        audit_record(
            tenant=client.tenant,
            action=AuditAction.DELETED,
            actor=_actor_label(actor),
            source_ip=source_ip,
            client=client,
            details={"grants": client.grants},
        )
        client.delete()
        clientcache.client_changed(client.client_id)


def policy_update(*, tenant: Tenant, actor, source_ip: str | None = None, **values) -> TenantPolicy:
    """Saves the tenant's policy with its audit event, and has every process
    read its clients again before this returns (oauth.coherence)."""
    with transaction.atomic():
        policy, _ = TenantPolicy.objects.select_for_update().get_or_create(tenant=tenant)
        diff = {
            field: [getattr(policy, field), values[field]]
            for field in policies.FIELDS
            if field in values and getattr(policy, field) != values[field]
        }
        if not diff:
            return policy
        for field, (_, new) in diff.items():
            setattr(policy, field, new)
        policy.updated_by = actor
        policy.save()
        audit_record(
            tenant=tenant,
            action=AuditAction.POLICY_CHANGED,
            actor=actor.get_username(),
            source_ip=source_ip,
            client=None,
            details={"changes": diff},
        )
        clientcache.tenant_changed(str(tenant.pk))
    return policy
