"""The REST management API through the Django test client."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apiclients.models import ApiClient, AuditAction, AuditEvent, PersonalAccessToken

URL = "/v1/api-clients"


def _post(client, url, body, headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def _patch(client, url, body, headers):
    return client.patch(url, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_it_creates_a_client_and_shows_the_secret_once(client, alice_token, bearer):
    r = _post(client, URL, {"name": "SIEM", "permissions": ["alerts:read"]}, bearer(alice_token))
    assert r.status_code == 201
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    assert body["clientSecret"].startswith("acsec_")
    assert body["client"]["permissions"] == ["alerts:read"]
    assert body["client"]["createdBy"] == "alice"
    stored = ApiClient.objects.get(client_id=body["client"]["clientId"])
    assert stored.check_secret(body["clientSecret"])
    event = AuditEvent.objects.get(action=AuditAction.CREATED, client_id=stored.client_id)
    assert event.actor == "alice"
    # Never again: not in a read, not in the list.
    again = client.get(f"{URL}/{stored.client_id}", **bearer(alice_token))
    assert body["clientSecret"] not in again.content.decode()
    listed = client.get(URL, **bearer(alice_token))
    assert body["clientSecret"] not in listed.content.decode()


@pytest.mark.django_db
def test_validation_errors_are_the_consoles_as_problem_details(client, alice_token, bearer):
    _post(client, URL, {"name": "SIEM"}, bearer(alice_token))
    r = _post(
        client,
        URL,
        {"name": "siem", "ipAllowlist": ["10.0.0.5/24"], "permissions": ["oauth:write"]},
        bearer(alice_token),
    )
    assert r.status_code == 422
    assert r["Content-Type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["type"] == "about:blank"
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert messages["name"] == "An API client named “siem” already exists. Choose another name."
    assert messages["ipAllowlist"] == "“10.0.0.5/24” has host bits set: did you mean 10.0.0.0/24?"
    assert messages["permissions"] == "“oauth:write” is not a permission you can grant."


@pytest.mark.django_db
def test_a_missing_name_is_a_problem_not_a_500(client, alice_token, bearer):
    r = _post(client, URL, {"description": "x"}, bearer(alice_token))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "name"
    r = client.post(URL, "not json", content_type="application/json", **bearer(alice_token))
    assert r.status_code in (400, 422)
    assert r["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_it_needs_a_token(client):
    r = client.get(URL)
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert r["Content-Type"] == "application/problem+json"
    r = client.get(URL, HTTP_AUTHORIZATION="Bearer acpat_" + "A" * 43)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r["WWW-Authenticate"]


@pytest.mark.django_db
def test_a_revoked_or_expired_token_or_a_demoted_admin_is_refused(client, alice, bearer):
    from apiclients.access_tokens import access_token_create, access_token_revoke

    token, raw = access_token_create(user=alice, name="t", days=7)
    assert client.get(URL, **bearer(raw)).status_code == 200
    PersonalAccessToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.get(URL, **bearer(raw)).status_code == 401

    token, raw = access_token_create(user=alice, name="t2", days=7)
    access_token_revoke(token=token, actor=alice)
    assert client.get(URL, **bearer(raw)).status_code == 401

    token, raw = access_token_create(user=alice, name="t3", days=7)
    alice.membership.role = "auditor"
    alice.membership.save()
    assert client.get(URL, **bearer(raw)).status_code == 401


@pytest.mark.django_db
def test_updates_need_the_current_etag(client, alice_token, bearer, make_api_client):
    api_client, _ = make_api_client("Exporter")
    url = f"{URL}/{api_client.client_id}"
    read = client.get(url, **bearer(alice_token))
    etag = read["ETag"]
    assert _patch(client, url, {"description": "x"}, bearer(alice_token)).status_code == 428
    r = _patch(client, url, {"description": "nightly"}, bearer(alice_token, HTTP_IF_MATCH=etag))
    assert r.status_code == 200
    assert r.json()["description"] == "nightly"
    assert r["ETag"] != etag
    # The old ETag is stale now: no silent overwrite.
    r = _patch(client, url, {"description": "other"}, bearer(alice_token, HTTP_IF_MATCH=etag))
    assert r.status_code == 412
    api_client.refresh_from_db()
    assert api_client.description == "nightly"
    edited = AuditEvent.objects.filter(action=AuditAction.EDITED).latest("created_at")
    assert edited.details["changes"] == {"description": ["", "nightly"]}


@pytest.mark.django_db
def test_a_retried_create_never_mints_a_second_secret(client, alice_token, bearer):
    headers = bearer(alice_token, HTTP_IDEMPOTENCY_KEY="5b0c4b1e-create-1")
    first = _post(client, URL, {"name": "Once"}, headers)
    assert first.status_code == 201
    retry = _post(client, URL, {"name": "Once"}, headers)
    assert retry.status_code == 409
    assert retry.json()["clientId"] == first.json()["client"]["clientId"]
    assert first.json()["clientSecret"] not in retry.content.decode()
    assert ApiClient.objects.filter(name="Once").count() == 1
    other = _post(client, URL, {"name": "Twice"}, headers)
    assert other.status_code == 422


@pytest.mark.django_db
def test_list_searches_filters_and_pages_with_a_cursor(
    client, alice_token, bearer, make_api_client
):
    for i in range(5):
        make_api_client(f"Job {i}")
    make_api_client("Other", is_active=False)
    r = client.get(URL, {"search": "job", "pageSize": 2}, **bearer(alice_token))
    page1 = r.json()
    assert [c["name"] for c in page1["items"]] == ["Job 4", "Job 3"]
    assert r["RateLimit-Limit"]
    r = client.get(
        URL, {"search": "job", "pageSize": 2, "cursor": page1["nextCursor"]}, **bearer(alice_token)
    )
    assert [c["name"] for c in r.json()["items"]] == ["Job 2", "Job 1"]
    r = client.get(URL, {"status": "inactive"}, **bearer(alice_token))
    assert [c["name"] for c in r.json()["items"]] == ["Other"]
    r = client.get(URL, {"filter": "never-redeemed", "pageSize": 100}, **bearer(alice_token))
    assert len(r.json()["items"]) == 6
    assert client.get(URL, {"cursor": "garbage"}, **bearer(alice_token)).status_code == 400
    assert client.get(URL, {"pageSize": 0}, **bearer(alice_token)).status_code == 422


# Escalation -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_client_cannot_grant_what_it_does_not_hold(client, client_token, bearer):
    _, token = client_token(grants=["api-clients:write", "users:read"])
    r = _post(client, URL, {"name": "Escalated", "permissions": ["alerts:write"]}, bearer(token))
    assert r.status_code == 403
    assert "alerts:write" in r.json()["detail"]
    assert not ApiClient.objects.filter(name="Escalated").exists()
    r = _post(client, URL, {"name": "Fine", "permissions": ["users:read"]}, bearer(token))
    assert r.status_code == 201
    created = ApiClient.objects.get(name="Fine")
    assert created.created_by is None
    assert AuditEvent.objects.get(client_id=created.client_id).actor.startswith("key-")


@pytest.mark.django_db
def test_only_an_admin_grants_api_clients_or_self_rotation(client, client_token, bearer):
    _, token = client_token(grants=["api-clients:write", "users:read"])
    r = _post(client, URL, {"name": "Peer", "permissions": ["api-clients:write"]}, bearer(token))
    assert r.status_code == 403
    r = _post(client, URL, {"name": "Peer", "allowSelfRotation": True}, bearer(token))
    assert r.status_code == 403


@pytest.mark.django_db
def test_a_client_cannot_edit_its_own_grants(client, client_token, bearer):
    me, token = client_token(grants=["api-clients:write", "users:read"])
    url = f"{URL}/{me.client_id}"
    etag = client.get(url, **bearer(token))["ETag"]
    r = _patch(
        client,
        url,
        {"permissions": ["users:read", "alerts:write"]},
        bearer(token, HTTP_IF_MATCH=etag),
    )
    assert r.status_code == 403
    me.refresh_from_db()
    assert me.grants == ["api-clients:read", "api-clients:write", "users:read"]


@pytest.mark.django_db
def test_a_client_cannot_take_over_a_more_powerful_client(
    client, client_token, bearer, make_api_client
):
    powerful, _ = make_api_client("Powerful", grants=["alerts:write"])
    _, token = client_token(grants=["api-clients:write", "users:read"])
    r = _post(client, f"{URL}/{powerful.client_id}/reset-secret", {}, bearer(token))
    assert r.status_code == 403
    assert "acsec_" not in r.content.decode()


@pytest.mark.django_db
def test_read_permission_cannot_change_anything(client, client_token, bearer):
    _, token = client_token(grants=["api-clients:read"])
    assert client.get(URL, **bearer(token)).status_code == 200
    assert _post(client, URL, {"name": "X"}, bearer(token)).status_code == 403
    _, token = client_token("No API clients", grants=["users:read"])
    assert client.get(URL, **bearer(token)).status_code == 403


@pytest.mark.django_db
def test_another_tenant_sees_404_for_every_client(
    client, dave_token, bearer, make_api_client, client_token
):
    mine, _ = make_api_client("Acme job")
    url = f"{URL}/{mine.client_id}"
    for token in (dave_token,):
        h = bearer(token, HTTP_IF_MATCH=f'"{mine.version}"')
        assert client.get(url, **h).status_code == 404
        assert _patch(client, url, {"name": "mine"}, h).status_code == 404
        assert client.delete(url, **h).status_code == 404
        for action in ("rotate-secret", "reset-secret", "revoke-previous-secret"):
            assert _post(client, f"{url}/{action}", {}, h).status_code == 404
        assert client.get(URL, **h).json()["items"] == []
    assert ApiClient.objects.filter(pk=mine.pk).exists()


@pytest.mark.django_db
def test_a_token_of_a_client_in_another_tenant_sees_404(client, bearer, make_api_client, dave):
    from oauth.clients import client_record
    from oauth.tokens import token_issue

    mine, _ = make_api_client("Acme job")
    theirs, _ = make_api_client("Globex provisioner", actor=dave, grants=["api-clients:write"])
    record = client_record(theirs.client_id)
    token = token_issue(client=record, generation=1, scopes=["api-clients:write"]).access_token
    url = f"{URL}/{mine.client_id}"
    h = bearer(token, HTTP_IF_MATCH=f'"{mine.version}"')
    assert client.get(url, **h).status_code == 404
    assert client.delete(url, **h).status_code == 404
    assert _post(client, f"{url}/reset-secret", {}, h).status_code == 404
    listed = [c["clientId"] for c in client.get(URL, **h).json()["items"]]
    assert listed == [theirs.client_id]


@pytest.mark.django_db
def test_self_rotation_only_when_an_admin_allowed_it(client, client_token, bearer):
    me, token = client_token(grants=["users:read"])
    url = f"{URL}/{me.client_id}/rotate-secret"
    assert _post(client, url, {"overlap": "1h"}, bearer(token)).status_code == 403
    ApiClient.objects.filter(pk=me.pk).update(allow_self_rotation=True)
    r = _post(client, url, {"overlap": "1h"}, bearer(token))
    assert r.status_code == 200
    assert r.json()["clientSecret"].startswith("acsec_")
    me.refresh_from_db()
    assert me.check_secret(r.json()["clientSecret"])
    assert me.previous_secret_expires_at is not None
    # Still not a reset, an edit or a delete of itself.
    assert _post(client, f"{URL}/{me.client_id}/reset-secret", {}, bearer(token)).status_code == 403


# Personal access tokens page -------------------------------------------------------


@pytest.mark.django_db
def test_admin_creates_a_token_shown_once_and_revokes_it(alice_client):
    r = alice_client.post("/account/tokens/", {"name": "Terraform", "lifetime": "30d"})
    assert r.status_code == 200
    assert r["Cache-Control"].startswith("max-age=0")
    page = r.content.decode()
    token = PersonalAccessToken.objects.get(name="Terraform")
    raw = page.split('id="pat-value" class="input mono copy-field__value" type="text" value="')[1]
    raw = raw.split('"')[0]
    assert raw.startswith("acpat_") and token.digest not in page
    assert raw not in alice_client.get("/account/tokens/").content.decode()
    r = alice_client.post(f"/account/tokens/{token.pk}/revoke/")
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_auditor_has_no_tokens_page(bob_client, dave_client, alice):
    from apiclients.access_tokens import access_token_create

    assert bob_client.get("/account/tokens/").status_code == 403
    token, _ = access_token_create(user=alice, name="t", days=7)
    assert dave_client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404


def test_access_tokens_are_caught_like_secrets():
    from apiclients.secrets import contains_secret, new_access_token, redact

    raw = new_access_token()
    assert contains_secret(f"Bearer {raw}")
    assert raw not in redact(f"token={raw}")
    assert "acpat_[withheld]" in redact(f"token={raw}")


# Roles -----------------------------------------------------------------------------

ANALYST = "a4903f9f-465b-478f-a24e-82fa2e129d2e"
RESPONDER = "a72dace7-4536-4dbc-947d-015a8eb65f4d"


@pytest.mark.django_db
def test_a_role_gives_its_permissions_until_it_expires(client, alice_token, bearer):
    from oauth.clients import client_record
    from oauth.tokens import token_issue, token_principal, token_scopes

    soon = (timezone.now() + timedelta(hours=1)).isoformat()
    r = _post(
        client,
        URL,
        {
            "name": "Triage",
            "permissions": ["audit-log:read"],
            "roles": [{"roleId": ANALYST, "expiresAt": soon}],
        },
        bearer(alice_token),
    )
    assert r.status_code == 201
    created = r.json()["client"]
    assert created["roles"][0]["roleName"] == "Analyst"
    assert "alerts:read" in created["effectivePermissions"]
    assert created["permissions"] == ["audit-log:read"]

    record = client_record(created["clientId"])
    scopes = token_scopes(record, None)
    assert "alerts:read" in scopes and "audit-log:read" in scopes
    token = token_issue(client=record, generation=1, scopes=scopes).access_token
    assert "alerts:read" in token_principal(token).scopes

    # The assignment ends: the same token loses the role's scopes at its next use.
    stored = ApiClient.objects.get(client_id=created["clientId"])
    stored.role_assignments[0]["expires_at"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    ApiClient.objects.filter(pk=stored.pk).update(role_assignments=stored.role_assignments)
    principal = token_principal(token)
    assert "alerts:read" not in principal.scopes
    assert "audit-log:read" in principal.scopes
    listed = client.get(URL, {"role": ANALYST}, **bearer(alice_token)).json()["items"]
    assert [c["name"] for c in listed] == ["Triage"]
    assert listed[0]["roles"][0]["live"] is False


@pytest.mark.django_db
def test_a_client_cannot_give_a_role_beyond_its_grants(client, client_token, bearer):
    _, token = client_token(grants=["api-clients:write", "users:read"])
    r = _post(client, URL, {"name": "Responder", "roles": [{"roleId": RESPONDER}]}, bearer(token))
    assert r.status_code == 403
    r = _post(client, URL, {"name": "Bad role", "roles": [{"roleId": "nope"}]}, bearer(token))
    assert r.status_code == 422


@pytest.mark.django_db
def test_roles_are_listed(client, alice_token, bearer):
    roles = client.get("/v1/roles", **bearer(alice_token)).json()
    assert [r["label"] for r in roles] == ["Admin", "Analyst", "Responder", "Auditor"]


# Wire conventions --------------------------------------------------------------------


@pytest.mark.django_db
def test_over_the_rate_limit_is_a_429_with_the_token_endpoints_headers(
    client, alice_token, bearer, settings
):
    settings.MANAGEMENT_API_RATE_LIMIT = 2
    assert client.get(URL, **bearer(alice_token))["RateLimit-Remaining"] == "1"
    assert client.get(URL, **bearer(alice_token)).status_code == 200
    r = client.get(URL, **bearer(alice_token))
    assert r.status_code == 429
    assert r["Content-Type"] == "application/problem+json"
    assert int(r["Retry-After"]) > 0
    assert r["RateLimit-Limit"] == "2"


@pytest.mark.django_db
def test_a_retried_rotation_is_refused_and_the_secret_not_changed_twice(
    client, alice_token, bearer, make_api_client
):
    api_client, _ = make_api_client("Pipeline")
    headers = bearer(alice_token, HTTP_IDEMPOTENCY_KEY="rotate-2026-12-01")
    url = f"{URL}/{api_client.client_id}/rotate-secret"
    first = _post(client, url, {"overlap": "1h"}, headers)
    assert first.status_code == 200
    retry = _post(client, url, {"overlap": "1h"}, headers)
    assert retry.status_code == 409
    assert "shown once" in retry.json()["detail"]
    api_client.refresh_from_db()
    assert api_client.check_secret(first.json()["clientSecret"])
    assert api_client.secret_generation == 2


@pytest.mark.django_db
def test_the_openapi_document_describes_every_api_an_integration_calls(client):
    doc = client.get("/v1/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    for path in ("/v1/api-clients", "/v1/api-clients/{client_id}", "/v1/oauth", "/v1/users"):
        assert path in doc["paths"], path
    patch = doc["paths"]["/v1/api-clients/{client_id}"]["patch"]
    assert "application/problem+json" in patch["responses"]["412"]["content"]
    assert any(p["name"] == "If-Match" for p in patch["parameters"])
    docs = client.get("/v1/docs")
    assert docs.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in docs.content.decode()


@pytest.mark.django_db
def test_a_wrong_method_is_a_problem_too(client, alice_token, bearer):
    r = client.put(URL, **bearer(alice_token))
    assert r.status_code == 405
    assert r["Content-Type"] == "application/problem+json"
    assert set(r["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
