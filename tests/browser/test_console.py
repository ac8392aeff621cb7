"""The console's real flows in Chromium, as an admin and as an auditor."""

import re
from datetime import timedelta

import requests
from django.utils import timezone
from playwright.sync_api import expect

from apiclients.models import ApiClient
from tests.conftest import PASSWORD

LIST = "/administration/integrations/api-clients/"


def _row(page, name):
    return page.locator("tbody tr", has=page.get_by_role("link", name=name, exact=True))


def _open_action(page, name, action):
    row = _row(page, name)
    row.locator("summary").click()
    row.get_by_role("link", name=action).click()


def _reveal_values(dialog):
    return (
        dialog.get_by_label("Client ID").input_value(),
        dialog.get_by_label("Secret", exact=True).input_value(),
    )


def test_admin_creates_copies_edits_resets_and_deletes_a_client(page, sign_in, alice):
    sign_in("alice")
    # A marker that a full page load would wipe: the flow must stay in place.
    page.evaluate("window.__stayedOnPage = true")

    page.get_by_role("link", name="Create new API client").first.click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Create new API client")).to_be_visible()
    dialog.get_by_label("Client name").fill("Splunk SIEM export")
    dialog.get_by_label("Description").fill("Nightly pull of alerts")
    dialog.get_by_label("Alerts read").check()
    dialog.get_by_label("Users read").check()
    dialog.get_by_role("button", name="Save").click()

    # The one-time reveal.
    expect(dialog.get_by_text("This is the only time the secret is displayed")).to_be_visible()
    client_id, secret = _reveal_values(dialog)
    assert client_id.startswith("key-") and secret.startswith("acsec_")
    assert dialog.get_by_label("Base URL").input_value() == page.evaluate("location.origin")
    saved = ApiClient.objects.get(client_id=client_id)
    assert saved.check_secret(secret)
    assert saved.grants == ["alerts:read", "users:read"]

    copy_secret = dialog.get_by_title("Copy secret")
    copy_secret.click()
    expect(copy_secret).to_have_text(re.compile("Copied"))
    assert page.evaluate("navigator.clipboard.readText()") == secret

    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(_row(page, "Splunk SIEM export")).to_be_visible()
    assert page.evaluate("window.__stayedOnPage") is True
    # Once closed, the secret is nowhere on the page.
    assert secret not in page.content()

    # Details drawer, with its own URL.
    _row(page, "Splunk SIEM export").get_by_role("link", name="Details").click()
    drawer = page.locator(".drawer")
    expect(drawer.get_by_text(client_id)).to_be_visible()
    expect(drawer.get_by_text("Nightly pull of alerts")).to_be_visible()
    expect(drawer.get_by_role("rowheader", name="Alerts")).to_be_visible()
    assert page.url.endswith(f"{LIST}{client_id}/")

    # Edit the name from the drawer.
    drawer.get_by_role("link", name="Edit API client").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Client name").fill("Splunk SIEM export (EU)")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(_row(page, "Splunk SIEM export (EU)")).to_be_visible()
    saved.refresh_from_db()
    assert saved.name == "Splunk SIEM export (EU)"

    # Reset the secret: same client ID, a new secret, the old one dead.
    _open_action(page, "Splunk SIEM export (EU)", "Reset API secret")
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_text("lose authentication")).to_be_visible()
    # Sudo mode: the password again, inside the same dialog.
    password = dialog.get_by_label("Confirm with your password")
    expect(password).to_be_focused()
    password.fill("not my password")
    dialog.get_by_role("button", name="Reset secret").click()
    expect(dialog.get_by_text("That is not your password")).to_be_visible()
    expect(password).to_be_focused()
    saved.refresh_from_db()
    assert saved.check_secret(secret)
    password.fill(PASSWORD)
    dialog.get_by_role("button", name="Reset secret").click()
    expect(dialog.get_by_text("This is the only time")).to_be_visible()
    new_client_id, new_secret = _reveal_values(dialog)
    assert new_client_id == client_id
    assert new_secret != secret
    saved.refresh_from_db()
    assert saved.check_secret(new_secret) and not saved.check_secret(secret)
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("dialog")).to_have_count(0)

    # Delete: within the sudo window, no second password prompt.
    _open_action(page, "Splunk SIEM export (EU)", "Delete API client")
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Confirm with your password")).to_have_count(0)
    dialog.get_by_role("button", name="Delete").click()
    expect(_row(page, "Splunk SIEM export (EU)")).to_have_count(0)
    assert not ApiClient.objects.filter(client_id=client_id).exists()
    assert page.evaluate("window.__stayedOnPage") is True


