"""Client authentication at the token, introspection and revocation endpoints.

One SELECT loads the client; the secret is compared in constant time against
its digest, then status and IP restriction are checked. Every way of failing
raises the same `invalid_client` to the caller; only the tenant's audit log
learns the reason.
"""

import ipaddress
import logging
import random
import re
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apiclients import secrets, usage
from apiclients.models import ApiClient, AuditAction, Tenant
from apiclients.services import audit_record
from config.db import prepared_cursor
from oauth import clientcache
from oauth.errors import ClientAuthFailed
from oauth.models import RevokedToken
from oauth.request import Credentials

logger = logging.getLogger("oauth")

# What the token and bearer paths need, and no more (the description can be 1000 chars).
_FIELDS = frozenset(
    {
        "id",
        "tenant_id",
        "client_id",
        "name",
        "secret_digest",
        "secret_generation",
        "is_active",
        "grants",
        "ip_allowlist",
        "last_redeemed_at",
        "expires_at",
        "previous_secret_digest",
        "previous_secret_expires_at",
    }
)
# Printable ASCII, as long as the column: anything else cannot be a client ID
# and is not worth a query (PostgreSQL refuses NUL bytes outright).
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
# Compared against when the client does not exist, so that an unknown client
# costs the same digest work as a wrong secret.
_DUMMY_DIGEST = secrets.digest(secrets.new_secret())


@sensitive_variables()
def client_authenticate(credentials: Credentials, *, remote_addr: str | None) -> ApiClient:
    client = client_load(credentials.client_id)
    if client is None:
        secrets.secret_matches(credentials.secret, _DUMMY_DIGEST)
        raise ClientAuthFailed(reason="unknown_client", client_id=credentials.client_id)
    reason = client_refusal(client, credentials.secret, remote_addr)
    if reason is None:
        return client
    raise ClientAuthFailed(reason=reason, client_id=client.client_id, client=client)


@sensitive_variables()
def client_refusal(client: ApiClient, secret: str, remote_addr: str | None) -> str | None:
    """Why these credentials do not authenticate this client now (for the
    audit log; the caller only ever hears invalid_client), or None.

    The secret is compared in constant time against the digest of the
    current secret, then of the previous one during a rotation's overlap."""
    now = timezone.now()
    # The token carries the generation of the secret that earned it: during a
    # rotation's overlap the old secret's tokens die with the overlap.
    if client.check_secret(secret):
        client.token_generation = client.secret_generation
    elif client.check_previous_secret(secret, now):
        client.token_generation = client.secret_generation - 1
    else:
        client.token_generation = None
        return "wrong_secret"
    if not client.is_active:
        return "inactive"
    if client.is_expired(now):
        return "expired"
    if not ip_allowed(client.ip_allowlist, remote_addr):
        # Refused as invalid_client rather than a 403: a 403 would tell
        # whoever holds a stolen secret that it is right and only their
        # address is wrong. Admins see the reason in the audit log.
        return "ip_not_allowed"
    return None


def client_load(client_id: str) -> ApiClient | None:
    """The client with this ID: from this worker's memory when it is there
    (oauth.clientcache keeps it current), else from the database (and kept)."""
    client = clientcache.cached(client_id)
    if client is not None:
        return client
    live, epoch = clientcache.live(), clientcache.epoch()
    client, _ = client_row(client_id)
    if client is not None and live:
        clientcache.remember(client, epoch)
    return client


def client_row(client_id: str, *, revoked_jti: str | None = None) -> tuple[ApiClient | None, bool]:
    """The client with this ID (only the columns above), in one SELECT; with
    `revoked_jti`, the same SELECT also says whether that token was revoked.

    The SQL is built once per connection from the model's metadata and run on
    a bare cursor, with Django's own converters applied to the row: on this
    path, building and compiling the query with the ORM took longer than the
    database took to answer it (about 0.3 ms against 0.1 ms). On PostgreSQL
    it is a prepared statement (config.db.prepared_cursor)."""
    if not _CLIENT_ID_RE.fullmatch(client_id):
        return None, False
    connection = connections[DEFAULT_DB_ALIAS]
    sql, attnames, converters = _client_query(connection, revoked_jti is not None)
    with prepared_cursor(connection, binary=True) as cursor:
        cursor.execute(sql, [client_id] if revoked_jti is None else [revoked_jti, client_id])
        row = cursor.fetchone()
    if row is None:
        return None, False
    values = []
    # strict=False: the revocation flag, when asked for, is an extra last column.
    for value, (col, column_converters) in zip(row, converters, strict=False):
        for convert in column_converters:
            value = convert(value, col, connection)
        values.append(value)
    client = ApiClient.from_db(connection.alias, attnames, values)
    return client, revoked_jti is not None and bool(row[-1])


