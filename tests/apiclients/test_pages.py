"""Sign in and out, the error pages, and the template rules every page keeps."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.loader import render_to_string
from django.test import Client

from tests.apiclients.helpers import CREATE_URL, LIST_URL, detail_url, edit_url, form_data, text
from tests.conftest import PASSWORD

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_the_sign_in_page_asks_for_username_and_password(client):
    body = text(client.get("/accounts/login/"))
    assert '<label class="field__label" for="id_username">Username</label>' in body
    assert '<label class="field__label" for="id_password">Password</label>' in body
    assert ">Sign in</button>" in body


def test_signing_in_leads_to_the_api_clients_list(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == LIST_URL
    assert "alice" in text(client.get(LIST_URL))


def test_signing_in_returns_to_the_page_asked_for(client, alice, make_api_client):
    api_client, _ = make_api_client()
    response = client.get(detail_url(api_client))
    assert response.status_code == 302
    login = client.get(response["Location"])
    assert f'name="next" value="{detail_url(api_client)}"' in text(login)
    signed_in = client.post(
        response["Location"],
        {"username": "alice", "password": PASSWORD, "next": detail_url(api_client)},
    )
    assert signed_in["Location"] == detail_url(api_client)


def test_a_wrong_password_is_an_error_on_the_page(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)
    assert 'value="alice"' in text(response)


def test_sign_out_takes_a_post_and_signs_out(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    body = text(alice_client.get(LIST_URL))
    assert 'action="/accounts/logout/"' in body and ">Sign out</button>" in body
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert alice_client.get(LIST_URL).status_code == 302


def test_a_member_without_a_role_is_told_how_to_get_access(charlie_client):
    response = charlie_client.get(LIST_URL)
    assert response.status_code == 403
    body = text(response)
    assert "You need the Customer Cloud Admin role" in body
    assert "You are signed in as <strong>charlie</strong> in <strong>Acme</strong>" in body
    assert "<strong>no role</strong>" in body
    assert "How to get access" in body
    assert "Sign in as someone else" in body


def test_an_auditor_on_an_admin_page_is_told_what_auditors_can_do(bob_client, make_api_client):
    api_client, _ = make_api_client()
    body = text(bob_client.get(edit_url(api_client)))
    assert "You need the Customer Cloud Admin role" in body
    assert "the <strong>Auditor</strong> role" in body
    assert "Auditors can view API clients" in body
    assert "Back to API Clients" in body


def test_an_unknown_client_is_a_friendly_404(alice_client):
    response = alice_client.get("/administration/integrations/api-clients/key-nope/")
    assert response.status_code == 404
    assert "We couldn't find that page" in text(response)


def test_the_500_page_needs_no_context():
    body = render_to_string("500.html")
    assert "Something went wrong on our side" in body


@pytest.mark.parametrize(
    "template, context",
    [
        ("components/dialog.html", {"title": "No id", "body_template": "apiclients/_reveal.html"}),
        ("components/dialog.html", {"dialog_id": "x", "body_template": "apiclients/_reveal.html"}),
        ("components/drawer.html", {"drawer_title": "No URLs", "body_template": "x.html"}),
        ("components/copy_field.html", {"field_id": "x", "label": "Secret"}),
    ],
)
def test_components_refuse_to_render_without_what_they_need(template, context):
    with pytest.raises(TemplateSyntaxError):
        render_to_string(template, context)


def test_templates_have_no_inline_scripts_or_handlers():
    # The Content-Security-Policy allows no inline JavaScript.
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), path
        assert not re.search(r"\son[a-z]+\s*=", source), path
        assert "hx-on" not in source, path
        assert "style=" not in source, path
        assert "https://" not in source and "http://cdn" not in source, path


def test_pages_load_htmx_from_our_own_static_files(alice_client):
    body = text(alice_client.get(LIST_URL))
    assert re.search(r'<script src="/static/django_htmx/htmx-2[^"]*\.js" defer>', body)
    assert '<script src="/static/js/app.js" defer>' in body
    assert """hx-headers='{"X-CSRFToken": \"""" in body


def test_htmx_posts_carry_the_csrf_token_from_the_body(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = text(browser.get(LIST_URL))
    token = re.search(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""", page).group(1)

    refused = browser.post(CREATE_URL, form_data(name="No token"), headers={"HX-Request": "true"})
    assert refused.status_code == 403
    accepted = browser.post(
        CREATE_URL,
        form_data(name="With token"),
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )
    assert accepted.status_code == 200
    assert "API client created" in text(accepted)


def test_full_page_forms_carry_their_own_csrf_token(alice_client):
    body = text(alice_client.get(CREATE_URL))
    assert 'name="csrfmiddlewaretoken"' in body
