"""Alerts in-process: which events are found, that each is recorded once
per destination, how webhooks are signed, and how failures are retried.
The job runner, SMTP and a real receiver: tests/hardening/test_alert_delivery.py."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from apiclients import alerts
from apiclients.models import AlertDelivery, ApiClient
from apiclients.services import api_client_delete, api_client_reset_secret

ALL = [
    "client.expiring",
    "client.secret_rotation_due",
    "client.unused",
    "client.locked_out",
    "client.secret_reset",
    "client.secret_rotated",
    "client.deleted",
]


@pytest.fixture
def email_to(acme, alice):
    return alerts.destination_create(
        tenant=acme, kind="email", target="secops@example.com", events=ALL, actor=alice
    )[0]


def _events(destination) -> list[str]:
    return sorted(destination.deliveries.values_list("event", flat=True))


def test_a_webhook_signature_verifies_and_a_tampered_or_old_one_does_not():
    body = b'{"type":"client.deleted"}'
    now = int(time.time())
    header = alerts.sign("whsec_x", now, body)
    assert alerts.verify("whsec_x", header, body)
    assert not alerts.verify("whsec_y", header, body)
    assert not alerts.verify("whsec_x", header, body + b" ")
    old = alerts.sign("whsec_x", now - alerts.TOLERANCE - 1, body)
    assert not alerts.verify("whsec_x", old, body)
    assert not alerts.verify("whsec_x", "garbage", body)


def test_a_webhook_secret_is_kept_only_encrypted(acme, alice):
    destination, secret = alerts.destination_create(
        tenant=acme, kind="webhook", target="https://hooks.example/x", events=ALL, actor=alice
    )
    assert secret.startswith("whsec_")
    destination.refresh_from_db()
    assert secret not in destination.encrypted_secret
    assert alerts._open(destination) == secret


def test_state_events_are_found_once_each(make_api_client, email_to, settings):
    now = timezone.now()
    make_api_client("Expiring", expires_at=now + timedelta(days=3))
    make_api_client("Far off", expires_at=now + timedelta(days=300))
    stale, _ = make_api_client("Stale")
    ApiClient.objects.filter(pk=stale.pk).update(
        created_at=now - timedelta(days=200), secret_reset_at=None
    )

    alerts.check(now)
    alerts.check(now)
    assert _events(email_to) == ["client.expiring", "client.secret_rotation_due", "client.unused"]


def test_changes_are_found_from_the_audit_log(make_api_client, email_to, alice):
    reset, _ = make_api_client("Reset me")
    api_client_reset_secret(client=reset, actor=alice)
    doomed, _ = make_api_client("Doomed")
    api_client_delete(client=doomed, actor=alice)

    alerts.check()
    alerts.check()
    assert _events(email_to) == ["client.deleted", "client.secret_reset"]
    deleted = email_to.deliveries.get(event="client.deleted")
    assert deleted.payload["data"]["name"] == "Doomed"
    assert deleted.payload["data"]["actor"] == "alice"


def test_a_destination_hears_only_its_events_and_nothing_from_before_it(
    make_api_client, acme, alice
):
    doomed, _ = make_api_client("Doomed")
    api_client_delete(client=doomed, actor=alice)
    later, _ = alerts.destination_create(
        tenant=acme, kind="email", target="late@example.com", events=ALL, actor=alice
    )
    only_resets, _ = alerts.destination_create(
        tenant=acme,
        kind="email",
        target="r@example.com",
        events=["client.secret_reset"],
        actor=alice,
    )
    alerts.check()
    assert _events(later) == [] and _events(only_resets) == []


def test_another_tenants_events_go_to_its_own_destinations(make_api_client, email_to, dave):
    make_api_client("Globex expiring", actor=dave, expires_at=timezone.now() + timedelta(days=2))
    alerts.check()
    assert _events(email_to) == []


def test_an_email_is_sent_once_and_marked_delivered(make_api_client, email_to, mailoutbox):
    make_api_client("Expiring", expires_at=timezone.now() + timedelta(days=3))
    [delivery_id] = alerts.check()
    assert alerts.deliver(delivery_id) == "delivered"
    assert alerts.deliver(delivery_id) == "skipped"
    [message] = mailoutbox
    assert message.subject.startswith("API client Expiring expires on")
    assert message.to == ["secops@example.com"]
    assert AlertDelivery.objects.get(pk=delivery_id).status == "delivered"


class _Receiver(BaseHTTPRequestHandler):
    statuses: list[int] = []
    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({"headers": dict(self.headers), "body": body})
        self.send_response(type(self).statuses.pop(0) if type(self).statuses else 200)
        self.end_headers()


@pytest.fixture
def receiver():
    _Receiver.statuses, _Receiver.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_a_failed_webhook_is_retried_with_backoff_then_delivered(
    make_api_client, acme, alice, receiver, settings
):
    settings.ALERT_RETRY_BASE_SECONDS = 60
    destination, secret = alerts.destination_create(
        tenant=acme,
        kind="webhook",
        target=f"http://127.0.0.1:{receiver.server_port}/hook",
        events=ALL,
        actor=alice,
    )
    make_api_client("Expiring", expires_at=timezone.now() + timedelta(days=3))
    [delivery_id] = alerts.check()
    _Receiver.statuses = [500]

    assert alerts.deliver(delivery_id) == "pending"
    delivery = AlertDelivery.objects.get(pk=delivery_id)
    assert delivery.last_error == "RuntimeError: the receiver answered HTTP 500"
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=50)
    # Not due yet: nothing is sent.
    assert alerts.deliver(delivery_id) == "skipped"
    assert delivery_id not in alerts.due()

    AlertDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
    assert alerts.deliver(delivery_id) == "delivered"
    first, second = _Receiver.seen
    assert first["headers"]["Webhook-Id"] == second["headers"]["Webhook-Id"]
    assert alerts.verify(secret, second["headers"]["Webhook-Signature"], second["body"])
    assert json.loads(second["body"])["type"] == "client.expiring"


def test_a_delivery_gives_up_after_the_last_attempt(make_api_client, email_to, settings):
    settings.ALERT_MAX_ATTEMPTS = 1
    settings.EMAIL_BACKEND = "tests.apiclients.test_alerts.RefusingBackend"
    make_api_client("Expiring", expires_at=timezone.now() + timedelta(days=3))
    [delivery_id] = alerts.check()
    assert alerts.deliver(delivery_id) == "failed"
    assert "mail server refused" in AlertDelivery.objects.get(pk=delivery_id).last_error


class RefusingBackend:
    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server refused")
