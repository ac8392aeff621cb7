import re

from django.contrib.auth import get_user_model
from django.utils import timezone

from apiclients.accounts import user_create
from apiclients.models import ApiClient, Role
from apiclients.services import api_client_create, api_client_reset_secret
from tests.apiclients.helpers import HTMX, LIST_URL, detail_url, edit_url, text


def test_the_drawer_shows_every_detail(alice_client, make_api_client):
    client, _ = make_api_client(
        "SOAR playbooks",
        description="Closes alerts\nand opens cases",
        grants=["alerts:read", "alerts:write", "audit-log:read"],
        ip_allowlist=["203.0.113.0/24", "2001:db8::1"],
    )
    response = alice_client.get(detail_url(client), headers={**HTMX, "HX-Target": "drawer-slot"})
    body = text(response)
    assert response.status_code == 200
    assert "<html" not in body
    assert '<aside class="drawer"' in body
    for label in (
        "Date created",
        "Last modified",
        "Last redeemed",
        "Client ID",
        "Description",
        "API permissions",
        "IP restriction",
        "Status",
        "Created by",
        "Updated by",
        "Secret last reset",
    ):
        assert f"<dt>{label}</dt>" in body, label
    assert "SOAR playbooks" in body
    assert client.client_id in body
    assert "Closes alerts\nand opens cases" in body
    assert '<th scope="row">Alerts</th>' in body
    assert '<th scope="row">Audit Log</th>' in body
    assert '<th scope="row">Users</th>' not in body  # not granted
    assert body.count('<span class="tick" title="Write">') == 1
    assert "203.0.113.0/24" in body and "2001:db8::1" in body
    assert "<dd>alice</dd>" in body
    assert body.count("Never") == 3  # last redeemed, expires, secret last reset
    for action in ("Edit API client", "Reset API secret", "Delete API client"):
        assert action in body
    assert f'data-client-id="{client.client_id}"' in body
    assert f"?client={client.client_id}" in body  # its audit history


def test_the_drawer_opened_directly_is_the_list_with_the_drawer(alice_client, make_api_client):
    client, _ = make_api_client("SOAR playbooks")
    make_api_client("Another")
    body = text(alice_client.get(detail_url(client)))
    assert "<html" in body
    assert '<aside class="drawer"' in body
    assert "Another" in body  # the list beside it
    assert f'href="{LIST_URL}" aria-label="Close details"' in body


def test_closing_the_drawer_returns_to_the_list_as_it_was(alice_client, make_api_client):
    client, _ = make_api_client()
    came_from = "http://testserver" + LIST_URL + "?q=SIEM&sort=name"
    body = text(alice_client.get(detail_url(client), headers={**HTMX, "HX-Current-URL": came_from}))
    assert f'href="{LIST_URL}?q=SIEM&amp;sort=name" aria-label="Close details"' in body


def test_a_client_without_grants_or_ip_restriction_says_so(alice_client, make_api_client):
    client, _ = make_api_client(grants=[])
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "No API permissions" in body
    assert "All IP addresses" in body
    assert "No description" in body


def test_a_deleted_creator_shows_as_a_dash(alice_client, acme):
    frank, _ = user_create(username="frank", tenant_name="Acme", role=Role.CLOUD_ADMIN)
    client, _ = api_client_create(tenant=acme, name="Frank's", actor=frank)
    get_user_model().objects.filter(pk=frank.pk).delete()
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert body.count("<dd>—</dd>") == 2  # created by, updated by


def test_the_drawer_shows_when_the_secret_was_last_reset(alice_client, alice, make_api_client):
    client, _ = make_api_client()
    client, _ = api_client_reset_secret(client=client, actor=alice)
    body = text(alice_client.get(detail_url(client), headers=HTMX))
    assert f'<time datetime="{client.secret_reset_at.isoformat()}"' in body
    assert body.count("Never") == 2  # last redeemed, expires


def test_the_drawer_costs_a_fixed_number_of_queries(
    alice_client, make_api_client, django_assert_max_num_queries
):
    client, _ = make_api_client()
    # session, user, membership, client with its creator and updater, the
    # daily token counts, the lockouts in force
    with django_assert_max_num_queries(6):
        alice_client.get(detail_url(client), headers=HTMX)


def test_a_reloading_drawer_keeps_its_way_back_but_only_to_the_list(alice_client, make_api_client):
    client, _ = make_api_client()
    back = LIST_URL + "?sort=name&page=2"
    body = text(alice_client.get(detail_url(client), {"back": back}, headers=HTMX))
    assert 'href="/administration/integrations/api-clients/?sort=name&amp;page=2"' in body
    for elsewhere in (
        "https://evil.example/administration/integrations/api-clients/",
        "/accounts/logout/",
    ):
        body = text(alice_client.get(detail_url(client), {"back": elsewhere}, headers=HTMX))
        assert f'href="{LIST_URL}" aria-label="Close details"' in body


def test_the_list_beside_a_drawer_opened_directly_refreshes_itself(alice_client, make_api_client):
    client, _ = make_api_client("Backup verification script")
    body = text(alice_client.get(detail_url(client)))
    # The results section reloads the list, the drawer reloads itself.
    results = re.search(r'<section id="api-client-results"[^>]*hx-get="([^"]*)"', body)
    assert results and results.group(1) == LIST_URL
    assert f'data-refresh-url="{detail_url(client)}"' in body
    refreshed = text(
        alice_client.get(LIST_URL, headers={**HTMX, "HX-Target": "api-client-results"})
    )
    assert '<section id="api-client-results"' in refreshed and "<aside" not in refreshed


def test_write_only_grants_show_with_read_in_the_drawer_and_the_edit_form(
    alice_client, make_api_client
):
    client, _ = make_api_client("Alert closer", grants=["alerts:write"])
    client.refresh_from_db()
    assert client.grants == ["alerts:read", "alerts:write"]
    ApiClient.objects.filter(pk=client.pk).update(grants=["cases:write"])  # saved before
    drawer = text(alice_client.get(detail_url(client), headers=HTMX))
    assert "No API permissions" not in drawer
    assert '<th scope="row">Cases</th>' in drawer
    assert drawer.count('<span class="visually-hidden"> Read</span>') == 1
    assert drawer.count('<span class="visually-hidden"> Write</span>') == 1
    edit = text(alice_client.get(edit_url(client), headers=HTMX))
    assert 'value="cases:read" id="grant-cases-read" checked' in edit
    assert 'value="cases:write" id="grant-cases-write" checked' in edit


def test_times_name_their_zone_and_last_redeemed_reads_as_recency(alice_client, make_api_client):
    client, _ = make_api_client()
    ApiClient.objects.filter(pk=client.pk).update(last_redeemed_at=timezone.now())
    client.refresh_from_db()
    body = text(alice_client.get(detail_url(client)))
    stamp = client.last_redeemed_at.isoformat()
    # The list: "3 minutes ago" in the browser; the drawer: the time and how long ago.
    assert f'<time datetime="{stamp}" data-when="relative">' in body
    assert f'<time datetime="{stamp}" data-when="both">' in body
    shown = timezone.localtime(client.last_redeemed_at).strftime("%Y-%m-%d %H:%M")
    assert f"{shown} UTC</time>" in body
