"""The Taegis GraphQL operations: who may call them and what they refuse."""

import json

import pytest

from apiclients.models import ApiClient
from tests.api.test_end_to_end import CREATE_CLIENT, DELETE_CLIENT, ROTATE_CLIENT_SECRET

SEARCH = "query { clients { id client_id name } }"


def _graphql(client, token, query, variables=None, **headers):
    return client.post(
        "/graphql",
        json.dumps({"query": query, "variables": variables or {}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **headers,
    )


@pytest.mark.django_db
def test_it_needs_a_token_and_refuses_get(client):
    r = client.post("/graphql", json.dumps({"query": SEARCH}), content_type="application/json")
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"].startswith("Send Authorization: Bearer")
    assert client.get("/graphql").status_code == 405


@pytest.mark.django_db
def test_a_client_cannot_create_a_client_with_a_role_beyond_its_grants(client, client_token):
    _, token = client_token(grants=["api-clients:write", "users:read"])
    # No roles named: the Analyst role, which reads far more than users.
    r = _graphql(client, token, CREATE_CLIENT, {"name": "sneaky"})
    assert "do not hold" in r.json()["errors"][0]["message"]
    assert not ApiClient.objects.filter(name="sneaky").exists()


@pytest.mark.django_db
def test_another_tenant_finds_nothing_and_changes_nothing(client, dave_token, make_api_client):
    mine, secret = make_api_client("Acme job")
    assert _graphql(client, dave_token, SEARCH).json()["data"]["clients"] == []
    acme = str(mine.tenant_id)
    r = _graphql(client, dave_token, SEARCH, HTTP_X_TENANT_CONTEXT=acme)
    assert r.status_code == 403
    for query in (ROTATE_CLIENT_SECRET, DELETE_CLIENT):
        for identifier in (mine.client_id, str(mine.public_id)):
            r = _graphql(client, dave_token, query, {"id": identifier})
            assert r.json()["errors"][0]["message"].startswith("No API client")
    mine.refresh_from_db()
    assert mine.check_secret(secret)


@pytest.mark.django_db
def test_a_client_rotates_itself_only_when_allowed(client, client_token):
    me, token = client_token(grants=["users:read"])
    r = _graphql(client, token, ROTATE_CLIENT_SECRET, {"id": me.client_id})
    assert "may not rotate its own secret" in r.json()["errors"][0]["message"]
    ApiClient.objects.filter(pk=me.pk).update(allow_self_rotation=True)
    r = _graphql(client, token, ROTATE_CLIENT_SECRET, {"id": me.client_id})
    secret = r.json()["data"]["rotateClientSecret"]["client_secret"]
    me.refresh_from_db()
    assert me.check_secret(secret)
    r = _graphql(client, token, DELETE_CLIENT, {"id": me.client_id})
    assert r.json()["errors"]
    assert ApiClient.objects.filter(pk=me.pk).exists()


@pytest.mark.django_db
def test_bad_arguments_are_errors_not_500s(client, alice_token):
    r = _graphql(client, alice_token, "query { clients(page: 0) { id } }")
    assert r.status_code == 200 and "page must be" in r.json()["errors"][0]["message"]
    r = _graphql(client, alice_token, CREATE_CLIENT, {"name": "x", "roles": ["nope"]})
    assert "is not a role" in r.json()["errors"][0]["message"]
    r = _graphql(client, alice_token, CREATE_CLIENT, {"name": ""})
    assert r.json()["errors"][0]["message"] == "Enter a name for the API client."
    r = _graphql(client, alice_token, "{ nonsense }")
    assert r.status_code == 400 or r.json()["errors"]


@pytest.mark.django_db
def test_asking_for_another_tenants_clients_finds_nothing(
    client, alice_token, dave, make_api_client
):
    make_api_client("Acme job")
    query = "query q($t: ID) { clients(tenantID: $t) { client_id } }"
    theirs = str(dave.membership.tenant_id)
    assert _graphql(client, alice_token, query, {"t": theirs}).json()["data"]["clients"] == []
    mine = _graphql(client, alice_token, query, {"t": None}).json()["data"]["clients"]
    assert len(mine) == 1
