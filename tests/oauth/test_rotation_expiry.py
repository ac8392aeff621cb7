"""Rotation with overlap, client expiry and daily token counts, as the token
endpoint and the bearer APIs see them."""

import datetime as dt

import jwt
from django.utils import timezone

from apiclients import usage
from apiclients.models import ApiClient, AuditEvent, TokenDailyCount
from apiclients.services import (
    api_client_reset_secret,
    api_client_revoke_previous_secret,
    api_client_rotate_secret,
    api_client_update,
)
from tests.oauth.conftest import basic, bearer, get_token, post


def token_status(client, api_client, secret) -> int:
    return post(
        client, "/v1/oauth", HTTP_AUTHORIZATION=basic(api_client.client_id, secret)
    ).status_code


def users_status(client, token) -> int:
    return client.get("/v1/users", **bearer(token)).status_code


def test_both_secrets_get_tokens_during_the_overlap(client, siem, alice):
    api_client, old = siem
    old_token = get_token(client, api_client, old)
    rotated, new = api_client_rotate_secret(
        client=api_client, grace=dt.timedelta(hours=1), actor=alice
    )
    assert token_status(client, rotated, old) == 200
    assert token_status(client, rotated, new) == 200
    assert users_status(client, old_token) == 200
    assert users_status(client, get_token(client, rotated, old)) == 200
    assert users_status(client, get_token(client, rotated, new)) == 200


def test_a_token_from_the_old_secret_never_outlives_the_overlap(client, siem, alice):
    api_client, old = siem
    rotated, _ = api_client_rotate_secret(
        client=api_client, grace=dt.timedelta(minutes=5), actor=alice
    )
    response = post(client, "/v1/oauth", HTTP_AUTHORIZATION=basic(rotated.client_id, old))
    body = response.json()
    assert body["expires_in"] <= 300
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] <= rotated.previous_secret_expires_at.timestamp()


def test_revoking_the_old_secret_stops_it_and_its_tokens_but_not_the_new_one(client, siem, alice):
    api_client, old = siem
    rotated, new = api_client_rotate_secret(
        client=api_client, grace=dt.timedelta(days=7), actor=alice
    )
    old_token = get_token(client, rotated, old)
    new_token = get_token(client, rotated, new)
    api_client_revoke_previous_secret(client=rotated, actor=alice)
    assert token_status(client, rotated, old) == 401
    assert users_status(client, old_token) == 401
    assert users_status(client, new_token) == 200
    assert token_status(client, rotated, new) == 200


def test_the_old_secret_stops_by_itself_when_the_overlap_ends(client, siem, alice):
    api_client, old = siem
    rotated, new = api_client_rotate_secret(
        client=api_client, grace=dt.timedelta(hours=1), actor=alice
    )
    old_token = get_token(client, rotated, old)
    # The overlap ended a moment ago.
    ApiClient.objects.filter(pk=rotated.pk).update(
        previous_secret_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert token_status(client, rotated, old) == 401
    assert users_status(client, old_token) == 401
    assert token_status(client, rotated, new) == 200


def test_a_reset_during_an_overlap_stops_both_secrets_at_once(client, siem, alice):
    api_client, first = siem
    rotated, second = api_client_rotate_secret(
        client=api_client, grace=dt.timedelta(days=7), actor=alice
    )
    tokens = [get_token(client, rotated, first), get_token(client, rotated, second)]
    reset, third = api_client_reset_secret(client=rotated, actor=alice)
    assert token_status(client, reset, first) == 401
    assert token_status(client, reset, second) == 401
    assert all(users_status(client, t) == 401 for t in tokens)
    assert token_status(client, reset, third) == 200


def test_an_expired_client_gets_no_token_and_its_tokens_stop(client, siem):
    api_client, secret = siem
    token = get_token(client, api_client, secret)
    ApiClient.objects.filter(pk=api_client.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    response = post(client, "/v1/oauth", HTTP_AUTHORIZATION=basic(api_client.client_id, secret))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert users_status(client, token) == 401
    failed = AuditEvent.objects.filter(action="token.failed").first()
    assert failed.details["reason"] == "expired"


def test_a_token_never_outlives_its_client(client, siem, alice):
    api_client, secret = siem
    api_client_update(
        client=api_client, actor=alice, expires_at=timezone.now() + dt.timedelta(minutes=2)
    )
    body = post(client, "/v1/oauth", HTTP_AUTHORIZATION=basic(api_client.client_id, secret)).json()
    assert body["expires_in"] <= 120


def test_every_token_is_counted_for_the_chart(client, siem, settings):
    api_client, secret = siem
    settings.OAUTH = {**settings.OAUTH, "LAST_REDEEMED_INTERVAL": 3600}
    for _ in range(4):
        get_token(client, api_client, secret)
    today = timezone.now().date()
    # The first token wrote last redeemed and its count to the database;
    # the next three wait in this process, and the chart adds them.
    assert TokenDailyCount.objects.get(client=api_client, day=today).count == 1
    assert usage.daily_counts(api_client, today)[-1] == (today, 4)
    usage.flush()  # as when the interval has passed, or the worker exits
    assert TokenDailyCount.objects.get(client=api_client, day=today).count == 4
    assert usage.daily_counts(api_client, today)[-1] == (today, 4)
