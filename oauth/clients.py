"""Client authentication, one service for the token, introspection and
revocation endpoints: `client_authenticate` loads the client once, checks
the secret once (in constant time, and with the same digest work for an
unknown client), applies the rate limits and failure lockouts, and returns
what a token needs as a value.

Every way of failing answers the same `invalid_client` (or, from a client or
address past its failure limit, `too_many_requests`); only the tenant's audit
log learns the reason.
"""

import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from uuid import UUID

from django.db.models import Exists
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apiclients import policies, secrets
from apiclients.client_roles import live_grants, role_grants
from apiclients.models import ApiClient, AuditAction
from oauth import clientcache, spool, throttle
from oauth.errors import ClientAuthFailed, invalid_client
from oauth.models import RevokedToken
from oauth.request import Credentials

logger = logging.getLogger("oauth")

# Printable ASCII, as long as the column: anything else cannot be a client ID
# and is not worth a query (PostgreSQL refuses NUL bytes outright).
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
# Compared against when the client does not exist, so that an unknown client
# costs the same digest work as a wrong secret.
_DUMMY_DIGEST = secrets.digest(secrets.new_secret())


@dataclass(frozen=True)
class ClientRecord:
    """What the token and bearer paths need of a client (never the
    secret, only its digests). Immutable: one record is shared by every
    request of a process that keeps it in memory."""

    pk: int
    tenant_id: UUID
    client_id: str
    name: str
    secret_digest: str
    secret_generation: int
    previous_secret_digest: str
    previous_secret_expires_at: datetime | None
    is_active: bool
    grants: tuple[str, ...]
    ip_allowlist: tuple[str, ...]
    expires_at: datetime | None
    last_redeemed_at: datetime | None
    # From the tenant's policy (apiclients.policies), read with the row:
    # when the secret stops working, and the longest a token may live.
    secret_stops_at: datetime | None = None
    max_token_lifetime: int | None = None
    # (grant, until) from the client's roles, computed when it was loaded;
    # effective_grants() asks which are still live.
    role_grants: tuple[tuple[str, datetime | None], ...] = ()

    def effective_grants(self, now: datetime) -> list[str]:
        """Explicit grants and those of the roles not expired at `now`."""
        if not self.role_grants:
            return list(self.grants)
        return live_grants(self.grants, self.role_grants, now)

    def previous_secret_live(self, now: datetime) -> bool:
        return bool(
            self.previous_secret_digest
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        )

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def generation_live(self, generation: int, now: datetime) -> bool:
        """The current secret's tokens, and the old secret's while a
        rotation's overlap lasts."""
        if generation == self.secret_generation:
            return True
        return generation == self.secret_generation - 1 and self.previous_secret_live(now)


# values_list() names: the record's own columns, then what its derived
# fields are computed from (the roles' grants; the tenant's policy).
_DERIVED = ("secret_stops_at", "max_token_lifetime", "role_grants")
_FIELDS = [name for name in ClientRecord.__dataclass_fields__ if name not in _DERIVED]
_COLUMNS = [
    *_FIELDS,
    "role_assignments",
    "created_at",
    "secret_reset_at",
    "tenant__policy__max_secret_age_days",
    "tenant__policy__secret_age_grace_days",
    "tenant__policy__max_token_lifetime",
]


def client_record(client_id: str) -> ClientRecord | None:
    """The client with this ID: from this process's memory, or from the
    database (then kept, while memory is current: oauth.coherence)."""
    record = clientcache.client_get(client_id)
    if record is not None:
        return record
    return client_and_revocation(client_id)[0]


def client_and_revocation(
    client_id: str, jti: str | None = None
) -> tuple[ClientRecord | None, bool]:
    """The client from the database (then kept in memory) and, with `jti`,
    whether that token was revoked, in one query."""
    if not _CLIENT_ID_RE.fullmatch(client_id):
        return None, jti is not None and RevokedToken.objects.filter(jti=jti).exists()
    epoch = clientcache.epoch()
    rows = ApiClient.objects.filter(client_id=client_id)
    columns = _COLUMNS
    if jti is not None:
        rows = rows.annotate(revoked=Exists(RevokedToken.objects.filter(jti=jti)))
        columns = [*_COLUMNS, "revoked"]
    row = rows.values_list(*columns).first()
    if row is None:
        return None, False
    values = dict(zip(_FIELDS, row, strict=False))
    assignments, created_at, reset_at, max_age, grace, max_lifetime = row[
        len(_FIELDS) : len(_COLUMNS)
    ]
    values["secret_stops_at"] = policies.secret_stops_at(reset_at or created_at, max_age, grace)
    values["max_token_lifetime"] = max_lifetime
    values["role_grants"] = role_grants(assignments)
    values["grants"] = tuple(values["grants"] or ())
    values["ip_allowlist"] = tuple(map(str, values["ip_allowlist"] or ()))
    record = ClientRecord(**values)
    clientcache.client_keep(client_id, record, epoch)
    return record, jti is not None and row[-1]


