"""Alerts: a tenant's email addresses and webhooks are told when a client
expires soon, a secret is due for rotation, a client goes unused, a client
is locked out, a secret is reset or rotated, or a client is deleted.

How an alert is delivered at least once and never twice:

- `check` (run every minute by the job runner, apiclients.tasks) finds the
  events: the state of each client (expiring, rotation due, unused) and the
  audit events of the last day (lockouts, resets, rotations, deletions; the
  audit log is written in the same transaction as the change). Each event
  has a key (the client and the expiry date, the secret's generation, the
  audit event's ID...), and each (destination, key) is one AlertDelivery
  row, unique in the database: an event found again adds nothing.
- `deliver` claims a due row with one conditional UPDATE (so two workers
  never send the same row at once), sends it with a timeout, and marks it
  delivered; a failure is retried with exponential backoff. A worker that
  dies mid-delivery leaves the row claimed only until its claim runs out;
  the next sweep sends it again. A receiver may thus see an event twice only
  if the worker died between the receiver's 2xx and the database's commit;
  every attempt carries the same `Webhook-Id` (and Message-ID) for that.

Webhooks carry a JSON body signed with HMAC-SHA256 over
"<timestamp>.<body>", in the header `Webhook-Signature: t=<ts>,v1=<hex>`
(the scheme Stripe uses), so a receiver can reject a replayed or old
request. The signing secret is shown once; since signing needs it, it is
kept encrypted (AES-GCM, with a key derived from SECRET_KEY by HKDF, as
oauth.keys keeps signing keys), never in clear.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets as random_secrets
import time
from datetime import datetime, timedelta

import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apiclients.models import (
    AlertDelivery,
    AlertDestination,
    AlertEvent,
    ApiClient,
    AuditAction,
    AuditEvent,
    Tenant,
)

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Webhook-Signature"
ID_HEADER = "Webhook-Id"
# A receiver should refuse a signature older than this (seconds).
TOLERANCE = 300
_HKDF_INFO = b"apiclients alert webhook secret v1"
AUDITED = {
    AuditAction.LOCKED_OUT: AlertEvent.LOCKED_OUT,
    AuditAction.SECRET_RESET: AlertEvent.SECRET_RESET,
    AuditAction.SECRET_ROTATED: AlertEvent.SECRET_ROTATED,
    AuditAction.DELETED: AlertEvent.DELETED,
}
SUBJECTS = {
    AlertEvent.EXPIRING: "API client {name} expires on {expires}",
    AlertEvent.ROTATION_DUE: "The secret of API client {name} is due for rotation",
    AlertEvent.UNUSED: "API client {name} has not been used for {days} days",
    AlertEvent.LOCKED_OUT: "API client {name} was locked out by failed attempts",
    AlertEvent.SECRET_RESET: "The secret of API client {name} was reset",
    AlertEvent.SECRET_ROTATED: "The secret of API client {name} was rotated",
    AlertEvent.DELETED: "API client {name} was deleted",
    AlertEvent.TEST: "Test alert from the API Clients console",
}


# -- signing ------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Webhook-Signature header for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and is no older than
    TOLERANCE seconds (a replay of an old request is refused)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > TOLERANCE:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _wrapping_key(secret_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return AESGCM(derived)


def _seal(secret: str, bound: str) -> str:
    nonce = os.urandom(12)
    sealed = _wrapping_key(settings.SECRET_KEY).encrypt(nonce, secret.encode(), bound.encode())
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def _open(destination: AlertDestination) -> str:
    data = base64.urlsafe_b64decode(destination.encrypted_secret.removeprefix("v1:"))
    for secret_key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        try:
            plain = _wrapping_key(secret_key).decrypt(
                data[:12], data[12:], _bound(destination.tenant_id, destination.target).encode()
            )
        except InvalidTag:
            continue
        return plain.decode()
    raise ValueError("The webhook secret was stored under another SECRET_KEY")


def _bound(tenant_id, target: str) -> str:
    # Bound as associated data: a ciphertext cannot be moved to another row.
    return f"{tenant_id}|{target}"


# -- destinations -------------------------------------------------------------


def destination_create(
    *, tenant: Tenant, kind: str, target: str, events: list[str], actor
) -> tuple[AlertDestination, str | None]:
    """The destination and, for a webhook, its signing secret (shown once)."""
    secret = None
    destination = AlertDestination(
        tenant=tenant, kind=kind, target=target, events=sorted(events), created_by=actor
    )
    if kind == AlertDestination.Kind.WEBHOOK:
        secret = SECRET_PREFIX + random_secrets.token_urlsafe(32)
        destination.encrypted_secret = _seal(secret, _bound(tenant.pk, target))
    with transaction.atomic():
        destination.save()
    return destination, secret


def destination_delete(*, destination: AlertDestination) -> None:
    destination.delete()


# -- finding events -----------------------------------------------------------


def _client_payload(client: ApiClient) -> dict:
    return {"client_id": client.client_id, "name": client.name}


def _state_events(tenant_clients, now: datetime):
    """(event, key, payload) for the clients' state now."""
    expiry_days = settings.CLIENT_EXPIRY_WARNING_DAYS
    rotation_days = settings.SECRET_ROTATION_REMINDER_DAYS
    unused_days = settings.ALERT_UNUSED_DAYS
    for client in tenant_clients:
        data = _client_payload(client)
        if client.expires_at and now < client.expires_at <= now + timedelta(days=expiry_days):
            expires = client.expires_at.isoformat()
            yield (
                AlertEvent.EXPIRING,
                f"expiring:{client.client_id}:{expires}",
                {**data, "expires_at": expires},
            )
        if client.secret_changed_at <= now - timedelta(days=rotation_days):
            yield (
                AlertEvent.ROTATION_DUE,
                f"rotation:{client.client_id}:{client.secret_generation}",
                {**data, "secret_changed_at": client.secret_changed_at.isoformat()},
            )
        last = client.last_redeemed_at or client.created_at
        if client.is_active and last <= now - timedelta(days=unused_days):
            yield (
                AlertEvent.UNUSED,
                f"unused:{client.client_id}:{last.isoformat()}",
                {
                    **data,
                    "last_redeemed_at": client.last_redeemed_at.isoformat()
                    if client.last_redeemed_at
                    else None,
                    "days": unused_days,
                },
            )


