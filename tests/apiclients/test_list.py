import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apiclients.models import ApiClient
from tests.apiclients.helpers import LIST_URL, detail_url, htmx, text

RESULTS = "api-client-results"


def names_in(body: str) -> list[str]:
    """Client names in table order (the name cell links to the drawer)."""
    return re.findall(r'<td class="table__name">\s*<a [^>]*>([^<]+)</a>', body)


@pytest.fixture
def many(make_api_client):
    def make(count: int, prefix: str = "Integration"):
        return [make_api_client(f"{prefix} {i:03d}")[0] for i in range(count)]

    return make


def test_signed_in_home_leads_to_the_list(alice_client):
    response = alice_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == LIST_URL


def test_the_list_shows_each_clients_columns(alice_client, make_api_client):
    client, _ = make_api_client("Splunk export")
    ApiClient.objects.filter(pk=client.pk).update(is_active=False)
    body = text(alice_client.get(LIST_URL))
    assert "Administration" in body and "Integrations" in body
    for heading in (
        "Client name",
        "Status",
        "Date created",
        "Last modified",
        "Last redeemed",
        "Client ID",
    ):
        assert heading in body
    assert "Splunk export" in body
    assert "Inactive" in body
    assert "Never" in body  # never redeemed
    assert f'<code class="mono">{client.client_id}</code>' in body
    assert 'aria-label="Details of ' in body
    assert "Showing 1–1 of 1 API client" in body


def test_last_redeemed_shows_the_time_once_redeemed(alice_client, make_api_client):
    client, _ = make_api_client()
    when = timezone.now() - dt.timedelta(hours=3)
    ApiClient.objects.filter(pk=client.pk).update(last_redeemed_at=when)
    body = text(alice_client.get(LIST_URL))
    assert f'datetime="{when.isoformat()}"' in body
    assert '<td class="table__date">Never</td>' not in body


def test_list_queries_do_not_grow_with_the_number_of_clients(alice_client, many):
    many(3)
    with CaptureQueriesContext(connection) as few:
        assert alice_client.get(LIST_URL).status_code == 200
    many(57, prefix="More")
    with CaptureQueriesContext(connection) as lots:
        response = alice_client.get(LIST_URL)
    assert len(names_in(text(response))) == 25
    assert len(lots.captured_queries) == len(few.captured_queries), [
        q["sql"] for q in lots.captured_queries
    ]


def test_the_results_fragment_costs_the_same_queries_too(alice_client, many):
    many(3)
    searched = LIST_URL + "?sort=-last_redeemed&q=o"
    with CaptureQueriesContext(connection) as few:
        alice_client.get(searched, headers=htmx(RESULTS))
    many(40, prefix="More")
    with CaptureQueriesContext(connection) as lots:
        alice_client.get(searched, headers=htmx(RESULTS))
    assert len(lots.captured_queries) == len(few.captured_queries)
    with CaptureQueriesContext(connection) as unfiltered:
        alice_client.get(LIST_URL, headers=htmx(RESULTS))
    # A search reads the page and its total at once; the plain list counts
    # apart, from an index.
    assert len(lots.captured_queries) == len(unfiltered.captured_queries) - 1


def test_default_order_is_newest_first(alice_client, many):
    many(3)
    assert names_in(text(alice_client.get(LIST_URL))) == [
        "Integration 002",
        "Integration 001",
        "Integration 000",
    ]


def test_it_sorts_by_name_both_ways_ignoring_case(alice_client, make_api_client):
    for name in ("beta", "Alpha", "gamma"):
        make_api_client(name)
    assert names_in(text(alice_client.get(LIST_URL + "?sort=name"))) == ["Alpha", "beta", "gamma"]
    assert names_in(text(alice_client.get(LIST_URL + "?sort=-name"))) == ["gamma", "beta", "Alpha"]


def test_it_sorts_by_last_redeemed_with_never_last(alice_client, make_api_client):
    never, _ = make_api_client("Never used")
    old, _ = make_api_client("Used last week")
    recent, _ = make_api_client("Used today")
    now = timezone.now()
    ApiClient.objects.filter(pk=old.pk).update(last_redeemed_at=now - dt.timedelta(days=7))
    ApiClient.objects.filter(pk=recent.pk).update(last_redeemed_at=now)
    assert names_in(text(alice_client.get(LIST_URL + "?sort=-last_redeemed"))) == [
        "Used today",
        "Used last week",
        "Never used",
    ]
    assert names_in(text(alice_client.get(LIST_URL + "?sort=last_redeemed"))) == [
        "Never used",
        "Used last week",
        "Used today",
    ]


