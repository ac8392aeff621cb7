import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from apiclients import secrets


class Tenant(models.Model):
    """A customer organisation. Everything else belongs to exactly one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    CLOUD_ADMIN = "cloud-admin", "Customer Cloud Admin"
    AUDITOR = "auditor", "Auditor"
    NONE = "none", "No role"


class Membership(models.Model):
    """A console user's tenant and role (one of each per user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.NONE)

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.get_role_display()})"


class ApiClientQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "ApiClientQuerySet":
        return self.filter(tenant=tenant)


class ApiClient(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_clients")
    name = models.CharField(max_length=100)
    description = models.TextField(max_length=1000, blank=True)
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    secret_digest = models.CharField(max_length=64, editable=False)
    # Bumped on every reset or rotation; tokens carry it, so a reset cuts them
    # off at once.
    secret_generation = models.PositiveIntegerField(default=1, editable=False)
    # During a rotation with overlap, the secret before the current one (whose
    # generation is secret_generation - 1) keeps working until this time.
    previous_secret_digest = models.CharField(max_length=64, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Optional: the client gets no tokens from this moment on.
    expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Grants such as "alerts:read" (see catalog); they are the OAuth scopes.
    grants = models.JSONField(default=list, blank=True)
    # Empty: allow all. Otherwise IP addresses / CIDR ranges, as strings.
    ip_allowlist = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_redeemed_at = models.DateTimeField(null=True, blank=True)
    secret_reset_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Optimistic concurrency: an edit carries the version it started from.
    version = models.PositiveIntegerField(default=1)
    # The client may rotate its own secret through the management API (a
    # pipeline renewing its credential); only an admin turns this on.
    allow_self_rotation = models.BooleanField(default=False)
    # Roles for clients (catalog.ROLES): [{"id", "role_id", "expires_at"}].
    # Their grants join the explicit ones while the assignment lasts
    # (apiclients.client_roles). Kept on the row so that loading a client for
    # a token stays one query.
    role_assignments = models.JSONField(default=list, blank=True)
    # The UUID the Taegis GraphQL API calls a client's `id`.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    objects = ApiClientQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "tenant", Lower("name"), name="apiclient_name_unique_per_tenant_ci"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            # The list sorted by last redeemed has an index on PostgreSQL
            # (migration 0003: SQLite cannot index NULLS LAST).
            models.Index("tenant", Lower("name"), name="apiclient_tenant_lname_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def status_label(self) -> str:
        return "Active" if self.is_active else "Inactive"

    @property
    def roles_view(self) -> list[dict]:
        """Its role assignments with their roles, for display."""
        from apiclients.client_roles import assignments_view

        return assignments_view(self.role_assignments)

    def set_secret(self, secret: str) -> None:
        self.secret_digest = secrets.digest(secret)

    def check_secret(self, secret: str) -> bool:
        return secrets.secret_matches(secret, self.secret_digest)

    def previous_secret_live(self, now: datetime) -> bool:
        return bool(
            self.previous_secret_digest
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        )

    def check_previous_secret(self, secret: str, now: datetime) -> bool:
        return self.previous_secret_live(now) and secrets.secret_matches(
            secret, self.previous_secret_digest
        )

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def secret_changed_at(self) -> datetime:
        return self.secret_reset_at or self.created_at


class TokenDailyCount(models.Model):
    """Tokens issued per client per day (UTC), for the hygiene chart. Written
    in batches from a cache counter, never once per token (oauth.clients)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="daily_counts")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint("client", "day", name="tokendailycount_client_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.day}: {self.count}"


class AuditAction(models.TextChoices):
    CREATED = "client.created", "Created"
    EDITED = "client.edited", "Edited"
    SECRET_RESET = "client.secret_reset", "Secret reset"
    SECRET_ROTATED = "client.secret_rotated", "Secret rotated"
    PREVIOUS_SECRET_REVOKED = "client.previous_secret_revoked", "Old secret revoked"
    ACTIVATED = "client.activated", "Activated"
    DEACTIVATED = "client.deactivated", "Deactivated"
    DELETED = "client.deleted", "Deleted"
    TOKEN_FAILED = "token.failed", "Token request failed"
    LOCKED_OUT = "client.locked_out", "Locked out"
    LOCKOUT_LIFTED = "client.lockout_lifted", "Lockout lifted"
    ACCESS_TOKEN_CREATED = "access_token.created", "Personal access token created"
    ACCESS_TOKEN_REVOKED = "access_token.revoked", "Personal access token revoked"
    POLICY_CHANGED = "tenant.policy_changed", "Policies changed"


class AuditEventQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> "AuditEventQuerySet":
        return self.filter(tenant=tenant)

    def update(self, **kwargs):
        raise TypeError("Audit events are append-only")

    def delete(self):
        raise TypeError("Audit events are append-only")


class AuditEvent(models.Model):
    """Append-only. Snapshots names instead of holding foreign keys, so that
    deleting a client or a user never rewrites (or loses) its history."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="audit_events")
    # When it happened: an event kept while the database was unavailable
    # (oauth.spool) is written later with its own time.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    actor = models.CharField(max_length=150, help_text="Username, or client ID for token events")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    client_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_name = models.CharField(max_length=100, blank=True)
    # What changed ({"field": [old, new]}) or other context. Never a secret.
    details = models.JSONField(default=dict, blank=True)
    # Set on events that may be written more than once (oauth.spool).
    spool_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.client_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only")


class PersonalAccessTokenQuerySet(models.QuerySet):
    def for_user(self, user) -> "PersonalAccessTokenQuerySet":
        return self.filter(user=user)


class PersonalAccessToken(models.Model):
    """A console admin's token for the management API. Like a client secret
    it is shown once and stored only as its SHA-256 digest; it expires, and
    it works only while its owner is still an admin of the tenant."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, so that the owner can tell their tokens apart.
    hint = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PersonalAccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class IdempotencyKey(models.Model):
    """That a request with this Idempotency-Key was answered. Never the
    answer itself: it held a secret, which is shown once. A retry is refused
    with a 409 that names the client the first request made."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    caller = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=100)
    # SHA-256 of the request body: the same key with another body is a mistake.
    fingerprint = models.CharField(max_length=64)
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "tenant", "caller", "key", name="idempotencykey_unique_per_caller"
            )
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"


class UsageLogEntry(models.Model):
    """Requests of a client at the token, introspection and revocation
    endpoints, aggregated per minute, source address, user agent, endpoint,
    outcome and scopes (`key` is a digest of those five). Counted in each
    process and written in batches (apiclients.usagelog), never once per
    request."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="usage_log")
    minute = models.DateTimeField()
    key = models.CharField(max_length=32)
    # "" when the address could not be told (a trusted proxy wrote "unknown").
    source_ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=16)
    # "ok", or the reason a request was refused (oauth.clients).
    outcome = models.CharField(max_length=32)
    scopes = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=0)
    # The latest request of the row, to the second: "last used".
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "client", "minute", "key", name="usagelogentry_client_minute_key_unique"
            )
        ]
        indexes = [
            models.Index(fields=["client", "-minute"], name="usagelog_client_minute"),
            models.Index(fields=["minute"], name="usagelog_minute"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.minute} {self.source_ip} {self.outcome}: {self.count}"

    @property
    def succeeded(self) -> bool:
        return self.outcome == "ok"


class AlertEvent(models.TextChoices):
    EXPIRING = "client.expiring", "Client expiring soon"
    ROTATION_DUE = "client.secret_rotation_due", "Secret due for rotation"
    UNUSED = "client.unused", "Client unused"
    LOCKED_OUT = "client.locked_out", "Client locked out"
    SECRET_RESET = "client.secret_reset", "Secret reset"
    SECRET_ROTATED = "client.secret_rotated", "Secret rotated"
    DELETED = "client.deleted", "Client deleted"
    TEST = "test", "Test event"


class AlertDestination(models.Model):
    """Where a tenant's alerts go: an email address, or a webhook URL whose
    deliveries are signed with a secret shown once (kept encrypted, since
    signing needs it: apiclients.alerts)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alert_destinations")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    target = models.CharField(max_length=500)
    events = models.JSONField(default=list)
    encrypted_secret = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "tenant", "kind", "target", name="alertdestination_tenant_target_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"


class AlertDelivery(models.Model):
    """One event for one destination: `event_key` names the event (the same
    event found again makes no second row), so each is delivered at least
    once and never twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    destination = models.ForeignKey(
        AlertDestination, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_key = models.CharField(max_length=200)
    event = models.CharField(max_length=40, choices=AlertEvent.choices)
    # The event's own ID, sent to the receiver (Webhook-Id), the same on every attempt.
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "destination", "event_key", name="alertdelivery_destination_event_unique"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="alertdelivery_due"),
            models.Index(fields=["tenant", "-created_at"], name="alertdelivery_tenant_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event_key} -> {self.destination_id}: {self.status}"


class TenantPolicy(models.Model):
    """A tenant's rules for its API clients (apiclients.policies); a blank
    value is no rule."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="policy")
    # Secrets older than this are flagged; with a grace period, they stop
    # working that many days later.
    max_secret_age_days = models.PositiveIntegerField(null=True, blank=True)
    secret_age_grace_days = models.PositiveIntegerField(null=True, blank=True)
    # New and edited clients must expire within this many days.
    require_expiry_days = models.PositiveIntegerField(null=True, blank=True)
    require_ip_restriction = models.BooleanField(default=False)
    # Seconds; tokens never live longer.
    max_token_lifetime = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Policy of {self.tenant_id}"