def test_a_form_error_keeps_what_the_admin_typed(page, sign_in, make_api_client):
    make_api_client("SOAR playbooks")
    sign_in("alice")
    page.get_by_role("link", name="Create new API client").first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Client name").fill("soar PLAYBOOKS")
    dialog.get_by_label("Description").fill("Cortex XSOAR")
    dialog.get_by_label("Cases write").check()
    dialog.get_by_label("Restrict access by IP address").check()
    dialog.get_by_label("Allowed IP addresses").fill("203.0.113.7\nnot-an-ip")
    dialog.get_by_role("button", name="Save").click()

    expect(dialog.get_by_text(re.compile("already", re.I))).to_be_visible()
    expect(dialog.get_by_text(re.compile("not-an-ip.* is not a valid IP"))).to_be_visible()
    expect(dialog.get_by_label("Allowed IP addresses")).to_have_value("203.0.113.7\nnot-an-ip")
    expect(dialog.get_by_label("Client name")).to_have_value("soar PLAYBOOKS")
    expect(dialog.get_by_label("Description")).to_have_value("Cortex XSOAR")
    expect(dialog.get_by_label("Cases write")).to_be_checked()
    assert ApiClient.objects.count() == 1


def test_the_drawer_opens_from_its_own_url(page, sign_in, make_api_client):
    client, _ = make_api_client("Backup verification script", description="Checks backups")
    sign_in("alice")
    page.goto(f"{LIST}{client.client_id}/")
    drawer = page.locator(".drawer")
    expect(drawer.get_by_text("Checks backups")).to_be_visible()
    expect(drawer.get_by_text(client.client_id)).to_be_visible()
    expect(_row(page, "Backup verification script")).to_be_visible()


def test_auditor_sees_everything_but_no_mutating_controls(page, sign_in, bob, make_api_client):
    client, _ = make_api_client("HR offboarding sync")
    sign_in("bob")
    row = _row(page, "HR offboarding sync")
    expect(row).to_be_visible()
    expect(page.get_by_text("Create new API client")).to_have_count(0)
    expect(row.locator("summary")).to_have_count(0)

    row.get_by_role("link", name="Details").click()
    drawer = page.locator(".drawer")
    expect(drawer.get_by_text(client.client_id)).to_be_visible()
    for action in ("Edit API client", "Reset API secret", "Delete API client"):
        expect(page.get_by_text(action)).to_have_count(0)

    # Typing the URL of a dialog gets the role page, not the dialog.
    response = page.goto(f"{LIST}{client.client_id}/reset-secret/")
    assert response.status == 403
    expect(page.get_by_text("You need the Customer Cloud Admin role")).to_be_visible()


