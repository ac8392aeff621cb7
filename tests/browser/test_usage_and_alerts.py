"""The usage log and alerts in Chromium: the drawer's last use, the
per-client log with its filter and CSV, a webhook added, tested and
delivered; an auditor reads both and is offered no change."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from playwright.sync_api import expect

from apiclients import alerts, tasks
from apiclients.models import AlertDelivery

LIST = "/administration/integrations/api-clients/"


def _token(base_url, client_id, secret) -> int:
    return requests.post(
        base_url + "/v1/oauth", auth=(client_id, secret), data="", timeout=10
    ).status_code


def test_an_admin_sees_where_a_client_was_used_and_exports_its_log(
    page, sign_in, live_server, make_api_client
):
    client, secret = make_api_client("Splunk SIEM export")
    assert _token(live_server.url, client.client_id, secret) == 200
    assert _token(live_server.url, client.client_id, secret) == 200
    assert _token(live_server.url, client.client_id, "acsec_wrong") == 401

    sign_in("alice")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="Splunk SIEM export"))
    row.get_by_role("link", name="Details").click()
    drawer = page.locator(".drawer")
    expect(drawer.locator(".usage-last")).to_contain_text(
        re.compile(r"Last used 0\xa0minutes ago from 127\.0\.0\.1 \(python-requests/")
    )
    addresses = drawer.locator("table.usage-addresses")
    expect(addresses.locator("tbody tr")).to_have_count(1)
    expect(addresses.locator("tbody tr td").first).to_have_text("3")
    expect(drawer.locator(".usage-failures")).to_contain_text("Wrong secret from 127.0.0.1")

    drawer.get_by_role("link", name="Open the full usage log").click()
    expect(page.get_by_role("heading", name="Usage log: Splunk SIEM export")).to_be_visible()
    table = page.locator("table.usage-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    page.get_by_label("Outcome").select_option("failed")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Wrong secret")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    body = download.value.path().read_text()
    assert body.splitlines()[0].startswith("minute,last_at,source_ip,user_agent")
    assert ",wrong_secret," in body and ",ok," not in body


class _Receiver(BaseHTTPRequestHandler):
    got: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((self.headers["Webhook-Signature"], body))
        self.send_response(204)
        self.end_headers()


def test_an_admin_adds_a_webhook_and_sends_it_a_test_event(page, sign_in, alice):
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sign_in("alice")
        page.get_by_role("link", name="Alerts").click()
        expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
        page.get_by_role("radio", name="Webhook").check()
        page.get_by_label("Email address or webhook URL").fill(
            f"http://127.0.0.1:{server.server_port}/hook"
        )
        page.get_by_role("button", name="Add destination").click()
        expect(page.get_by_text("This is the only time the secret is displayed")).to_be_visible()
        secret = page.get_by_role("textbox", name="Signing secret").input_value()
        assert secret.startswith("whsec_")

        page.get_by_role("button", name="Send test event").click()
        deliveries = page.locator("table.alert-deliveries")
        expect(deliveries.locator("tbody tr")).to_have_count(1)
        expect(deliveries).to_contain_text("Pending")
        # What the job runner does with it.
        [delivery] = AlertDelivery.objects.all()
        assert tasks.deliver(delivery.pk) == "delivered"
        page.reload()
        expect(deliveries).to_contain_text("Delivered")
        expect(page.get_by_role("textbox", name="Signing secret")).to_have_count(0)

        [(signature, body)] = _Receiver.got
        assert alerts.verify(secret, signature, body)
        assert json.loads(body)["type"] == "test"
    finally:
        server.shutdown()


def test_an_auditor_reads_usage_and_alerts_and_changes_nothing(
    page, sign_in, live_server, make_api_client, bob, acme, alice
):
    client, secret = make_api_client("Splunk SIEM export")
    assert _token(live_server.url, client.client_id, secret) == 200
    alerts.destination_create(
        tenant=acme,
        kind="email",
        target="secops@example.com",
        events=["client.deleted"],
        actor=alice,
    )
    sign_in("bob")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="Splunk SIEM export"))
    row.get_by_role("link", name="Details").click()
    drawer = page.locator(".drawer")
    expect(drawer.locator(".usage-last")).to_contain_text("from 127.0.0.1")
    drawer.get_by_role("link", name="Open the full usage log").click()
    expect(page.locator("table.usage-table tbody tr")).to_have_count(1)

    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_text("secops@example.com")).to_be_visible()
    expect(page.get_by_role("button", name="Send test event")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.get_by_role("button", name="Add destination")).to_have_count(0)


def test_an_admin_sets_a_policy_and_sees_who_breaks_it(page, sign_in, make_api_client):
    make_api_client("Open to all")
    sign_in("alice")
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", name="Policies", exact=True)).to_be_visible()
    page.get_by_label("IP restriction required on new and edited clients").check()
    page.get_by_label("Maximum token lifetime (seconds)").fill("300")
    page.get_by_role("button", name="Save policies").click()
    expect(page.get_by_text("Policies saved")).to_be_visible()
    violations = page.locator("table.policy-violations")
    expect(violations).to_contain_text("Open to all")
    expect(violations).to_contain_text("IP restriction required")
    expect(page.get_by_label("Maximum token lifetime (seconds)")).to_have_value("300")


def test_an_auditor_reads_policies_and_cannot_save(page, sign_in, bob, acme, alice):
    from apiclients.services import policy_update

    policy_update(tenant=acme, actor=alice, require_expiry_days=30)
    sign_in("bob")
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_label("New and edited clients must expire within (days)")).to_have_value(
        "30"
    )
    expect(page.get_by_label("New and edited clients must expire within (days)")).to_be_disabled()
    expect(page.get_by_role("button", name="Save policies")).to_have_count(0)
