import re

import pytest
from django.test import Client

from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _small_limits(settings):
    settings.LOGIN_FAILURES_PER_USER_AND_IP = 3
    settings.LOGIN_FAILURES_PER_IP = 5
    settings.LOGIN_FAILURES_PER_USER = 8


def attempt(username, password, ip="198.51.100.1"):
    return Client(REMOTE_ADDR=ip).post(LOGIN, {"username": username, "password": password})


def test_it_signs_in_with_the_right_password(alice):
    response = attempt("alice", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/administration/integrations/api-clients/"


def test_guessing_one_password_from_one_place_is_stopped_even_with_the_right_one(alice):
    for _ in range(3):
        assert attempt("alice", "guess").status_code == 200
    response = attempt("alice", PASSWORD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # Fixed windows: the wait is what is left of the current one.
    assert re.search(
        rb"Too many failed sign-in attempts. Try again in \d+ minutes?\.", response.content
    )
    assert "_auth_user_id" not in response.client.session


def test_the_owner_can_still_sign_in_from_elsewhere(alice):
    for _ in range(3):
        attempt("alice", "guess", ip="203.0.113.66")
    assert attempt("alice", PASSWORD, ip="198.51.100.1").status_code == 302


def test_spraying_many_usernames_from_one_address_is_stopped(alice, bob):
    for name in ["u1", "u2", "u3", "u4", "u5"]:
        attempt(name, "guess", ip="203.0.113.66")
    assert attempt("bob", PASSWORD, ip="203.0.113.66").status_code == 429
    assert attempt("bob", PASSWORD, ip="198.51.100.1").status_code == 302


def test_usernames_are_counted_without_regard_to_case(alice):
    for name in ["alice", "ALICE", "Alice"]:
        attempt(name, "guess")
    assert attempt("aLiCe", PASSWORD).status_code == 429
