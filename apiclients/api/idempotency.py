"""Idempotency-Key on the requests that mint a secret (create, rotate, reset).

A retry must never mint a second secret, and a secret must never be kept,
even encrypted (the key to decrypt it would sit beside it on the same
servers). So what is kept is only that a key was used, for which request
(a digest of the body) and which client: a retry of the same request gets a
409 that says the secret was shown in the first answer and names the client;
the same key with another request gets a 422. A retry while the first is
still running waits for it on PostgreSQL (the unique index) and then gets
the 409; a first request that failed leaves no trace, so its retry runs.
Keys are forgotten after 24 hours.
"""

import hashlib
import re
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from apiclients.api.callers import Caller
from apiclients.api.problems import Problem
from apiclients.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEPT_FOR = timedelta(hours=24)
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def claim(request: HttpRequest, caller: Caller, operation: str) -> IdempotencyKey | None:
    """Inside the transaction of the request's change: records the key, or
    raises the 409/422 for a key already used. None without the header."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip().strip('"')
    if not _KEY_RE.fullmatch(key):
        raise Problem(400, f"{HEADER} must be 1 to 255 printable ASCII characters, such as a UUID.")
    fingerprint = hashlib.sha256(operation.encode() + b"\n" + request.body).hexdigest()
    IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEPT_FOR).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                tenant_id=caller.tenant.pk,
                caller=caller.label,
                key=key,
                operation=operation[:100],
                fingerprint=fingerprint,
            )
    except IntegrityError:
        pass
    first = IdempotencyKey.objects.filter(
        tenant_id=caller.tenant.pk, caller=caller.label, key=key
    ).first()
    if first is None or first.fingerprint != fingerprint:
        raise Problem(
            422,
            f"This {HEADER} was already used for a different request. "
            "Use a new key for each new request.",
        ) from None
    raise Problem(
        409,
        "This request was already carried out (same Idempotency-Key). Its answer held a "
        "secret, which is shown once and never stored, so it cannot be sent again. "
        "If it was lost, reset the client's secret.",
        clientId=first.client_id,
    ) from None


def record(entry: IdempotencyKey | None, client_id: str) -> None:
    if entry is not None:
        entry.client_id = client_id
        entry.save(update_fields=["client_id"])
