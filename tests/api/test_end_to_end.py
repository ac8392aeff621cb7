"""The whole life of a client through the management APIs, over real HTTP
(pytest-django's live server) with a plain HTTP client: create, token,
bearer call, rotate (both secrets work), revoke the previous secret, reset,
delete, and then 401. Once through the REST API, once through the Taegis
GraphQL operations with the exact query strings of that documentation."""

import json
import uuid

import pytest
import requests

from apiclients.access_tokens import access_token_create

ANALYST = "a4903f9f-465b-478f-a24e-82fa2e129d2e"

# Verbatim from the Taegis XDR documentation ("Credentials on Linux",
# "Search Client Credentials", "Reset a Client Secret", "Delete a Client").
CREATE_CLIENT = (
    "mutation createClient($name: String!, $roles: [ID!]) { createClient(name: $name, "
    "roles: $roles) { client { id name client_id roles role_assignments { id tenant_id "
    "role_id role_name expires_at } tenant_id created_at updated_at created_by updated_by "
    "environment } client_secret } }"
)
SEARCH_CLIENTS = """query clients($name: String, $clientIDs: [String] = ["<CLIENT_ID>"], $tenantID: ID, $roleIDs: [ID], $tenantIDs: [ID], $page: Int, $perPage: Int)
{
    clients(name: $name, clientIDs: $clientIDs, tenantID: $tenantID, roleIDs: $roleIDs, tenantIDs: $tenantIDs, page: $page, perPage: $perPage)
    {
        id name client_id roles role_assignments { id tenant_id role_id role_name expires_at } tenant_id created_at updated_at created_by updated_by environment
    }
}"""  # noqa: E501
ROTATE_CLIENT_SECRET = """mutation rotateClientSecret($id: ID! = "c373d68a-fdca-476f-5b48-92ed5804dc53")
{
    rotateClientSecret(id: $id)
    {
        client { id name client_id roles role_assignments { id tenant_id role_id role_name expires_at } tenant_id created_at updated_at created_by updated_by environment } client_secret
    }
}"""  # noqa: E501
DELETE_CLIENT = """mutation deleteClient($id: ID! = "c373d68a-fdca-476f-5b48-92ed5804dc53")
{
    deleteClient(id: $id)
    {
        id name client_id roles role_assignments { id tenant_id role_id role_name expires_at } tenant_id created_at updated_at created_by updated_by environment
    }
}"""  # noqa: E501


def _token(base: str, client_id: str, secret: str) -> requests.Response:
    # As Code42's documented curl: Basic auth and an empty body.
    return requests.post(f"{base}/v1/oauth", auth=(client_id, secret), data="", timeout=10)


def _users(base: str, access_token: str) -> int:
    return requests.get(
        f"{base}/v1/users",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    ).status_code


def _works(base: str, client_id: str, secret: str) -> bool:
    answer = _token(base, client_id, secret)
    if answer.status_code != 200:
        assert answer.status_code == 401
        return False
    return _users(base, answer.json()["access_token"]) == 200


