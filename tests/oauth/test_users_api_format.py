"""/v1/users builds its page without the ORM (oauth.api): the JSON must stay
exactly what the ORM and Django's JSON encoder gave."""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder

from tests.oauth.conftest import bearer, get_token


@pytest.fixture
def token(client, siem):
    api_client, secret = siem
    return get_token(client, api_client, secret)


def test_every_field_is_written_as_djangos_encoder_would(client, token, alice, bob, charlie):
    User = get_user_model()
    # With and without a fraction of a second, and never signed in.
    User.objects.filter(pk=alice.pk).update(
        date_joined=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        last_login=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    User.objects.filter(pk=bob.pk).update(
        last_login=None, is_active=False, first_name='Bö "Bobby"', last_name="\\ \n\u2028"
    )

    response = client.get("/v1/users?pageSize=2&page=1", **bearer(token))
    body = response.json()

    expected = []
    for user in User.objects.filter(pk__in=[alice.pk, bob.pk]).order_by("username", "id"):
        expected.append(
            {
                "userId": str(user.pk),
                "username": user.username,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "email": user.email,
                "role": user.membership.role,
                "active": user.is_active,
                "blocked": not user.is_active,
                "creationDate": user.date_joined,
                "lastLogin": user.last_login,
            }
        )
    # Byte for byte what JsonResponse would have sent.
    assert response["Content-Type"] == "application/json"
    assert (
        response.content
        == json.dumps(
            {"users": expected, "totalCount": 3, "page": 1, "pageSize": 2}, cls=DjangoJSONEncoder
        ).encode()
    )
    assert body["users"][0]["creationDate"] == "2026-01-02T03:04:05.678Z"
    assert body["users"][0]["lastLogin"] == "2026-02-03T04:05:06Z"
    assert body["users"][1]["lastLogin"] is None


def test_active_and_blocked_at_once_select_nobody(client, token, alice):
    body = client.get("/v1/users?active=true&blocked=true", **bearer(token)).json()
    assert body["users"] == [] and body["totalCount"] == 0