def _audit_events(tenant: Tenant, now: datetime):
    recent = AuditEvent.objects.filter(
        tenant=tenant, action__in=list(AUDITED), created_at__gte=now - timedelta(days=1)
    )
    for event in recent.order_by("created_at"):
        payload = {
            "client_id": event.client_id,
            "name": event.client_name,
            "actor": event.actor,
            "source_ip": event.source_ip,
            "at": event.created_at.isoformat(),
        }
        yield AUDITED[event.action], f"audit:{event.pk}", payload, event.created_at


def check(now: datetime | None = None) -> list[int]:
    """Adds a delivery for every event not yet recorded for each of its
    destinations; the IDs of those added (the caller queues them)."""
    now = now or timezone.now()
    added: list[int] = []
    destinations = AlertDestination.objects.select_related("tenant").order_by("tenant_id")
    by_tenant: dict = {}
    for destination in destinations:
        by_tenant.setdefault(destination.tenant, []).append(destination)
    for tenant, targets in by_tenant.items():
        found = [
            (event, key, payload, None)
            for event, key, payload in _state_events(ApiClient.objects.for_tenant(tenant), now)
        ]
        found += list(_audit_events(tenant, now))
        for event, key, payload, happened_at in found:
            for destination in targets:
                if event not in destination.events:
                    continue
                # A destination added later is not told of what came before it.
                if happened_at is not None and happened_at < destination.created_at:
                    continue
                delivery = _add(destination, event, key, payload, now)
                if delivery is not None:
                    added.append(delivery.pk)
    return added


def _add(destination, event, key, payload, now) -> AlertDelivery | None:
    if AlertDelivery.objects.filter(destination=destination, event_key=key).exists():
        return None
    body = {"type": str(event), "tenant": destination.tenant.name, "data": payload}
    try:
        with transaction.atomic():
            delivery = AlertDelivery.objects.create(
                tenant_id=destination.tenant_id,
                destination=destination,
                event=event,
                event_key=key,
                payload=body,
                next_attempt_at=now,
            )
    except IntegrityError:
        # Found by another worker at the same moment: theirs is the one.
        return None
    delivery.payload = {**body, "id": str(delivery.event_id), "created": now.isoformat()}
    AlertDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.payload)
    return delivery