def test_the_actions_menu_of_a_lone_client_is_shown_whole(page, sign_in, make_api_client):
    make_api_client("Lonely integration")
    sign_in("alice")
    page.goto(LIST)
    _row(page, "Lonely integration").locator("summary").click()
    item = page.get_by_role("link", name="Delete API client")
    expect(item).to_be_visible()
    # What is drawn at the item's centre is the item: a menu clipped by the
    # table's card (which scrolls sideways) would show only after a scroll
    # inside the card, which no admin thinks of.
    box = item.bounding_box()
    drawn = page.evaluate(
        "([x, y]) => (document.elementFromPoint(x, y) || {}).textContent",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert (drawn or "").strip() == "Delete API client"
    item.click()
    expect(page.locator("dialog[open]").get_by_role("button", name="Delete")).to_be_visible()


def test_ticking_write_alone_grants_read_too_everywhere(page, sign_in, live_server, alice):
    sign_in("alice")
    page.get_by_role("link", name="Create new API client").first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Client name").fill("Alert closer")
    dialog.get_by_label("Alerts write").check()
    # Write implies read: the box says so before saving...
    expect(dialog.get_by_label("Alerts read")).to_be_checked()
    # ...and the server saves both even when the box is cleared behind its back.
    dialog.get_by_label("Alerts read").evaluate("box => { box.checked = false; }")
    dialog.get_by_role("button", name="Save").click()
    client_id, secret = _reveal_values(dialog)
    dialog.get_by_role("button", name="Done").click()

    assert ApiClient.objects.get(client_id=client_id).grants == ["alerts:read", "alerts:write"]
    _row(page, "Alert closer").get_by_role("link", name="Alert closer", exact=True).click()
    drawer = page.locator(".drawer")
    alerts = drawer.get_by_role("row", name=re.compile("^Alerts"))
    expect(alerts.get_by_text("Read", exact=True)).to_be_attached()
    expect(alerts.get_by_text("Write", exact=True)).to_be_attached()
    expect(drawer.get_by_text("No API permissions")).to_have_count(0)

    token = requests.post(
        live_server.url + "/v1/oauth", auth=(client_id, secret), data="", timeout=10
    ).json()
    assert token["scope"] == "alerts:read alerts:write"


def test_a_write_only_grant_saved_before_shows_as_read_and_write(page, sign_in, make_api_client):
    client, _ = make_api_client("Old write-only client")
    ApiClient.objects.filter(pk=client.pk).update(grants=["cases:write"])
    sign_in("alice")
    page.goto(f"{LIST}{client.client_id}/")
    drawer = page.locator(".drawer")
    expect(drawer.get_by_role("rowheader", name="Cases")).to_be_visible()
    expect(drawer.get_by_text("No API permissions")).to_have_count(0)
    drawer.get_by_role("link", name="Edit API client").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Cases read")).to_be_checked()
    expect(dialog.get_by_label("Cases write")).to_be_checked()


def test_saving_from_a_drawer_opened_by_its_url_keeps_one_list_and_one_drawer(
    page, sign_in, make_api_client
):
    client, _ = make_api_client("Backup verification script")
    sign_in("alice")
    page.goto(f"{LIST}{client.client_id}/")
    page.locator(".drawer").get_by_role("link", name="Edit API client").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Description").fill("Checks last night's backups")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("dialog")).to_have_count(0)
    drawer = page.locator(".drawer")
    expect(drawer.get_by_text("Checks last night's backups")).to_be_visible()
    expect(page.locator("section#api-client-results")).to_have_count(1)
    expect(page.locator("[data-drawer]")).to_have_count(1)
    expect(_row(page, "Backup verification script")).to_be_visible()


def test_an_error_below_the_fold_gets_the_focus(page, sign_in, alice):
    page.set_viewport_size({"width": 1400, "height": 700})
    sign_in("alice")
    page.get_by_role("link", name="Create new API client").first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Client name").fill("Firewall sync")
    dialog.get_by_label("Restrict access by IP address").check()
    dialog.get_by_label("Allowed IP addresses").fill("10.0.0.0/33")
    dialog.get_by_label("Client name").focus()
    dialog.get_by_role("button", name="Save").click()
    field = dialog.get_by_label("Allowed IP addresses")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport()


def test_escape_closes_the_drawer_and_focus_returns_to_its_row(page, sign_in, make_api_client):
    make_api_client("HR offboarding sync")
    make_api_client("SOAR playbooks")
    sign_in("alice")
    link = _row(page, "SOAR playbooks").get_by_role("link", name="SOAR playbooks", exact=True)
    link.click()
    drawer = page.locator(".drawer")
    expect(drawer).to_be_visible()
    expect(drawer.get_by_role("heading", name="SOAR playbooks")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".drawer")).to_have_count(0)
    expect(
        _row(page, "SOAR playbooks").get_by_role("link", name="SOAR playbooks", exact=True)
    ).to_be_focused()


def test_escape_on_a_drawer_opened_by_its_url_also_returns_focus(page, sign_in, make_api_client):
    client, _ = make_api_client("SOAR playbooks")
    sign_in("alice")
    page.goto(f"{LIST}{client.client_id}/")
    expect(page.locator(".drawer")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".drawer")).to_have_count(0)
    expect(
        _row(page, "SOAR playbooks").get_by_role("link", name="SOAR playbooks", exact=True)
    ).to_be_focused()


