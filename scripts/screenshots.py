"""Screenshots of the console as an admin and as an auditor, for looking at.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--width 1400] [--dark]
    .venv/bin/python scripts/screenshots.py --all   # 1400 and 390 px, light and dark

Seeds a throw-away SQLite database with demo clients, serves it with gunicorn
on a free port and drives Debian's Chromium through the pages. PNGs land in
--out (git-ignored).
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "screenshots-only-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed():
    import datetime as dt
    import random

    from django.core.management import call_command
    from django.utils import timezone

    from apiclients import usage
    from apiclients.accounts import user_create
    from apiclients.models import ApiClient, Role
    from apiclients.services import (
        api_client_create,
        api_client_reset_secret,
        api_client_rotate_secret,
        api_client_update,
    )

    call_command("migrate", verbosity=0)
    alice, _ = user_create(
        username="alice", tenant_name="Acme", role=Role.CLOUD_ADMIN, password=PASSWORD
    )
    user_create(username="bob", tenant_name="Acme", role=Role.AUDITOR, password=PASSWORD)
    user_create(username="charlie", tenant_name="Acme", role=Role.NONE, password=PASSWORD)
    tenant = alice.membership.tenant
    demo = [
        (
            "Splunk SIEM export",
            "Nightly pull of alerts and the audit log.",
            ["alerts:read", "audit-log:read"],
            [],
        ),
        (
            "SOAR playbooks",
            "Cortex XSOAR: closes alerts and updates cases.",
            ["alerts:read", "alerts:write", "cases:read", "cases:write"],
            ["203.0.113.0/24", "2001:db8::/48"],
        ),
        (
            "HR offboarding sync",
            "Workday departures to watchlists.",
            ["users:read", "watchlists:read", "watchlists:write"],
            [],
        ),
        ("Backup verification script", "", ["devices:read"], ["198.51.100.7"]),
        ("Legacy reporting (to retire)", "Old Python 2 cron job.", ["users:read"], []),
    ]
    now = timezone.now()
    for i, (name, description, grants, ips) in enumerate(demo):
        client, _ = api_client_create(
            tenant=tenant,
            name=name,
            description=description,
            grants=grants,
            ip_allowlist=ips,
            actor=alice,
            source_ip="192.0.2.10",
        )
        if i < 3:
            ApiClient.objects.filter(pk=client.pk).update(
                last_redeemed_at=now - dt.timedelta(minutes=3 + 300 * i)
            )
    legacy = ApiClient.objects.get(name__startswith="Legacy")
    api_client_update(client=legacy, actor=alice, is_active=False)
    ApiClient.objects.filter(pk=legacy.pk).update(created_at=now - dt.timedelta(days=400))
    soar = ApiClient.objects.get(name="SOAR playbooks")
    api_client_reset_secret(client=soar, actor=alice)
    api_client_rotate_secret(client=soar, grace=dt.timedelta(hours=24), actor=alice)
    from apiclients.client_roles import assignments_for

    api_client_update(
        client=soar,
        actor=alice,
        allow_self_rotation=True,
        role_assignments=assignments_for(
            [("a72dace7-4536-4dbc-947d-015a8eb65f4d", now + dt.timedelta(days=30))]
        ),
    )
    backup = ApiClient.objects.get(name__startswith="Backup")
    ApiClient.objects.filter(pk=backup.pk).update(
        created_at=now - dt.timedelta(days=213), expires_at=now + dt.timedelta(days=6)
    )
    # Failed token requests, aggregated as the token endpoint writes them.
    from apiclients.models import AuditAction
    from apiclients.services import audit_record

    splunk = ApiClient.objects.get(name="Splunk SIEM export")
    for suppressed in (0, 11):
        audit_record(
            tenant=tenant,
            action=AuditAction.TOKEN_FAILED,
            actor=splunk.client_id,
            source_ip="198.51.100.7",
            client=splunk,
            details={"reason": "wrong_secret", "endpoint": "token"}
            | ({"suppressed_failures": suppressed} if suppressed else {}),
        )
    # A lockout in force, as the token endpoint records one.
    audit_record(
        tenant=tenant,
        action=AuditAction.LOCKED_OUT,
        actor=splunk.client_id,
        source_ip="203.0.113.66",
        client=splunk,
        details={
            "failures": 10,
            "window_seconds": 300,
            "until": (now + dt.timedelta(minutes=4)).isoformat(),
            "from_anywhere": False,
        },
    )
    # 30 days of token history for the chart.
    rng = random.Random(7)
    for days_ago in range(30):
        for _ in range(rng.randint(0, 40) if days_ago % 7 not in (5, 6) else rng.randint(0, 3)):
            usage.token_counted(soar.pk, now - dt.timedelta(days=days_ago), last_written=now)
        usage.flush()
    for n in range(30):
        api_client_create(
            tenant=tenant, name=f"Integration {n:02d}", grants=["alerts:read"], actor=alice
        )
    seed_usage_and_alerts(tenant, alice, soar, now)


def seed_usage_and_alerts(tenant, alice, soar, now):
    import datetime as dt

    from apiclients import alerts
    from apiclients.models import AlertDelivery, ApiClient, UsageLogEntry
    from apiclients.services import api_client_reset_secret

    callers = [
        ("203.0.113.7", "python-requests/2.32.3", "ok", 40),
        ("203.0.113.7", "python-requests/2.32.3", "ok", 12),
        ("203.0.113.8", "Go-http-client/2.0", "ok", 5),
        ("198.51.100.23", "curl/8.5.0", "wrong_secret", 3),
        ("198.51.100.23", "curl/8.5.0", "ip_not_allowed", 1),
    ]
    for i, (ip, agent, outcome, count) in enumerate(callers):
        minute = (now - dt.timedelta(minutes=3 + 47 * i)).replace(second=0, microsecond=0)
        UsageLogEntry.objects.create(
            client=soar,
            minute=minute,
            key=f"demo{i}",
            source_ip=ip,
            user_agent=agent,
            endpoint="token",
            outcome=outcome,
            scopes="alerts:read alerts:write" if outcome == "ok" else "",
            count=count,
            last_at=minute + dt.timedelta(seconds=20),
        )
    email, _ = alerts.destination_create(
        tenant=tenant,
        kind="email",
        target="secops@example.com",
        events=["client.expiring", "client.deleted", "client.locked_out"],
        actor=alice,
    )
    hook, _ = alerts.destination_create(
        tenant=tenant,
        kind="webhook",
        target="https://hooks.example.com/api-clients",
        events=["client.secret_reset", "client.secret_rotated", "client.deleted"],
        actor=alice,
    )
    from apiclients.services import policy_update

    policy_update(
        tenant=tenant,
        actor=alice,
        max_secret_age_days=180,
        secret_age_grace_days=30,
        max_token_lifetime=600,
    )
    hr = ApiClient.objects.get(name="HR offboarding sync")
    api_client_reset_secret(client=hr, actor=alice, source_ip="192.0.2.10")
    alerts.check(now)
    for i, delivery in enumerate(AlertDelivery.objects.order_by("pk")):
        if i % 3 == 0:
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                status="delivered", attempts=1, delivered_at=now
            )
        elif i % 3 == 1:
            AlertDelivery.objects.filter(pk=delivery.pk).update(
                attempts=2,
                next_attempt_at=now + dt.timedelta(seconds=60),
                last_error="RuntimeError: the receiver answered HTTP 503",
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "screenshots"))
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    ap.add_argument("--all", action="store_true", help="1400 and 390 px, light and dark")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = Path(tempfile.mkdtemp()) / "shots.sqlite3"
    os.environ.update(DATABASE_URL=f"sqlite:///{db}", BASE_URL=base)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    seed()
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        if args.all:
            runs = [(w, d) for w in (1400, 390) for d in (False, True)]
        else:
            runs = [(args.width, args.dark)]
        for width, dark in runs:
            shoot(base, out / f"{width}-{'dark' if dark else 'light'}", width, dark)
    finally:
        server.terminate()
        server.wait()
    print(f"Screenshots in {out}")


def shoot(base: str, out: Path, width: int, dark: bool = False):
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    height = 900 if width >= 700 else 844
    lst = "/administration/integrations/api-clients/"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        for user in ("alice", "bob"):
            ctx = browser.new_context(
                base_url=base,
                viewport={"width": width, "height": height},
                color_scheme="dark" if dark else "light",
            )
            page = ctx.new_page()
            page.goto("/accounts/login/")
            if user == "alice":
                page.screenshot(path=out / "login.png")
            page.get_by_label("Username").fill(user)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**{lst}")
            page.screenshot(path=out / f"{user}-list.png")
            page.goto(lst + "?q=SOAR")
            page.get_by_role("link", name="SOAR playbooks", exact=True).click()
            page.locator(".drawer").wait_for()
            page.wait_for_timeout(500)  # let the slide-in finish
            page.screenshot(path=out / f"{user}-drawer.png")
            page.set_viewport_size({"width": width, "height": 1500})
            page.screenshot(path=out / f"{user}-drawer-tall.png")
            page.set_viewport_size({"width": width, "height": height})
            page.goto(lst + "?q=Splunk")
            page.get_by_role("link", name="Splunk SIEM export", exact=True).click()
            page.locator(".drawer").wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=out / f"{user}-drawer-lockout.png")
            page.goto("/administration/audit-log/")
            page.screenshot(path=out / f"{user}-audit-log.png")
            page.screenshot(path=out / f"{user}-audit-log-full.png", full_page=True)
            page.goto("/administration/audit-log/?action=token.failed")
            page.screenshot(path=out / f"{user}-audit-log-failures.png")
            page.goto(lst + "?q=SOAR")
            page.get_by_role("link", name="SOAR playbooks").click()
            page.get_by_role("link", name="Open the full usage log").click()
            page.locator("table.usage-table").wait_for()
            page.screenshot(path=out / f"{user}-usage-log.png")
            page.goto("/administration/alerts/")
            page.screenshot(path=out / f"{user}-alerts.png", full_page=True)
            page.goto("/administration/policies/")
            page.screenshot(path=out / f"{user}-policies.png", full_page=True)
            if user == "alice":
                page.goto(lst + "?q=SOAR")
                row = page.locator("tbody tr").first
                row.locator("summary").click()
                page.screenshot(path=out / "alice-actions-menu.png")
                row.get_by_role("link", name="Rotate API secret").click()
                page.locator("dialog[open]").wait_for()
                page.wait_for_timeout(400)  # let the dialog fade in
                page.screenshot(path=out / "alice-rotate.png")
                page.keyboard.press("Escape")
                row.locator("summary").click()
                row.get_by_role("link", name="Delete API client").click()
                dialog = page.locator("dialog[open]")
                dialog.wait_for()
                dialog.get_by_role("button", name="Delete").click()
                dialog.locator(".errorlist").first.wait_for()
                page.screenshot(path=out / "alice-delete-sudo.png")
                page.keyboard.press("Escape")
                for action, name in (("Edit API client", "edit"), ("Reset API secret", "reset")):
                    row.locator("summary").click()
                    row.get_by_role("link", name=action).click()
                    page.locator("dialog[open]").wait_for()
                    page.wait_for_timeout(400)
                    page.screenshot(path=out / f"alice-{name}.png")
                    page.keyboard.press("Escape")
                page.goto(lst + "no-such-client/")
                page.screenshot(path=out / "alice-404.png")
                page.goto(lst + "?show=old-secret")
                page.screenshot(path=out / "alice-filter-old-secret.png")
                page.goto(lst)
                page.get_by_role("link", name="Create new API client").first.click()
                dialog = page.locator("dialog[open]")
                dialog.get_by_label("Client name").fill("Splunk SIEM export")
                dialog.get_by_role("button", name="Analyst").click()
                page.wait_for_timeout(300)  # let the buttons change colour
                page.screenshot(path=out / "alice-create.png")
                dialog.locator(".matrix-wrap").screenshot(path=out / "alice-create-matrix.png")
                dialog.get_by_role("button", name="Save").click()
                dialog.locator(".field__error, .errorlist").first.wait_for()
                page.wait_for_timeout(300)  # let the preset buttons change colour
                page.screenshot(path=out / "alice-create-error.png")
                dialog.get_by_label("Client name").fill(f"Splunk SIEM export (EU, {out.name})")
                dialog.get_by_role("button", name="Save").click()
                dialog.get_by_text("This is the only time").wait_for()
                page.screenshot(path=out / "alice-reveal.png")
                page.goto("/administration/alerts/")
                page.get_by_role("radio", name="Webhook").check()
                page.get_by_label("Email address or webhook URL").fill(
                    "https://siem.example.com/in"
                )
                page.get_by_role("button", name="Add destination").click()
                page.screenshot(path=out / "alice-alerts-webhook-secret.png")
                page.goto("/account/tokens/")
                page.get_by_label("Token name").fill("Terraform")
                page.get_by_role("button", name="Create token").click()
                page.get_by_text("the only time it is displayed").wait_for()
                page.screenshot(path=out / "alice-access-tokens.png", full_page=True)
                page.goto("/v1/docs")
                page.locator(".opblock").first.wait_for()
                page.screenshot(path=out / "alice-swagger-ui.png")
            else:
                page.goto(lst + "new/")
                page.screenshot(path=out / "bob-403.png")
                ctx.close()
                ctx = browser.new_context(
                    base_url=base,
                    viewport={"width": width, "height": height},
                    color_scheme="dark" if dark else "light",
                )
                page = ctx.new_page()
                page.goto("/accounts/login/")
                page.get_by_label("Username").fill("charlie")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_load_state()
                page.screenshot(path=out / "charlie-403.png")
            ctx.close()
        browser.close()


if __name__ == "__main__":
    main()
