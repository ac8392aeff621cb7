import pytest

from apiclients.models import ApiClient, AuditAction, AuditEvent
from apiclients.secrets import SECRET_PREFIX, digest
from apiclients.services import (
    EditConflict,
    NameTaken,
    api_client_create,
    api_client_delete,
    api_client_reset_secret,
    api_client_update,
)


def test_it_stores_only_the_digest_of_a_new_secret(make_api_client):
    client, secret = make_api_client()
    client.refresh_from_db()
    assert secret.startswith(SECRET_PREFIX)
    assert len(secret) - len(SECRET_PREFIX) >= 43  # 32 random bytes
    assert client.secret_digest == digest(secret)
    assert client.check_secret(secret)
    assert not client.check_secret(secret + "x")


def test_the_stored_digest_is_never_accepted_as_the_secret(make_api_client):
    client, _ = make_api_client()
    assert not client.check_secret(client.secret_digest)


def test_names_are_unique_per_tenant_ignoring_case(make_api_client, dave):
    make_api_client("SIEM export")
    with pytest.raises(NameTaken):
        make_api_client("siem EXPORT")
    # Another tenant may use the same name.
    other, _ = make_api_client("SIEM export", actor=dave)
    assert other.tenant == dave.membership.tenant


def test_reset_changes_the_secret_and_keeps_the_client_id(make_api_client, alice):
    client, old = make_api_client()
    reset, new = api_client_reset_secret(client=client, actor=alice)
    assert reset.client_id == client.client_id
    assert new != old
    assert reset.check_secret(new) and not reset.check_secret(old)
    assert reset.secret_generation == client.secret_generation + 1
    assert reset.secret_reset_at is not None


def test_an_edit_records_what_changed_and_never_the_secret(make_api_client, alice):
    client, secret = make_api_client()
    api_client_update(client=client, actor=alice, name="SIEM nightly", is_active=False)
    actions = list(
        AuditEvent.objects.filter(client_id=client.client_id).values_list("action", flat=True)
    )
    assert actions == [AuditAction.DEACTIVATED, AuditAction.EDITED, AuditAction.CREATED]
    edited = AuditEvent.objects.get(action=AuditAction.EDITED)
    assert edited.details == {"changes": {"name": ["SIEM export", "SIEM nightly"]}}


def test_a_stale_edit_is_refused(make_api_client, alice):
    client, _ = make_api_client()
    api_client_update(client=client, actor=alice, expected_version=1, name="First")
    with pytest.raises(EditConflict):
        api_client_update(client=client, actor=alice, expected_version=1, name="Second")
    client.refresh_from_db()
    assert client.name == "First"


def test_delete_keeps_the_audit_history(make_api_client, alice):
    client, _ = make_api_client()
    api_client_delete(client=client, actor=alice)
    assert not ApiClient.objects.filter(pk=client.pk).exists()
    assert AuditEvent.objects.filter(client_id=client.client_id).count() == 2


def test_audit_events_cannot_be_changed(make_api_client):
    make_api_client()
    event = AuditEvent.objects.get()
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        AuditEvent.objects.update(actor="mallory")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


def test_unknown_grants_are_dropped(alice):
    client, _ = api_client_create(
        tenant=alice.membership.tenant,
        name="x",
        actor=alice,
        grants=["audit-log:write", "oauth:read", "alerts:write", "alerts:read"],
    )
    assert client.grants == ["alerts:read", "alerts:write"]
