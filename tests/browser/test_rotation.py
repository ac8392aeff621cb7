"""Rotation with overlap in Chromium, with real token requests beside it."""

import requests
from playwright.sync_api import expect

from apiclients.models import ApiClient
from tests.conftest import PASSWORD

LIST = "/administration/integrations/api-clients/"


def token_status(base_url, client_id, secret) -> int:
    return requests.post(
        base_url + "/v1/oauth", auth=(client_id, secret), data="", timeout=10
    ).status_code


def test_rotate_with_overlap_then_revoke_the_old_secret(
    page, sign_in, live_server, make_api_client
):
    client, old = make_api_client("Splunk SIEM export")
    sign_in("alice")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="Splunk SIEM export"))
    row.locator("summary").click()
    row.get_by_role("link", name="Rotate API secret").click()

    dialog = page.locator("dialog[open]")
    dialog.get_by_label("7 days").check()
    dialog.get_by_label("Confirm with your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Rotate secret").click()
    expect(dialog.get_by_text("The old secret keeps working until")).to_be_visible()
    assert dialog.get_by_label("Client ID").input_value() == client.client_id
    new = dialog.get_by_label("Secret", exact=True).input_value()
    assert new != old
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("dialog")).to_have_count(0)

    # Both secrets get tokens while the integration switches over.
    assert token_status(live_server.url, client.client_id, old) == 200
    assert token_status(live_server.url, client.client_id, new) == 200

    row.get_by_role("link", name="Details").click()
    drawer = page.locator(".drawer")
    expect(drawer.get_by_text("Two secrets are live.")).to_be_visible()
    # The chart counts the two tokens just issued.
    expect(drawer.get_by_text("2 tokens, at most 2 a day")).to_be_visible()
    expect(drawer.locator("svg.chart__svg rect.chart__bar")).to_have_count(1)

    drawer.get_by_role("link", name="Revoke old secret now").click()
    page.locator("dialog[open]").get_by_role("button", name="Revoke old secret").click()
    expect(page.locator("dialog")).to_have_count(0)
    expect(drawer.get_by_text("Two secrets are live.")).to_have_count(0)

    assert token_status(live_server.url, client.client_id, old) == 401
    assert token_status(live_server.url, client.client_id, new) == 200
    client.refresh_from_db()
    assert not client.previous_secret_digest
    assert ApiClient.objects.get(pk=client.pk).check_secret(new)