def test_event(*, destination: AlertDestination, actor) -> AlertDelivery:
    """A test delivery to one destination (the console's "Send test event")."""
    now = timezone.now()
    key = f"test:{random_secrets.token_hex(8)}"
    payload = {"message": "This is a test event.", "requested_by": actor.get_username()}
    return _add(destination, AlertEvent.TEST, key, payload, now)


# -- delivering ---------------------------------------------------------------


def _backoff(attempts: int) -> float:
    return settings.ALERT_RETRY_BASE_SECONDS * 2 ** (attempts - 1)


def due(now: datetime | None = None) -> list[int]:
    """Deliveries whose time has come (new, to retry, or claimed by a worker
    that did not finish)."""
    now = now or timezone.now()
    rows = AlertDelivery.objects.filter(
        status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now
    )
    return list(rows.order_by("next_attempt_at").values_list("pk", flat=True)[:500])


def deliver(delivery_id: int) -> str:
    """Sends one delivery if it is due and nobody else holds it: its status
    afterwards ("delivered", "pending" to retry, "failed", or "skipped")."""
    now = timezone.now()
    claim = settings.ALERT_CLAIM_SECONDS
    # The claim: one worker wins; a worker that dies leaves the row due
    # again once the claim has run out.
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status=AlertDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=claim))
    if not claimed:
        return "skipped"
    delivery = AlertDelivery.objects.select_related("destination", "tenant").get(pk=delivery_id)
    try:
        if delivery.destination.kind == AlertDestination.Kind.WEBHOOK:
            _post(delivery)
        else:
            _email(delivery)
    except Exception as exc:  # noqa: BLE001 (any failure of the receiver is retried)
        return _failed(delivery, exc)
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=AlertDelivery.Status.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return "delivered"


def _failed(delivery: AlertDelivery, exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"[:300]
    if delivery.attempts >= settings.ALERT_MAX_ATTEMPTS:
        status = AlertDelivery.Status.FAILED
        next_at = timezone.now()
    else:
        status = AlertDelivery.Status.PENDING
        next_at = timezone.now() + timedelta(seconds=_backoff(delivery.attempts))
    logger.warning(
        "Alert delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, error
    )
    AlertDelivery.objects.filter(pk=delivery.pk).update(
        status=status, next_attempt_at=next_at, last_error=error
    )
    return str(status)


def _body(delivery: AlertDelivery) -> bytes:
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


def _post(delivery: AlertDelivery) -> None:
    body = _body(delivery)
    secret = _open(delivery.destination)
    response = requests.post(
        delivery.destination.target,
        data=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "apiclients-alerts/1",
            ID_HEADER: str(delivery.event_id),
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        },
        timeout=settings.ALERT_HTTP_TIMEOUT,
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"the receiver answered HTTP {response.status_code}")


def _email(delivery: AlertDelivery) -> None:
    data = delivery.payload.get("data", {})
    subject = SUBJECTS[AlertEvent(delivery.event)].format(
        name=data.get("name", ""), expires=data.get("expires_at", ""), days=data.get("days", "")
    )
    lines = [subject, ""] + [f"{k}: {v}" for k, v in sorted(data.items()) if v is not None]
    lines += ["", f"Tenant: {delivery.payload.get('tenant', '')}", f"Event ID: {delivery.event_id}"]
    message = EmailMessage(
        subject=subject,
        body="\n".join(lines),
        to=[delivery.destination.target],
        # The same Message-ID on every attempt: a mail system can tell a resend.
        headers={
            "Message-ID": f"<{delivery.event_id}@apiclients.alerts>",
            ID_HEADER: str(delivery.event_id),
        },
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    message.send()


def deliveries_for(tenant: Tenant):
    return (
        AlertDelivery.objects.filter(tenant=tenant)
        .select_related("destination")
        .order_by("-created_at", "-id")
    )


def destinations_for(tenant: Tenant):
    return AlertDestination.objects.filter(tenant=tenant).order_by("kind", "target")
