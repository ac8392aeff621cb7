"""Alerts through the real job runner (`manage.py run_jobs`, django-q2 over
a SQLite file), a real SMTP server (aiosmtpd) and a real HTTP receiver that
checks each webhook's signature: an expiring client is told once by email
and once by webhook, a receiver that fails twice gets the event on the third
try, and a worker killed in the middle of a delivery loses nothing and sends
nothing twice."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from apiclients import alerts
from tests.hardening.servers import ROOT, app_env, free_port, manage

SETUP = """
from datetime import timedelta
from django.utils import timezone
from apiclients import alerts
from apiclients.accounts import user_create
from apiclients.models import Role
from apiclients.services import api_client_create
user, _ = user_create(username="alerts-admin", tenant_name="Acme", role=Role.CLOUD_ADMIN,
                      password="a long and unguessable test password")
tenant = user.membership.tenant
api_client_create(tenant=tenant, name="Expiring", grants=["users:read"], actor=user,
                  expires_at=timezone.now() + timedelta(days=3))
events = ["client.expiring", "client.deleted"]
alerts.destination_create(tenant=tenant, kind="email", target="secops@example.com",
                          events=events, actor=user)
_, secret = alerts.destination_create(tenant=tenant, kind="webhook", target="{webhook}",
                                      events=events, actor=user)
print("secret", secret)
"""
DELETE = """
from apiclients.models import ApiClient
from apiclients.services import api_client_create, api_client_delete
from django.contrib.auth.models import User
user = User.objects.get(username="alerts-admin")
client, _ = api_client_create(tenant=user.membership.tenant, name="Doomed",
                              grants=["users:read"], actor=user)
api_client_delete(client=client, actor=user)
"""
CHECK = "from apiclients import tasks; print('queued', tasks.run_checks())"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver: verifies the signature, refuses the first
    `fail_first` attempts of each event, and holds the first request of an
    event of type `hold` until `release` is set (never answering it)."""

    daemon_threads = True

    def __init__(self, port, secret_box):
        super().__init__(("127.0.0.1", port), _Handler)
        self.secret_box = secret_box
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        self.accepted: list[dict] = []
        self.bad_signatures = 0
        self.fail_first = 0
        self.hold = None
        self.holding = threading.Event()
        self.release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802 (http.server's name)
        server: Receiver = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not alerts.verify(server.secret_box[0], self.headers.get("Webhook-Signature", ""), body):
            with server.lock:
                server.bad_signatures += 1
            self.send_response(400)
            self.end_headers()
            return
        event = json.loads(body)
        event_id = self.headers["Webhook-Id"]
        with server.lock:
            server.attempts[event_id] = attempt = server.attempts.get(event_id, 0) + 1
        if event["type"] == server.hold and attempt == 1:
            server.holding.set()
            server.release.wait(30)
            return  # no answer: the sender was killed meanwhile
        if attempt <= server.fail_first:
            self.send_response(503)
            self.end_headers()
            return
        with server.lock:
            server.accepted.append({"id": event_id, "type": event["type"], "attempt": attempt})
        self.send_response(204)
        self.end_headers()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope.content.decode())
        return "250 OK"


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class Jobs:
    """`manage.py run_jobs` in its own process group."""

    def __init__(self, env, log_path):
        self.env, self.log_path, self.process = env, log_path, None

    def start(self):
        log = open(self.log_path, "a")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_jobs"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            # As bin/serve stops it: the main process, which stops the cluster.
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _message_ids(mailbox) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for message in mailbox.messages
        for line in message.splitlines()
        if line.lower().startswith("webhook-id:")
    ]


def test_alerts_are_delivered_once_through_failures_and_a_killed_worker(tmp_path):
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    secret_box = [""]
    receiver = Receiver(free_port(), secret_box)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = app_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
        EMAIL_TIMEOUT=2,
        ALERT_HTTP_TIMEOUT=3,
        ALERT_RETRY_BASE_SECONDS=1,
        JOBS_POLL=0.2,
    )
    jobs = Jobs(env, tmp_path / "jobs.log")
    try:
        manage(env, "migrate", "--noinput", "-v", "0")
        webhook = f"http://127.0.0.1:{receiver.server_port}/hooks"
        out = manage(env, "shell", "-c", SETUP.replace("{webhook}", webhook))
        secret_box[0] = next(
            line.split()[1] for line in out.splitlines() if line.startswith("secret")
        )
        assert secret_box[0].startswith("whsec_")

        # 1. An expiring client: the receiver fails twice, then accepts.
        receiver.fail_first = 2
        jobs.start()
        assert "queued 2" in manage(env, "shell", "-c", CHECK)
        _wait(lambda: receiver.accepted, 150, "the webhook's third attempt")
        _wait(lambda: mailbox.messages, 30, "the email")
        [accepted] = receiver.accepted
        assert accepted["type"] == "client.expiring" and accepted["attempt"] == 3
        assert receiver.bad_signatures == 0
        [message] = mailbox.messages
        assert "Subject: API client Expiring expires on" in message
        assert "To: secops@example.com" in message
        # Found again and again: nothing new is sent.
        assert "queued 0" in manage(env, "shell", "-c", CHECK)
        time.sleep(3)
        assert len(receiver.accepted) == 1 and len(mailbox.messages) == 1

        # 2. A deletion, and the worker killed while the receiver holds it.
        receiver.fail_first = 0
        receiver.hold = "client.deleted"
        manage(env, "shell", "-c", DELETE)
        manage(env, "shell", "-c", CHECK)
        assert receiver.holding.wait(30), "the deletion never reached the receiver"
        jobs.kill()
        receiver.release.set()
        jobs.start()
        _wait(
            lambda: (
                any(a["type"] == "client.deleted" for a in receiver.accepted)
                and len(mailbox.messages) == 2
            ),
            150,
            "the deletion's redelivery after the worker was killed",
        )
        time.sleep(5)
        deleted = [a for a in receiver.accepted if a["type"] == "client.deleted"]
        assert len(deleted) == 1, receiver.accepted
        assert deleted[0]["attempt"] == 2
        ids = _message_ids(mailbox)
        assert len(ids) == len(set(ids)) == 2
        assert receiver.bad_signatures == 0
    finally:
        jobs.stop()
        receiver.shutdown()
        smtp.stop()
