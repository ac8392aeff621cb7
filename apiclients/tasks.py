"""The jobs the runner (django-q2, over the app's own database) does:

- `run_checks`, every minute: finds new alert events (apiclients.alerts)
  and queues each due delivery, including retries whose time has come and
  deliveries a dead worker left claimed;
- `deliver`, one delivery; a failure is retried at its backoff (a one-off
  schedule), and by the next `run_checks` whatever happens;
- `prune_usage_log`, daily.

`manage.py run_jobs` (which bin/serve starts beside gunicorn) makes sure
the periodic schedules exist, then runs django-q2's cluster.
"""

import logging

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from apiclients import alerts, usagelog

logger = logging.getLogger(__name__)

PERIODIC = {
    "alerts: find events and queue deliveries": ("apiclients.tasks.run_checks", 1),
    "usage log: prune": ("apiclients.tasks.prune_usage_log", 24 * 60),
}


def queue(delivery_ids) -> None:
    for delivery_id in delivery_ids:
        async_task("apiclients.tasks.deliver", delivery_id, group="alerts")


def run_checks() -> int:
    """Finds events and queues what is due; the number queued."""
    alerts.check()
    ids = alerts.due()
    queue(ids)
    return len(ids)


def deliver(delivery_id: int) -> str:
    status = alerts.deliver(delivery_id)
    if status == "pending":
        retry_at = alerts.AlertDelivery.objects.get(pk=delivery_id).next_attempt_at
        schedule(
            "apiclients.tasks.deliver",
            delivery_id,
            name=f"alerts: retry delivery {delivery_id} at {retry_at.isoformat()}",
            schedule_type=Schedule.ONCE,
            next_run=retry_at,
        )
    return status


def prune_usage_log() -> int:
    return usagelog.prune(timezone.now())


def queue_on_commit(delivery_ids) -> None:
    """Queues deliveries once the transaction that made them commits."""
    transaction.on_commit(lambda: queue(list(delivery_ids)))


def ensure_schedules() -> None:
    for name, (func, minutes) in PERIODIC.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