def test_deleting_a_client_used_a_minute_ago_takes_its_name(page, sign_in, make_api_client):
    client, _ = make_api_client("SOAR playbooks")
    ApiClient.objects.filter(pk=client.pk).update(
        last_redeemed_at=timezone.now() - timedelta(minutes=1)
    )
    sign_in("alice")
    _open_action(page, "SOAR playbooks", "Delete API client")
    dialog = page.locator("dialog[open]")
    expect(
        dialog.get_by_text(
            "It was used in the last 24 hours: an integration probably depends on it."
        )
    ).to_be_visible()
    expect(dialog.get_by_text(re.compile("Last redeemed .*(minute ago|just now)"))).to_be_visible()
    name = dialog.get_by_label("Type SOAR playbooks to confirm")
    expect(name).to_be_focused()
    name.fill("SOAR")
    dialog.get_by_label("Confirm with your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog.get_by_text("Type “SOAR playbooks” exactly as shown")).to_be_visible()
    expect(name).to_be_focused()
    assert ApiClient.objects.filter(pk=client.pk).exists()
    name.fill("SOAR playbooks")
    # The password was right the first time: sudo mode is on, no second prompt.
    expect(dialog.get_by_label("Confirm with your password")).to_have_count(0)
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(_row(page, "SOAR playbooks")).to_have_count(0)
    assert not ApiClient.objects.filter(pk=client.pk).exists()


def test_presets_fill_the_matrix_which_never_scrolls_inside_the_dialog(page, sign_in, alice):
    sign_in("alice")
    page.get_by_role("link", name="Create new API client").first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Client name").fill("Read-only SIEM")
    expect(dialog.get_by_text("Alerts raised by rules: their state and notes")).to_be_visible()
    matrix = dialog.locator(".matrix-wrap")
    assert matrix.evaluate("el => el.scrollHeight <= el.clientHeight + 1")

    dialog.get_by_role("button", name="Read everything").click()
    expect(dialog.get_by_role("button", name="Read everything")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(dialog.get_by_label("Users read")).to_be_checked()
    expect(dialog.get_by_label("Users write")).not_to_be_checked()
    dialog.get_by_role("button", name="Analyst").click()
    expect(dialog.get_by_label("Cases write")).to_be_checked()
    expect(dialog.get_by_label("Users write")).not_to_be_checked()
    # An error elsewhere keeps the boxes, and the preset they match.
    dialog.get_by_label("Client name").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_text("Enter a name for the API client.")).to_be_visible()
    expect(dialog.get_by_role("button", name="Analyst")).to_have_attribute("aria-pressed", "true")
    expect(dialog.get_by_label("Cases write")).to_be_checked()
    dialog.get_by_label("Client name").fill("Read-only SIEM")
    dialog.get_by_role("button", name="Save").click()
    client_id = dialog.get_by_label("Client ID").input_value()
    grants = ApiClient.objects.get(client_id=client_id).grants
    assert "alerts:write" in grants and "cases:write" in grants and "users:write" not in grants
    assert {"users:read", "file-events:read", "audit-log:read"} <= set(grants)


def test_closing_a_dialog_gives_focus_back_to_the_row_it_came_from(page, sign_in, make_api_client):
    make_api_client("HR offboarding sync")
    make_api_client("SOAR playbooks")
    sign_in("alice")
    _open_action(page, "SOAR playbooks", "Delete API client")
    expect(page.locator("dialog[open]")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("dialog")).to_have_count(0)
    expect(_row(page, "SOAR playbooks").locator("summary")).to_be_focused()

    # After a save the list is redrawn: focus lands on the new row.
    _open_action(page, "SOAR playbooks", "Edit API client")
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Description").fill("Cortex XSOAR")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(_row(page, "SOAR playbooks").locator("summary")).to_be_focused()


def test_on_a_phone_the_list_fits_and_sorts_without_its_date_columns(
    page, sign_in, make_api_client
):
    older, _ = make_api_client("Backup verification script")
    make_api_client("Archive sync")
    ApiClient.objects.filter(pk=older.pk).update(
        last_redeemed_at=timezone.now() - timedelta(minutes=3)
    )
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in("alice")
    row = _row(page, "Backup verification script")
    expect(row.get_by_text("3 minutes ago")).to_be_visible()
    expect(row.locator("summary")).to_be_in_viewport()
    expect(page.locator(".topbar__org")).to_have_text("Acme")
    expect(page.locator(".topbar__org")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_label("Sort by").select_option("name")
    expect(page.locator("tbody tr").first).to_contain_text("Archive sync")
    # Then a search keeps that order.
    page.get_by_role("searchbox").fill("s")
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(page.locator("tbody tr").first).to_contain_text("Archive sync")


def test_without_javascript_times_say_utc_and_presets_stay_hidden(
    browser, live_server, make_api_client
):
    client, _ = make_api_client("SOAR playbooks")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(_row(page, "SOAR playbooks").locator("time").first).to_contain_text(" UTC")
    page.goto(f"{LIST}new/")
    expect(page.get_by_role("button", name="Read everything")).to_be_hidden()
    page.goto(f"{LIST}{client.client_id}/delete/")
    page.get_by_label("Confirm with your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted “SOAR playbooks”.")).to_be_visible()
    assert not ApiClient.objects.filter(pk=client.pk).exists()
    context.close()


def test_the_create_page_without_a_dialog_also_focuses_the_first_error(page, sign_in, alice):
    page.set_viewport_size({"width": 1400, "height": 700})
    sign_in("alice")
    page.goto(f"{LIST}new/")
    page.get_by_label("Client name").fill("Firewall sync")
    page.get_by_label("Restrict access by IP address").check()
    page.get_by_label("Allowed IP addresses").fill("192.0.2.300")
    page.get_by_role("button", name="Save").click()
    field = page.get_by_label("Allowed IP addresses")
    expect(field).to_be_focused()
    expect(field).to_be_in_viewport()
