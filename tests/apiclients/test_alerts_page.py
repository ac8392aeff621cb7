"""Administration > Alerts as admins and auditors see it."""

import re

from django.urls import reverse

from apiclients import alerts
from apiclients.models import AlertDelivery, AlertDestination
from tests.apiclients.helpers import text

PAGE = reverse("apiclients:alerts")
ADD = reverse("apiclients:alert_add")
EVENTS = ["client.expiring", "client.deleted"]


def _seen(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(alice_client, acme):
    response = alice_client.post(
        ADD, {"kind": "webhook", "target": "https://hooks.example.com/x", "events": EVENTS}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r"whsec_[A-Za-z0-9_-]{43}", text(response)).group(0)
    assert "This is the only time the secret is displayed" in _seen(response)
    destination = AlertDestination.objects.get(tenant=acme)
    assert secret not in destination.encrypted_secret
    later = text(alice_client.get(PAGE))
    assert "https://hooks.example.com/x" in later and secret not in later


def test_an_admin_adds_an_email_address(alice_client, acme):
    response = alice_client.post(
        ADD, {"kind": "email", "target": "secops@example.com", "events": EVENTS}, follow=True
    )
    assert "Alerts will be emailed to secops@example.com" in _seen(response)
    assert AlertDestination.objects.get(tenant=acme).events == sorted(EVENTS)


def test_bad_destinations_are_explained_and_nothing_typed_is_lost(alice_client, acme):
    for data, error in [
        ({"kind": "email", "target": "not-an-address", "events": EVENTS}, "Enter a valid email"),
        ({"kind": "webhook", "target": "ftp://x.example", "events": EVENTS}, "Enter a valid http"),
        ({"kind": "email", "target": "a@example.com"}, "Choose at least one event"),
        ({"kind": "email", "target": "", "events": EVENTS}, "Enter an email address or a webhook"),
    ]:
        response = alice_client.post(ADD, data)
        assert response.status_code == 200
        assert error in _seen(response)
        assert data["target"] in text(response)
    alice_client.post(ADD, {"kind": "email", "target": "a@example.com", "events": EVENTS})
    again = alice_client.post(ADD, {"kind": "email", "target": "a@example.com", "events": EVENTS})
    assert "This destination is already listed" in _seen(again)
    assert AlertDestination.objects.filter(tenant=acme).count() == 1


def test_send_test_event_lists_a_delivery(
    alice_client, acme, alice, django_capture_on_commit_callbacks
):
    destination, _ = alerts.destination_create(
        tenant=acme, kind="email", target="secops@example.com", events=EVENTS, actor=alice
    )
    url = reverse("apiclients:alert_test", args=[destination.pk])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = alice_client.post(url, follow=True)
    assert len(queued) == 1  # handed to the job runner once committed
    page = _seen(response)
    assert "A test event is on its way to secops@example.com" in page
    assert "Test event" in page and "Pending" in page
    assert AlertDelivery.objects.get(destination=destination).event == "test"


def test_an_auditor_reads_and_changes_nothing(bob_client, acme, alice):
    destination, _ = alerts.destination_create(
        tenant=acme, kind="email", target="secops@example.com", events=EVENTS, actor=alice
    )
    page = bob_client.get(PAGE)
    assert page.status_code == 200
    assert "secops@example.com" in text(page)
    assert "Send test event" not in text(page) and "Add a destination" not in text(page)
    for url in (
        ADD,
        reverse("apiclients:alert_test", args=[destination.pk]),
        reverse("apiclients:alert_delete", args=[destination.pk]),
    ):
        assert bob_client.post(url, {"kind": "email", "target": "x@example.com"}).status_code == 403
    assert AlertDestination.objects.count() == 1 and not AlertDelivery.objects.exists()


def test_another_tenants_destination_is_a_404(dave_client, acme, alice, charlie_client):
    destination, _ = alerts.destination_create(
        tenant=acme, kind="email", target="secops@example.com", events=EVENTS, actor=alice
    )
    assert (
        dave_client.post(reverse("apiclients:alert_delete", args=[destination.pk])).status_code
        == 404
    )
    assert "secops@example.com" not in text(dave_client.get(PAGE))
    assert charlie_client.get(PAGE).status_code == 403
    assert AlertDestination.objects.count() == 1


def test_an_admin_removes_a_destination(alice_client, acme, alice):
    destination, _ = alerts.destination_create(
        tenant=acme, kind="email", target="secops@example.com", events=EVENTS, actor=alice
    )
    alice_client.post(reverse("apiclients:alert_delete", args=[destination.pk]))
    assert not AlertDestination.objects.exists()