@pytest.mark.django_db(transaction=True)
def test_the_lifecycle_through_the_rest_api(live_server, alice, settings):
    settings.BASE_URL = base = live_server.url
    _, pat = access_token_create(user=alice, name="lifecycle", days=1)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {pat}"

    created = api.post(
        f"{base}/v1/api-clients",
        json={"name": "Nightly sync", "permissions": ["users:read"]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    client_id = created.json()["client"]["clientId"]
    first = created.json()["clientSecret"]

    token = _token(base, client_id, first)
    assert token.status_code == 200
    old_token = token.json()["access_token"]
    assert _users(base, old_token) == 200

    rotated = api.post(
        f"{base}/v1/api-clients/{client_id}/rotate-secret", json={"overlap": "1h"}, timeout=10
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["clientSecret"]
    assert second != first
    assert _works(base, client_id, first) and _works(base, client_id, second)

    revoked = api.post(f"{base}/v1/api-clients/{client_id}/revoke-previous-secret", timeout=10)
    assert revoked.status_code == 200
    assert not _works(base, client_id, first)
    assert _users(base, old_token) == 401
    assert _works(base, client_id, second)

    reset = api.post(f"{base}/v1/api-clients/{client_id}/reset-secret", timeout=10)
    assert reset.status_code == 200
    third = reset.json()["clientSecret"]
    assert not _works(base, client_id, second)
    third_token = _token(base, client_id, third).json()["access_token"]
    assert _users(base, third_token) == 200

    etag = api.get(f"{base}/v1/api-clients/{client_id}", timeout=10).headers["ETag"]
    deleted = api.delete(
        f"{base}/v1/api-clients/{client_id}", headers={"If-Match": etag}, timeout=10
    )
    assert deleted.status_code == 204
    assert _users(base, third_token) == 401
    assert _token(base, client_id, third).status_code == 401
    assert api.get(f"{base}/v1/api-clients/{client_id}", timeout=10).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_lifecycle_through_the_taegis_graphql_operations(live_server, alice, dave, settings):
    settings.BASE_URL = base = live_server.url
    _, pat = access_token_create(user=alice, name="taegis", days=1)
    tenant_id = str(alice.membership.tenant_id)

    def graphql(query: str, variables: dict, tenant: str = tenant_id) -> requests.Response:
        # As the documentation's curl: -H Authorization, X-Tenant-Context,
        # Content-type, -d '{"query": ..., "variables": ...}'.
        return requests.post(
            f"{base}/graphql",
            headers={
                "Authorization": f"Bearer {pat}",
                "X-Tenant-Context": tenant,
                "Content-type": "application/json",
            },
            data=json.dumps({"query": query, "variables": variables}),
            timeout=10,
        )

    created = graphql(CREATE_CLIENT, {"name": "your_awesome_app_name"})
    assert created.status_code == 200, created.text
    body = created.json()["data"]["createClient"]
    client = body["client"]
    assert client["roles"] == "tenantAnalyst"
    assert client["role_assignments"][0]["role_id"] == ANALYST
    assert client["role_assignments"][0]["role_name"] == "TenantAnalyst"
    assert client["tenant_id"] == tenant_id
    assert client["created_by"] == "alice"
    assert client["environment"] == "production"
    assert created.headers["Cache-Control"] == "no-store"
    client_id, first = client["client_id"], body["client_secret"]

    again = graphql(CREATE_CLIENT, {"name": "your_awesome_app_name"})
    assert again.json()["errors"][0]["message"] == "Existing client in tenant"

    found = graphql(SEARCH_CLIENTS, {"clientIDs": [client_id]}).json()["data"]["clients"]
    assert [c["id"] for c in found] == [client["id"]]
    assert graphql(SEARCH_CLIENTS, {}).json()["data"]["clients"] == []  # "<CLIENT_ID>"
    by_role = graphql(SEARCH_CLIENTS, {"clientIDs": None, "roleIDs": [ANALYST]})
    assert [c["client_id"] for c in by_role.json()["data"]["clients"]] == [client_id]

    # The Analyst role reads users: the whole path works.
    token = _token(base, client_id, first).json()["access_token"]
    assert _users(base, token) == 200

    rotated = graphql(ROTATE_CLIENT_SECRET, {"id": client["id"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]["rotateClientSecret"]["client_secret"]
    assert rotated.json()["data"]["rotateClientSecret"]["client"]["client_id"] == client_id
    assert _works(base, client_id, first) and _works(base, client_id, second)

    # Ending the overlap and a reset have no Taegis operation: the REST API.
    api = {"Authorization": f"Bearer {pat}"}
    revoke = f"{base}/v1/api-clients/{client_id}/revoke-previous-secret"
    assert requests.post(revoke, headers=api, timeout=10).status_code == 200
    assert not _works(base, client_id, first)
    reset = requests.post(
        f"{base}/v1/api-clients/{client_id}/reset-secret", headers=api, timeout=10
    )
    third = reset.json()["clientSecret"]
    assert not _works(base, client_id, second)
    token = _token(base, client_id, third).json()["access_token"]
    assert _users(base, token) == 200

    # Another tenant's context is refused outright.
    other = graphql(DELETE_CLIENT, {"id": client_id}, tenant=str(dave.membership.tenant_id))
    assert other.status_code == 403

    deleted = graphql(DELETE_CLIENT, {"id": client_id})
    assert deleted.json()["data"]["deleteClient"]["client_id"] == client_id
    assert _users(base, token) == 401
    assert _token(base, client_id, third).status_code == 401
