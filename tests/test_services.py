from datetime import timedelta

import pytest
from django.utils import timezone

from apiclients import usage
from apiclients.models import ApiClient, AuditAction, AuditEvent, TokenDailyCount
from apiclients.secrets import SECRET_PREFIX, digest
from apiclients.services import (
    EditConflict,
    NameTaken,
    api_client_create,
    api_client_delete,
    api_client_reset_secret,
    api_client_revoke_previous_secret,
    api_client_rotate_secret,
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


def test_rotation_keeps_the_old_secret_working_until_the_overlap_ends(make_api_client, alice):
    client, old = make_api_client()
    rotated, new = api_client_rotate_secret(client=client, grace=timedelta(hours=24), actor=alice)
    now = timezone.now()
    assert rotated.client_id == client.client_id and new != old
    assert rotated.check_secret(new) and not rotated.check_secret(old)
    assert rotated.check_previous_secret(old, now)
    assert not rotated.check_previous_secret(new, now)
    assert not rotated.check_previous_secret(old, now + timedelta(hours=24, seconds=1))
    event = AuditEvent.objects.get(action=AuditAction.SECRET_ROTATED)
    assert event.details["overlap_seconds"] == 86400


def test_at_most_two_secrets_are_live(make_api_client, alice):
    client, first = make_api_client()
    client, second = api_client_rotate_secret(client=client, grace=timedelta(days=7), actor=alice)
    client, third = api_client_rotate_secret(client=client, grace=timedelta(days=7), actor=alice)
    now = timezone.now()
    assert client.check_secret(third)
    assert client.check_previous_secret(second, now)
    assert not client.check_previous_secret(first, now) and not client.check_secret(first)
    latest = AuditEvent.objects.filter(action=AuditAction.SECRET_ROTATED).first()
    assert latest.details["earlier_old_secret_revoked"] is True


def test_revoking_the_old_secret_ends_the_overlap_now(make_api_client, alice):
    client, old = make_api_client()
    client, _ = api_client_rotate_secret(client=client, grace=timedelta(days=7), actor=alice)
    client = api_client_revoke_previous_secret(client=client, actor=alice)
    assert not client.check_previous_secret(old, timezone.now())
    assert AuditEvent.objects.filter(action=AuditAction.PREVIOUS_SECRET_REVOKED).count() == 1
    # Nothing left to revoke: no second event.
    api_client_revoke_previous_secret(client=client, actor=alice)
    assert AuditEvent.objects.filter(action=AuditAction.PREVIOUS_SECRET_REVOKED).count() == 1


def test_a_reset_during_an_overlap_stops_both_old_secrets(make_api_client, alice):
    client, first = make_api_client()
    client, second = api_client_rotate_secret(client=client, grace=timedelta(days=7), actor=alice)
    client, third = api_client_reset_secret(client=client, actor=alice)
    now = timezone.now()
    assert client.check_secret(third)
    assert not client.check_previous_secret(second, now)
    assert not client.check_previous_secret(first, now)


def test_an_expiry_date_is_recorded_and_audited(make_api_client, alice):
    when = timezone.now() + timedelta(days=10)
    client, _ = make_api_client(expires_at=when)
    assert not client.is_expired(timezone.now())
    assert client.is_expired(when)
    api_client_update(client=client, actor=alice, expires_at=None)
    edited = AuditEvent.objects.get(action=AuditAction.EDITED)
    assert edited.details["changes"]["expires_at"] == [when.isoformat(), None]


def test_token_counts_reach_the_database_in_batches(make_api_client):
    client, _ = make_api_client()
    now = timezone.now()
    # The first token of a client never redeemed is written at once.
    usage.token_counted(client.pk, now, last_written=None)
    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 1
    for _ in range(4):
        usage.token_counted(client.pk, now, last_written=now)
    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 1
    assert usage.daily_counts(client, now.date())[-1] == (now.date(), 5)
    usage.flush()
    usage.token_counted(client.pk, now, last_written=now)
    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 5
    assert usage.daily_counts(client, now.date())[-1] == (now.date(), 6)
    usage.flush()
    assert TokenDailyCount.objects.get(client=client, day=now.date()).count == 6
    series = usage.daily_counts(client, now.date())
    assert len(series) == 30 and sum(n for _, n in series) == 6
