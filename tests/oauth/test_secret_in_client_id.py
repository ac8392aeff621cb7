"""A secret pasted into the client ID, anywhere in it, reaches no Redis key
and no log line of the token endpoint (apiclients.secrets.contains_secret
says what holds one)."""

from urllib.parse import urlencode

from tests.oauth.conftest import post
from tests.secret_shapes import leaks, secret_shapes


def test_a_secret_anywhere_in_the_client_id_is_in_no_redis_key_or_log_line(
    client, siem, redis_keys, caplog
):
    caplog.set_level("DEBUG")
    api_client, secret = siem
    for client_id in secret_shapes(secret, api_client.client_id):
        response = post(
            client,
            "/v1/oauth",
            urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                }
            ),
        )
        assert response.status_code in (400, 401)
        assert not leaks(response.content.decode(), secret)
    texts = [*redis_keys(), *(record.getMessage() for record in caplog.records)]
    assert any(key.startswith("rl:oauth-") for key in texts)  # it was counted
    assert not [text for text in texts if leaks(text, secret)]