@dataclass(frozen=True)
class Authenticated:
    client: ClientRecord
    # The generation of the secret presented: the token carries it, so that
    # the old secret's tokens die with a rotation's overlap.
    generation: int
    rate_headers: dict[str, str]


@sensitive_variables()
def client_authenticate(
    credentials: Credentials | None, *, endpoint: str, address: str | None
) -> Authenticated:
    """The authenticated client, or an OAuthError: 429 over a rate limit,
    ClientAuthFailed otherwise."""
    if credentials is None:
        throttle.check(endpoint=endpoint, client_id=None, ip=address)
        raise invalid_client("Client authentication is required")
    client_id = credentials.client_id
    # The common case: a client in memory, the right secret, counted in
    # memory: no round trip at all.
    client = clientcache.client_get(client_id)
    if client is not None:
        reason, generation = _verify(client, credentials.secret, address)
        if reason is None:
            headers = throttle.counted_locally(endpoint=endpoint, client_id=client_id, ip=address)
            if headers is not None:
                return Authenticated(client, generation, headers)
    check = throttle.check(endpoint=endpoint, client_id=client_id, ip=address)
    if client is None:
        client, _ = client_and_revocation(client_id)
        if client is None:
            secrets.secret_matches(credentials.secret, _DUMMY_DIGEST)
            reason, generation = "unknown_client", 0
        else:
            reason, generation = _verify(client, credentials.secret, address)
    if reason is None:
        return Authenticated(client, generation, check.headers)
    lockout = check.lockout()
    reached = throttle.failed(check)
    raise ClientAuthFailed(
        lockout or invalid_client(),
        reason="too_many_failures" if lockout else reason,
        client_id=client_id,
        client=client,
        lockouts=reached if client is not None else (),
    )


@sensitive_variables()
def _verify(client: ClientRecord, secret: str, address: str | None) -> tuple[str | None, int]:
    """(why these credentials do not authenticate the client now, or None;
    the generation of the secret presented). The current secret is checked
    first, then the previous one during a rotation's overlap."""
    now = timezone.now()
    if secrets.secret_matches(secret, client.secret_digest):
        generation = client.secret_generation
    elif client.previous_secret_live(now) and secrets.secret_matches(
        secret, client.previous_secret_digest
    ):
        generation = client.secret_generation - 1
    else:
        return "wrong_secret", 0
    if not client.is_active:
        return "inactive", generation
    if client.is_expired(now):
        return "expired", generation
    if client.secret_stops_at is not None and client.secret_stops_at <= now:
        # The tenant's maximum secret age, and its grace period, are over.
        return "secret_too_old", generation
    if not ip_allowed(client.ip_allowlist, address):
        # Refused as invalid_client rather than a 403: a 403 would tell
        # whoever holds a stolen secret that it is right and only their
        # address is wrong. Admins see the reason in the audit log.
        return "ip_not_allowed", generation
    return None, generation


def ip_allowed(allowlist, remote_addr: str | None) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(map(str, allowlist))))


@lru_cache(maxsize=1024)
def _networks(entries: tuple[str, ...]) -> tuple:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            # Skipped, not allowed: a list of only bad entries lets nobody in.
            logger.warning("Ignoring an invalid IP restriction entry %r", entry)
    return tuple(networks)


def failure_audit(failure: ClientAuthFailed, *, endpoint: str, source_ip: str | None) -> None:
    """Audits a refused request in the client's tenant, after the response
    has gone; repeated failures of one client from one address are
    aggregated (oauth.throttle). Unknown clients have no tenant, so they are
    only logged. Never records the secret, wherever it was pasted.

    A failure that reached one of the client's failure limits also records
    the lockout, which the console shows in the client's drawer."""
    client = failure.client
    for outcome in failure.lockouts:
        until = timezone.now() + timedelta(seconds=outcome.reset_after)
        _audit(
            client,
            AuditAction.LOCKED_OUT,
            source_ip,
            failures=outcome.count,
            window_seconds=outcome.limit.window,
            until=until.isoformat(),
            from_anywhere=outcome.limit.name == "oauth-fail-client",
        )
    suppressed = throttle.audit_suppressed(client_id=failure.client_id, ip=source_ip)
    if suppressed is None:
        return
    if client is None:
        shown = failure.client_id
        if secrets.contains_secret(shown) or not _CLIENT_ID_RE.fullmatch(shown):
            shown = "(withheld: not a client ID)"
        logger.warning(
            "Refused %s request for unknown client %r from %s%s",
            endpoint,
            shown,
            source_ip or "an unknown address",
            f" ({suppressed} more since the last report)" if suppressed else "",
        )
        return
    left_out = {"suppressed_failures": suppressed} if suppressed else {}
    _audit(
        client,
        AuditAction.TOKEN_FAILED,
        source_ip,
        reason=failure.reason,
        endpoint=endpoint,
        **left_out,
    )


def _audit(client: ClientRecord, action: str, source_ip: str | None, **details) -> None:
    # Kept until the database can take it (a failure during an outage).
    spool.audit(
        tenant_id=client.tenant_id,
        action=action,
        actor=client.client_id,
        source_ip=source_ip,
        client_id=client.client_id,
        client_name=client.name,
        details=details,
    )
