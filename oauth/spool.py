"""Audit events of refused token requests that the database could not take
(it was unreachable) wait in a local file, one JSON line each, and are
written once it answers again: by the next audit event or token count that
reaches it, and when a worker exits.

Each event carries its own ID (AuditEvent.spool_id, unique), so an event
written twice (a process that stopped between writing the events and
removing their file) is stored once.
"""

import json
import logging
import os
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apiclients.models import AuditEvent

logger = logging.getLogger("oauth")

_pending = [True]  # files may be left from an earlier process: look once
# What says the database cannot be reached now (anything else is about the event).
_UNREACHABLE = (OperationalError, InterfaceError)


def _dir() -> Path:
    return Path(settings.OAUTH["SPOOL_DIR"])


def audit(
    *, tenant_id, action: str, actor: str, source_ip, client_id: str, client_name: str, details
):
    """Writes the event now, or spools it when the database cannot take it."""
    event = AuditEvent(
        tenant_id=tenant_id,
        created_at=timezone.now(),
        action=action,
        actor=actor[:150],
        source_ip=source_ip,
        client_id=client_id[:64],
        client_name=client_name,
        details=details,
        spool_id=uuid.uuid4(),
    )
    try:
        if _pending[0]:
            _drain()
        event.save()
    except _UNREACHABLE as exc:
        _append(event)
        logger.warning("Audit event kept in %s until the database is back: %s", _dir(), exc)


def _append(event: AuditEvent) -> None:
    line = json.dumps(
        {
            "tenant_id": str(event.tenant_id),
            "created_at": event.created_at.isoformat(),
            "action": event.action,
            "actor": event.actor,
            "source_ip": event.source_ip,
            "client_id": event.client_id,
            "client_name": event.client_name,
            "details": event.details,
            "spool_id": str(event.spool_id),
        }
    )
    directory = _dir()
    directory.mkdir(parents=True, exist_ok=True)
    # One file per process: appends of one writer never interleave.
    with open(directory / f"audit-{os.getpid()}.jsonl", "a") as f:
        f.write(line + "\n")
    _pending[0] = True


def drain() -> int:
    """Writes every spooled event; returns how many. While the database is
    still unavailable the files stay, for the next try."""
    try:
        return _drain()
    except _UNREACHABLE as exc:
        logger.warning("Spooled audit events not written yet: %s", exc)
        return 0


def _drain() -> int:
    directory = _dir()
    files = sorted(directory.glob("audit-*.jsonl")) if directory.is_dir() else []
    written = 0
    for path in files:
        # Claimed by a rename, so two processes never write the same file.
        claimed = path.with_name(f"draining-{os.getpid()}-{path.name}")
        try:
            path.rename(claimed)
        except FileNotFoundError:
            continue
        events = [_event(json.loads(line)) for line in claimed.read_text().splitlines() if line]
        try:
            written += _write(events)
        except _UNREACHABLE:
            claimed.rename(path)
            raise
        claimed.unlink()
    # Claimed by a process that stopped before it finished: take them back.
    for path in directory.glob("draining-*.jsonl") if directory.is_dir() else []:
        if not _alive(int(path.name.split("-")[1])):
            path.rename(path.with_name(path.name.split("-", 2)[2]))
            return written + _drain()
    _pending[0] = False
    if written:
        logger.info("Wrote %s audit events kept while the database was unavailable", written)
    return written


def _write(events: list[AuditEvent]) -> int:
    """Writes the events, once each; one the database refuses for good (its
    tenant was deleted meanwhile) is logged and dropped, so that it cannot
    hold up the others for ever."""
    try:
        AuditEvent.objects.bulk_create(events, ignore_conflicts=True)
        return len(events)
    except IntegrityError:
        pass
    written = 0
    for event in events:
        try:
            with transaction.atomic():
                AuditEvent.objects.bulk_create([event], ignore_conflicts=True)
            written += 1
        except IntegrityError as exc:
            logger.error("A kept audit event cannot be written (%s); dropped: %s", exc, event)
    return written


def _event(data: dict) -> AuditEvent:
    data["created_at"] = parse_datetime(data["created_at"])
    return AuditEvent(**data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending() -> bool:
    return _pending[0]
