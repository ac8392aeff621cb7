"""Swagger UI at /v1/docs: served from our own static files under the
console's Content-Security-Policy, and able to call the API with a token."""

import re

import pytest
from playwright.sync_api import expect

from apiclients.access_tokens import access_token_create


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_loads_without_csp_violations_and_calls_the_api(
    page, live_server, alice, make_api_client
):
    make_api_client("Nightly export")
    _, token = access_token_create(user=alice, name="Swagger", days=1)
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    external = []
    page.on(
        "request",
        lambda r: (
            external.append(r.url) if not r.url.startswith((live_server.url, "data:")) else None
        ),
    )
    response = page.goto("/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("API Clients management API").first).to_be_visible()

    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    page.locator("#auth-bearer-value").fill(token)
    page.get_by_role("button", name="Apply credentials").first.click()
    page.locator(".btn-done").first.click()

    operation = page.locator("#operations-API_clients-apiclients_api_rest_list_clients")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(live).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("Nightly export")

    assert page.evaluate("window.__csp") == []
    assert violations == []
    assert external == [], "Swagger UI must load nothing from outside this server"
