"""Tenant policies: set on the Policies page, enforced by the services (the
console and any API) and at the token endpoint, violators listed."""

import re
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apiclients import policies, usagelog
from apiclients.models import ApiClient, AuditAction, AuditEvent, TenantPolicy, UsageLogEntry
from apiclients.policies import PolicyViolation
from apiclients.services import api_client_update, policy_update
from oauth import coherence, keys
from tests.apiclients.helpers import CREATE_URL, form_data, htmx, text
from tests.oauth.conftest import basic, post

PAGE = reverse("apiclients:policies")


@pytest.fixture(autouse=True)
def _fresh_keyring():
    keys.reset_cache()
    yield
    keys.reset_cache()


def _seen(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def _token(api_client, secret):
    return post(
        Client(),
        "/v1/oauth",
        urlencode({"grant_type": "client_credentials"}),
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
    )


def test_an_admin_sets_policies_and_the_change_is_audited(alice_client, acme):
    response = alice_client.post(
        PAGE,
        {"max_secret_age_days": "90", "require_ip_restriction": "on", "max_token_lifetime": "300"},
        follow=True,
    )
    assert "Policies saved" in _seen(response)
    policy = TenantPolicy.objects.get(tenant=acme)
    assert (policy.max_secret_age_days, policy.require_ip_restriction) == (90, True)
    assert policy.max_token_lifetime == 300 and policy.secret_age_grace_days is None
    event = AuditEvent.objects.get(action=AuditAction.POLICY_CHANGED)
    assert event.actor == "alice" and event.details["changes"]["max_token_lifetime"] == [None, 300]


def test_bad_policy_values_are_explained(alice_client, acme):
    response = alice_client.post(PAGE, {"secret_age_grace_days": "5", "max_token_lifetime": "5"})
    assert response.status_code == 200
    page = _seen(response)
    assert "A grace period needs a maximum secret age" in page
    assert "greater than or equal to 60" in page
    assert not TenantPolicy.objects.exists()


def test_an_auditor_reads_policies_and_changes_nothing(bob_client, acme, alice):
    policy_update(tenant=acme, actor=alice, require_ip_restriction=True)
    page = bob_client.get(PAGE)
    assert page.status_code == 200 and "Save policies" not in text(page)
    assert bob_client.post(PAGE, {"max_secret_age_days": "1"}).status_code == 403
    assert TenantPolicy.objects.get(tenant=acme).max_secret_age_days is None


def test_ip_restriction_required_refuses_a_client_without_one(acme, alice, make_api_client):
    policy_update(tenant=acme, actor=alice, require_ip_restriction=True)
    with pytest.raises(PolicyViolation, match="IP restriction required"):
        make_api_client("Open to all")
    make_api_client("Restricted", ip_allowlist=["203.0.113.0/24"])


def test_the_console_shows_a_policy_error_on_the_form(alice_client, acme, alice):
    policy_update(tenant=acme, actor=alice, require_expiry_days=30)
    response = alice_client.post(CREATE_URL, form_data(name="No expiry"), headers=htmx())
    assert response.status_code == 200
    assert "The tenant policy “Expiry required within 30 days”" in _seen(response)
    assert not ApiClient.objects.filter(name="No expiry").exists()


def test_existing_violators_are_listed_not_broken(alice_client, acme, alice, make_api_client):
    client, secret = make_api_client("Old and open")
    policy_update(tenant=acme, actor=alice, require_ip_restriction=True, require_expiry_days=30)
    page = _seen(alice_client.get(PAGE))
    assert "Old and open IP restriction required no IP restriction" in page
    assert "Old and open Expiry required no expiry date" in page
    assert _token(client, secret).status_code == 200
    # An edit is held to the rules of what it changes: a rename is fine.
    api_client_update(client=client, actor=alice, name="Old, renamed")
    with pytest.raises(PolicyViolation, match="Expiry required within 30 days"):
        api_client_update(
            client=client, actor=alice, expires_at=timezone.now() + timedelta(days=60)
        )


def test_a_secret_past_its_age_and_grace_stops_working(acme, alice, make_api_client):
    client, secret = make_api_client("Ancient")
    ApiClient.objects.filter(pk=client.pk).update(created_at=timezone.now() - timedelta(days=120))
    policy_update(tenant=acme, actor=alice, max_secret_age_days=90)
    # Flagged only: no grace period was set.
    assert _token(client, secret).status_code == 200
    assert [v.policy for v in policies.violations(acme)] == ["Maximum secret age"]

    policy_update(tenant=acme, actor=alice, secret_age_grace_days=10)
    assert _token(client, secret).status_code == 401
    usagelog.flush()
    assert UsageLogEntry.objects.get(client=client, outcome="secret_too_old").count == 1
    failed = AuditEvent.objects.get(action=AuditAction.TOKEN_FAILED)
    assert failed.details["reason"] == "secret_too_old"


def test_tokens_never_outlive_the_maximum_lifetime(acme, alice, make_api_client):
    client, secret = make_api_client("Short-lived")
    assert _token(client, secret).json()["expires_in"] == 900
    policy_update(tenant=acme, actor=alice, max_token_lifetime=120)
    assert _token(client, secret).json()["expires_in"] == 120


def test_another_tenants_policy_does_not_apply(dave, globex, make_api_client):
    policy_update(tenant=globex, actor=dave, require_ip_restriction=True)
    make_api_client("Acme, open to all")


@pytest.mark.django_db(transaction=True)
def test_a_policy_change_reaches_clients_kept_in_memory(settings, acme, alice, make_api_client):
    settings.OAUTH = {**settings.OAUTH, "CLIENT_CACHE": True, "CLIENT_CACHE_LEASE": 1.0}
    coherence.shutdown()
    try:
        deadline = time.monotonic() + 5
        while not coherence.live():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        client, secret = make_api_client("Cached")
        assert _token(client, secret).json()["expires_in"] == 900
        assert _token(client, secret).json()["expires_in"] == 900  # from memory
        policy_update(tenant=acme, actor=alice, max_token_lifetime=60)
        assert _token(client, secret).json()["expires_in"] == 60
    finally:
        coherence.shutdown()