@lru_cache(maxsize=16)
def _client_query(connection, with_revocation: bool):
    # Identifiers come from the models' metadata, quoted; values are parameters.
    quote = connection.ops.quote_name
    table = ApiClient._meta.db_table
    fields = [f for f in ApiClient._meta.concrete_fields if f.attname in _FIELDS]
    columns = ", ".join(f"{quote(table)}.{quote(f.column)}" for f in fields)
    if with_revocation:
        revoked = quote(RevokedToken._meta.db_table)
        jti = quote(RevokedToken._meta.get_field("jti").column)
        columns += f", EXISTS (SELECT 1 FROM {revoked} WHERE {revoked}.{jti} = %s)"  # noqa: S608
    client_id = quote(ApiClient._meta.get_field("client_id").column)
    sql = f"SELECT {columns} FROM {quote(table)} WHERE {quote(table)}.{client_id} = %s"  # noqa: S608
    converters = []
    for field in fields:
        col = field.get_col(table)
        converters.append(
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
        )
    return sql, [f.attname for f in fields], converters


def ip_allowed(allowlist: list, remote_addr: str | None) -> bool:
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


def client_mark_redeemed(client: ApiClient, *, now: datetime) -> bool:
    """Sets last redeemed, at most once per OAUTH_LAST_REDEEMED_INTERVAL.

    The row was just loaded, so the decision costs nothing; a client that asks
    for a token on every call (as the seeds advise) costs one UPDATE per
    interval instead of one per token. The console shows minutes, so a
    minute of lag is invisible. With a 5 s interval, the writes (and the token
    counts moved with them) of the benchmark's twenty clients took the token
    endpoint's p99 at concurrency 32 from 26-34 ms to 46-62 ms, even written
    from the background thread (the GIL they hold while Django builds the
    queries).

    The interval is stretched by up to a fifth at random, so that clients
    that started together do not stay in step."""
    last = client.last_redeemed_at
    interval = settings.OAUTH_LAST_REDEEMED_INTERVAL * (1 + random.random() / 5)  # noqa: S311
    if last is not None and now - last < timedelta(seconds=interval):
        return False
    client.last_redeemed_at = now
    if clientcache.redeemed_later(client.client_id, client.pk, now):
        # Written by the cache's background thread within a second, off the
        # request: with twenty clients, these writes (an UPDATE and the token
        # counts, some ten round trips each) stalled every worker ~7 times a
        # second, and every request queued behind it.
        return True
    redeemed_write(client.pk, now)
    clientcache.redeemed(client.client_id, now)
    return True


def redeemed_write(client_pk: int, now: datetime) -> None:
    # update(), not save(): touches one column and leaves "last modified" alone.
    ApiClient.objects.filter(pk=client_pk).update(last_redeemed_at=now)
    # The same coalesced moment moves the day's token counts to the database.
    usage.counts_flush(client_pk, now)


def token_failure_record(
    *,
    client: ApiClient | None,
    client_id: str,
    reason: str,
    endpoint: str,
    source_ip: str | None,
    suppressed: int = 0,
) -> None:
    """Audits a refused request in the client's tenant. Unknown clients have
    no tenant, so they are only logged. Never records the secret.

    `suppressed`: failures of this client from this address since the last
    event that were not written (oauth.throttle aggregates them)."""
    if client is None:
        # Someone who swaps the ID and the secret (`curl -u secret:id`) must
        # not get their secret written to the log.
        shown = "(a secret, withheld)" if client_id.startswith(secrets.SECRET_PREFIX) else client_id
        logger.warning(
            "Refused %s request for unknown client %r from %s%s",
            endpoint,
            shown[:64],
            source_ip or "an unknown address",
            f" ({suppressed} more since the last report)" if suppressed else "",
        )
        return
    details = {"reason": reason, "endpoint": endpoint}
    if suppressed:
        details["suppressed_failures"] = suppressed
    audit_record(
        # Only the key is needed; this avoids loading the tenant.
        tenant=Tenant(pk=client.tenant_id),
        action=AuditAction.TOKEN_FAILED,
        actor=client.client_id,
        source_ip=source_ip,
        client=client,
        details=details,
    )
