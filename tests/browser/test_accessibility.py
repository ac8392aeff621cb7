"""axe-core on every page, dialog and drawer state, as an admin, an auditor,
a member with no role and a visitor, on a desktop (1400 px) and a phone
(390 px), in light and dark mode. Any violation, of any impact, fails.

axe-core comes from PyPI (axe-playwright-python ships axe.min.js); it is
evaluated through the DevTools protocol, which the page's CSP does not govern.
"""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from apiclients.models import ApiClient, AuditAction
from apiclients.services import api_client_rotate_secret, audit_record
from tests.conftest import PASSWORD

LIST = "/administration/integrations/api-clients/"
AUDIT = "/administration/audit-log/"
VIEWPORTS = {"desktop": (1400, 900), "phone": (390, 844)}

_axe = Axe()


@pytest.fixture
def clients(make_api_client, acme, alice):
    splunk, _ = make_api_client(
        "Splunk SIEM export",
        description="Nightly pull of alerts",
        grants=["alerts:read", "alerts:write", "audit-log:read"],
        ip_allowlist=["203.0.113.0/24"],
    )
    hr, _ = make_api_client("HR offboarding sync", grants=["users:read"])
    # A rotation in its overlap: badges, the two-secrets notice, the revoke dialog.
    api_client_rotate_secret(client=hr, grace=timedelta(hours=24), actor=alice)
    ApiClient.objects.filter(pk=splunk.pk).update(
        last_redeemed_at=timezone.now() - timedelta(minutes=3)
    )
    audit_record(
        tenant=acme,
        action=AuditAction.TOKEN_FAILED,
        actor=splunk.client_id,
        source_ip="198.51.100.7",
        client=splunk,
        details={"reason": "wrong_secret", "endpoint": "token", "suppressed_failures": 11},
    )
    return splunk


class Checker:
    def __init__(self, page, label):
        self.page = page
        self.label = label
        self.found: list[str] = []

    def __call__(self, state: str):
        # Let dialogs and the drawer finish sliding in: axe reads colours as drawn.
        self.page.wait_for_timeout(250)
        results = _axe.run(self.page)
        for violation in results.response["violations"]:
            targets = "; ".join(", ".join(node["target"]) for node in violation["nodes"][:4])
            self.found.append(
                f"[{self.label} {state}] {violation['id']} ({violation['impact']}): "
                f"{violation['help']} at {targets}"
            )

    def assert_clean(self):
        assert not self.found, "axe-core violations:\n" + "\n".join(self.found)


def _context(browser, live_server, viewport, scheme):
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": height},
        color_scheme=scheme,
        has_touch=viewport == "phone",
    )
    context.set_default_timeout(10_000)
    return context


def _sign_in(page, username):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{LIST}")


def _open_dialog(page, url):
    page.goto(LIST)
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: 'body', swap: 'beforeend'})",
        url,
    )
    dialog = page.locator("dialog[open]")
    expect(dialog).to_have_count(1)
    return dialog


MATRIX = [
    pytest.param(viewport, scheme, id=f"{viewport}-{scheme}")
    for viewport in VIEWPORTS
    for scheme in ("light", "dark")
]


@pytest.mark.parametrize("viewport,scheme", MATRIX)
def test_admin_pages_dialogs_and_drawer_have_no_axe_violations(
    browser, live_server, settings, alice, clients, viewport, scheme
):
    settings.BASE_URL = live_server.url
    context = _context(browser, live_server, viewport, scheme)
    page = context.new_page()
    check = Checker(page, f"admin {viewport} {scheme}")
    page.goto("/accounts/login/")
    check("sign-in")
    _sign_in(page, "alice")
    check("list")

    page.locator("tbody tr").first.locator("summary").click()
    check("actions menu")

    page.goto(f"{LIST}{clients.client_id}/")
    expect(page.locator(".drawer")).to_be_visible()
    check("drawer")

    dialog = _open_dialog(page, f"{LIST}new/")
    check("create dialog")
    dialog.get_by_label("Client name").fill("Splunk SIEM export")
    dialog.get_by_label("Restrict access by IP address").check()
    dialog.get_by_label("Allowed IP addresses").fill("not-an-ip")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator(".errorlist").first).to_be_visible()
    check("create dialog with errors")
    dialog.get_by_label("Client name").fill("Splunk SIEM export (EU)")
    dialog.get_by_label("Allow all IP addresses").check()
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_text("This is the only time")).to_be_visible()
    check("one-time reveal")

    _open_dialog(page, f"{LIST}{clients.client_id}/edit/")
    check("edit dialog")
    for action in ("reset-secret", "rotate-secret", "delete"):
        _open_dialog(page, f"{LIST}{clients.client_id}/{action}/")
        check(f"{action} dialog")
    # The client redeemed minutes ago: its name to type, and the password.
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("button", name="Delete").click()
    expect(
        dialog.get_by_text("That is not your password").or_(
            dialog.get_by_text("Enter your password to confirm")
        )
    ).to_be_visible()
    check("delete dialog with errors")

    hr = ApiClient.objects.get(name="HR offboarding sync")
    page.goto(f"{LIST}{hr.client_id}/")
    expect(page.locator(".drawer").get_by_text("Two secrets are live.")).to_be_visible()
    check("drawer during a rotation")
    _open_dialog(page, f"{LIST}{hr.client_id}/revoke-old-secret/")
    check("revoke old secret dialog")

    page.goto(f"{LIST}{clients.client_id}/delete/")
    check("delete page")
    page.goto(f"{LIST}new/")
    check("create page")
    page.goto(AUDIT)
    check("audit log")
    page.goto(f"{AUDIT}?client=nothing-matches")
    check("audit log, nothing matches")
    page.goto(f"{LIST}?q=nothing-matches")
    check("empty search")
    page.goto(f"{LIST}no-such-client/")
    check("404 page")
    context.close()
    check.assert_clean()


@pytest.mark.parametrize("viewport,scheme", MATRIX)
def test_auditor_and_no_role_pages_have_no_axe_violations(
    browser, live_server, bob, charlie, clients, viewport, scheme
):
    context = _context(browser, live_server, viewport, scheme)
    page = context.new_page()
    check = Checker(page, f"auditor {viewport} {scheme}")
    _sign_in(page, "bob")
    check("list")
    page.goto(f"{LIST}{clients.client_id}/")
    expect(page.locator(".drawer")).to_be_visible()
    check("drawer")
    page.goto(AUDIT)
    check("audit log")
    page.goto(f"{LIST}new/")
    check("403 page (auditor)")
    context.close()

    context = _context(browser, live_server, viewport, scheme)
    page = context.new_page()
    check.page, check.label = page, f"no role {viewport} {scheme}"
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("You need the Customer Cloud Admin role")).to_be_visible()
    check("403 page (no role)")
    context.close()
    check.assert_clean()
