"""Write implies read: what is saved, shown and put in a token agree."""

import base64
import importlib

from django.apps import apps

from apiclients.catalog import normalize_grants, permission_rows
from apiclients.models import ApiClient
from tests.apiclients.helpers import CREATE_URL, HTMX, form_data

migration = importlib.import_module("apiclients.migrations.0006_write_implies_read")


def test_write_brings_read_along_in_catalog_order():
    assert normalize_grants(["cases:write", "alerts:write", "bogus:write"]) == [
        "alerts:read",
        "alerts:write",
        "cases:read",
        "cases:write",
    ]
    rows = {row["api"].key: row for row in permission_rows(["users:write"])}
    assert rows["users"]["read"] and rows["users"]["write"]


def test_a_write_only_form_saves_read_and_write(alice_client):
    response = alice_client.post(
        CREATE_URL, form_data(name="Alert closer", grants=["alerts:write"]), headers=HTMX
    )
    assert response.status_code == 200
    assert ApiClient.objects.get(name="Alert closer").grants == ["alerts:read", "alerts:write"]


def test_the_migration_adds_read_to_write_only_grants(make_api_client):
    client, _ = make_api_client("Old", grants=["users:read"])
    untouched, _ = make_api_client("Fine", grants=["users:read", "users:write"])
    ApiClient.objects.filter(pk=client.pk).update(grants=["cases:write", "users:read"])
    migration.add_read_to_write_grants(apps, None)
    client.refresh_from_db()
    untouched.refresh_from_db()
    assert sorted(client.grants) == ["cases:read", "cases:write", "users:read"]
    assert untouched.grants == ["users:read", "users:write"]


def test_a_token_of_a_write_only_client_saved_before_carries_read_too(client, make_api_client):
    api_client, secret = make_api_client("Old", grants=["users:read"])
    ApiClient.objects.filter(pk=api_client.pk).update(grants=["cases:write"])
    credentials = base64.b64encode(f"{api_client.client_id}:{secret}".encode()).decode()
    response = client.post(
        "/v1/oauth",
        data="",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "cases:read cases:write"
