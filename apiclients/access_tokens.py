"""Personal access tokens: how a console admin (or their script) calls the
management API, as the Taegis documentation's examples call theirs with a
person's bearer token.

A token is 256 random bits behind the prefix `acpat_`, shown once, stored only
as its SHA-256 digest (found by that digest: the token is high-entropy, so
the digest is as good a key as the token and gives nothing away). It expires,
can be revoked, and works only while its owner is an active admin of the
tenant it was made in: taking the role away stops every token at once.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apiclients import secrets
from apiclients.models import AuditAction, PersonalAccessToken, Role
from apiclients.services import audit_record

LIFETIMES = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
LIFETIME_CHOICES = [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("365d", "1 year")]
# Written at most this often per token: "last used" is shown to the minute.
LAST_USED_INTERVAL = timedelta(seconds=60)


def access_token_create(
    *, user, name: str, days: int, source_ip: str | None = None
) -> tuple[PersonalAccessToken, str]:
    """A new token for `user` (an admin), valid for `days`. Returns it and
    the token in clear, the only copy there will ever be."""
    raw = secrets.new_access_token()
    membership = user.membership
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            user=user,
            tenant=membership.tenant,
            name=name.strip(),
            digest=secrets.digest(raw),
            hint=raw[:10],
            expires_at=timezone.now() + timedelta(days=days),
        )
        audit_record(
            tenant=membership.tenant,
            action=AuditAction.ACCESS_TOKEN_CREATED,
            actor=user.get_username(),
            source_ip=source_ip,
            details={"name": token.name, "expires_at": token.expires_at.isoformat()},
        )
    return token, raw


def access_token_revoke(
    *, token: PersonalAccessToken, actor, source_ip: str | None = None
) -> PersonalAccessToken:
    with transaction.atomic():
        current = PersonalAccessToken.objects.select_for_update().get(pk=token.pk)
        if current.revoked_at is not None:
            return current
        current.revoked_at = timezone.now()
        current.save(update_fields=["revoked_at"])
        audit_record(
            tenant=current.tenant,
            action=AuditAction.ACCESS_TOKEN_REVOKED,
            actor=actor.get_username(),
            source_ip=source_ip,
            details={"name": current.name},
        )
    return current


def access_token_authenticate(raw: str) -> PersonalAccessToken | None:
    """The live token `raw` is, with its user and tenant loaded, or None
    (unknown, expired, revoked, or its owner is no longer an active admin
    of that tenant)."""
    if not secrets.looks_like_access_token(raw):
        return None
    token = (
        PersonalAccessToken.objects.select_related("user__membership", "tenant")
        .filter(digest=secrets.digest(raw))
        .first()
    )
    now = timezone.now()
    if token is None or not token.is_live(now):
        return None
    user = token.user
    membership = getattr(user, "membership", None)
    if (
        not user.is_active
        or membership is None
        or membership.role != Role.CLOUD_ADMIN
        or membership.tenant_id != token.tenant_id
    ):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_INTERVAL:
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
