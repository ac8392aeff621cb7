import re

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.secret_shapes import leaks, secret_shapes

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


# Secrets typed as a username ------------------------------------------------------


def test_secret_shapes_are_found_anywhere_in_a_text():
    from apiclients.secrets import contains_secret, new_secret, redact

    secret = new_secret()
    for text in secret_shapes(secret, "key-AAAAAAAAAAAAAAAAAAAAAA"):
        assert contains_secret(text), text
        assert not leaks(redact(text), secret), text
        assert "acsec_[withheld]" in redact(text).lower()
    for text in ["alice", "acsec_", "acsec_short", "my acsec_ key", "key-AAAAAAAAAAAAAAAAAAAAAA"]:
        assert not contains_secret(text), text
        assert redact(text) == text


def test_a_secret_typed_as_the_username_is_in_no_cache_key_log_line_or_page(
    alice, make_api_client, redis_keys, caplog
):
    caplog.set_level("DEBUG")
    api_client, secret = make_api_client()
    for username in secret_shapes(secret, api_client.client_id):
        pages = [attempt(username, "guess").content.decode() for _ in range(4)]
        assert "Too many failed sign-in attempts" in pages[-1], username  # it was counted
        keys = redis_keys()
        assert any("(secret-" in key for key in keys), keys
        for text in [*keys, *pages, *(r.getMessage() for r in caplog.records)]:
            assert not leaks(text, secret), (username, text[:200])
    assert any("acsec_[withheld]" in r.getMessage() for r in caplog.records)
    # Ordinary usernames are still counted by name.
    attempt("mallory", "guess", ip="192.0.2.77")
    assert any("mallory" in key for key in redis_keys())


# Someone else's failures ------------------------------------------------------------


def test_someone_elses_failures_from_a_shared_address_do_not_lock_out_a_known_user(alice, bob):
    office = "203.0.113.66"
    assert attempt("alice", PASSWORD, ip=office).status_code == 302
    for name in ["u1", "u2", "u3", "u4", "u5"]:  # spraying from the same NAT
        attempt(name, "guess", ip=office)
    # Alice has signed in from here: the address's limit does not hold her back.
    assert attempt("alice", PASSWORD, ip=office).status_code == 302
    # Bob never has: the address is refused for him, as for any other name.
    assert attempt("bob", PASSWORD, ip=office).status_code == 429
    assert attempt("u6", "guess", ip=office).status_code == 429


def test_guessing_a_users_password_from_everywhere_does_not_lock_them_out_at_home(alice):
    assert attempt("alice", PASSWORD, ip="198.51.100.1").status_code == 302
    for i in range(8):  # the per-username limit, from eight addresses
        attempt("alice", "guess", ip=f"203.0.113.{i + 10}")
    assert attempt("alice", PASSWORD, ip="198.51.100.1").status_code == 302
    assert attempt("alice", PASSWORD, ip="192.0.2.200").status_code == 429


def test_a_known_user_is_still_held_to_the_limit_on_their_own_account(alice):
    assert attempt("alice", PASSWORD).status_code == 302
    for _ in range(3):
        attempt("alice", "guess")
    response = attempt("alice", PASSWORD)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 900


def test_without_the_cache_sign_in_works_without_limits(alice, caplog):
    from django.test import override_settings

    from apiclients import signin

    signin._last_warning[0] = float("-inf")
    url = "redis://127.0.0.1:1/0"
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }
    with override_settings(CACHES=unreachable, REDIS_URL=url), caplog.at_level("WARNING"):
        wrong = [attempt("alice", "guess").status_code for _ in range(4)]
        right = attempt("alice", PASSWORD)
    assert wrong == [200] * 4  # the form's own error, never a 500
    assert right.status_code == 302
    assert "Sign-in limits are not enforced: the cache is unavailable" in caplog.text