def test_it_sorts_by_date_created_oldest_first(alice_client, many):
    many(3)
    assert names_in(text(alice_client.get(LIST_URL + "?sort=created")))[0] == "Integration 000"


def test_an_unknown_sort_falls_back_to_newest_first(alice_client, many):
    many(2)
    response = alice_client.get(LIST_URL + "?sort=secret_digest")
    assert response.status_code == 200
    assert names_in(text(response)) == ["Integration 001", "Integration 000"]


def test_sort_headers_link_to_the_other_direction(alice_client, many):
    many(1)
    body = text(alice_client.get(LIST_URL + "?sort=name"))
    assert 'aria-sort="ascending"' in body
    assert 'href="/administration/integrations/api-clients/?sort=-name"' in body


def test_it_searches_by_name_or_client_id(alice_client, make_api_client):
    siem, _ = make_api_client("Splunk SIEM")
    make_api_client("HR sync")
    assert names_in(text(alice_client.get(LIST_URL + "?q=splunk"))) == ["Splunk SIEM"]
    assert names_in(text(alice_client.get(LIST_URL + f"?q={siem.client_id}"))) == ["Splunk SIEM"]


def test_a_search_without_results_says_so_and_offers_to_clear_it(alice_client, make_api_client):
    make_api_client("HR sync")
    body = text(alice_client.get(LIST_URL + "?q=nothing-like-this"))
    assert "No API clients match “nothing-like-this”" in body
    assert "Clear search" in body
    assert f'href="{LIST_URL}"' in body
    assert "No API clients yet" not in body


def test_it_paginates_25_per_page(alice_client, many):
    many(60)
    first = text(alice_client.get(LIST_URL))
    assert len(names_in(first)) == 25
    assert "Showing 1–25 of 60 API clients" in first
    assert "Page 1 of 3" in first
    assert 'href="/administration/integrations/api-clients/?page=2"' in first
    last = text(alice_client.get(LIST_URL + "?page=3"))
    assert names_in(last)[-1] == "Integration 000"
    assert "Showing 51–60 of 60 API clients" in last
    # Out of range pages show the last one rather than an error.
    assert "Page 3 of 3" in text(alice_client.get(LIST_URL + "?page=99"))


def test_a_search_pages_like_the_list_whatever_the_page_number(alice_client, many):
    many(30)
    searched = LIST_URL + "?q=Integration&page="
    assert "Showing 26–30 of 30" in text(alice_client.get(searched + "2"))
    # Out of range, absurd or not a number: the last or the first page, never an error.
    for page, shown in (("99", "Page 2 of 2"), ("9" * 30, "Page 2 of 2"), ("x", "Page 1 of 2")):
        response = alice_client.get(searched + page)
        assert response.status_code == 200
        assert shown in text(response)


def test_pagination_keeps_the_search_and_sort(alice_client, many):
    many(30)
    body = text(alice_client.get(LIST_URL + "?q=Integration&sort=name"))
    assert "?q=Integration&amp;sort=name&amp;page=2" in body


def test_htmx_gets_only_the_results_fragment_that_refreshes_itself(alice_client, many):
    many(2)
    response = alice_client.get(LIST_URL + "?sort=name", headers=htmx(RESULTS))
    body = text(response)
    assert "<html" not in body
    assert f'id="{RESULTS}"' in body
    assert 'hx-trigger="apiClientsChanged from:body"' in body
    # The refresh keeps what the user is looking at.
    assert 'hx-get="/administration/integrations/api-clients/?sort=name"' in body
    assert names_in(body) == ["Integration 000", "Integration 001"]


def test_links_keep_a_plain_href_beside_hx_get(alice_client, many):
    (client,) = many(1)
    body = text(alice_client.get(LIST_URL))
    assert f'href="{detail_url(client)}" aria-label="Details of {client.name}"' in body
    assert f'hx-get="{detail_url(client)}"' in body


def test_empty_state_explains_api_clients_and_offers_create_to_admins(alice_client):
    body = text(alice_client.get(LIST_URL))
    assert "No API clients yet" in body
    assert "integration or script" in body
    assert body.count("Create new API client") == 2  # header and empty state


def test_empty_state_for_auditors_has_no_create_button(bob_client):
    body = text(bob_client.get(LIST_URL))
    assert "No API clients yet" in body
    assert "Create new API client" not in body
    assert "A Customer Cloud Admin of your organisation can create them" in body


def test_a_user_sees_only_their_tenants_clients(dave_client, make_api_client, dave):
    make_api_client("Acme only")
    make_api_client("Globex only", actor=dave)
    body = text(dave_client.get(LIST_URL))
    assert "Globex only" in body
    assert "Acme only" not in body
    assert "Acme only" not in text(dave_client.get(LIST_URL + "?q=Acme"))
