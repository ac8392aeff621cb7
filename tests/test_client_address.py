"""The client's address behind a reverse proxy (config.proxies): believed
from X-Forwarded-For or Forwarded only when the peer is a trusted proxy,
right-most untrusted address first, and the same everywhere (IP restriction,
audit log, console, sign-in limits). The real proxy hop through gunicorn is in
tests/hardening/test_proxy_addresses.py."""

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from apiclients.models import AuditAction, AuditEvent
from config.proxies import PEER_ADDR, client_address, client_address_settle
from tests.apiclients.helpers import form_data
from tests.oauth.conftest import basic, post

PROXY = "127.0.0.1"


def _token(client, creds, *, peer=PROXY, **headers):
    api_client, secret = creds
    return post(
        client,
        "/v1/oauth",
        "",
        HTTP_AUTHORIZATION=basic(api_client.client_id, secret),
        REMOTE_ADDR=peer,
        **headers,
    )


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"]
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    return settings


@pytest.fixture
def at_client(make_api_client):
    return make_api_client("At the client", ip_allowlist=["203.0.113.50"])


@pytest.fixture
def at_proxy(make_api_client):
    return make_api_client("At the proxy", ip_allowlist=["127.0.0.1"])


def test_without_trusted_proxies_a_forwarded_header_is_never_believed(client, at_client, at_proxy):
    forged = {"HTTP_X_FORWARDED_FOR": "203.0.113.50", "HTTP_FORWARDED": "for=203.0.113.50"}
    assert _token(client, at_client, **forged).status_code == 401
    assert _token(client, at_proxy, **forged).status_code == 200


def test_behind_a_trusted_proxy_the_client_is_the_forwarded_address(
    client, behind_proxy, at_client, at_proxy
):
    assert _token(client, at_client, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 200
    refused = _token(client, at_proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert refused.status_code == 401
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_FAILED)
    assert event.source_ip == "198.51.100.7"
    assert event.details["reason"] == "ip_not_allowed"


def test_what_the_client_wrote_left_of_its_address_is_ignored(client, behind_proxy, at_client):
    # nginx appends the address it sees to whatever the client sent.
    forged_then_real = "203.0.113.50, 198.51.100.7"
    assert _token(client, at_client, HTTP_X_FORWARDED_FOR=forged_then_real).status_code == 401
    # Through two trusted proxies (an edge in 10.0.0.0/8, then this host's).
    through_two = "198.51.100.7, 203.0.113.50, 10.1.2.3"
    assert _token(client, at_client, HTTP_X_FORWARDED_FOR=through_two).status_code == 200


def test_a_forged_header_from_an_untrusted_peer_is_ignored(client, behind_proxy, at_client):
    response = _token(client, at_client, peer="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert response.status_code == 401
    assert AuditEvent.objects.get(action=AuditAction.TOKEN_FAILED).source_ip == "198.51.100.9"


def test_the_forwarded_header_when_the_proxy_sets_that_one(
    client, behind_proxy, at_client, make_api_client
):
    behind_proxy.TRUSTED_PROXY_HEADER = "Forwarded"
    forwarded = 'for=198.51.100.7;proto=https, for="203.0.113.50:4711";proto=https'
    assert _token(client, at_client, HTTP_FORWARDED=forwarded).status_code == 200
    # The header not chosen is whatever the client sent: ignored.
    assert _token(client, at_client, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 401
    v6 = make_api_client("IPv6", ip_allowlist=["2001:db8::/64"])
    quoted = 'for="[2001:db8::7]:4711", for="[2001:db8:ffff::1]"'
    assert _token(client, v6, peer="::1", HTTP_FORWARDED=quoted).status_code == 401
    assert _token(client, v6, peer="2001:db8:ffff::2", HTTP_FORWARDED=quoted).status_code == 200


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_X_FORWARDED_FOR", "not an address"),
        ("HTTP_X_FORWARDED_FOR", "203.0.113.50, junk"),
        ("HTTP_FORWARDED", "for=unknown"),
        ("HTTP_FORWARDED", 'for="203.0.113.50'),
    ],
)
def test_a_client_that_cannot_be_told_has_no_address(behind_proxy, header, value):
    behind_proxy.TRUSTED_PROXY_HEADER = (
        "Forwarded" if header == "HTTP_FORWARDED" else "X-Forwarded-For"
    )
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, **{header: value})
    assert client_address(request) is None


def test_the_address_is_decided_once_and_the_peer_kept(behind_proxy):
    environ = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.9.9.9").META
    client_address_settle(environ)
    # Every address trusted: the left-most is the best there is.
    assert environ["REMOTE_ADDR"] == "10.9.9.9"
    assert environ[PEER_ADDR] == PROXY
    # Settling again does not walk further left (10.9.9.9 is in a trusted range).
    environ["HTTP_X_FORWARDED_FOR"] = "203.0.113.50, 10.9.9.9"
    client_address_settle(environ)
    assert environ["REMOTE_ADDR"] == "10.9.9.9"
    assert client_address(environ) == "10.9.9.9"


def test_a_dual_stack_peer_is_written_as_ipv4():
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.1")
    assert client_address(request) == "192.0.2.1"


@pytest.mark.parametrize(
    ("proxies", "header"),
    [
        (["10.0.0.0/33"], "X-Forwarded-For"),
        (["proxy.example"], "X-Forwarded-For"),
        ([], "X-Real-IP"),
    ],
)
def test_a_mistyped_setting_stops_the_server(settings, proxies, header):
    settings.TRUSTED_PROXIES = proxies
    settings.TRUSTED_PROXY_HEADER = header
    with pytest.raises(ImproperlyConfigured):
        client_address(RequestFactory().get("/"))


def test_console_changes_are_audited_with_the_clients_address(alice_client, behind_proxy):
    response = alice_client.post(
        "/administration/integrations/api-clients/new/",
        form_data(name="Through the proxy"),
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="198.51.100.23",
    )
    assert response.status_code in (200, 302)
    event = AuditEvent.objects.get(action=AuditAction.CREATED)
    assert event.source_ip == "198.51.100.23"


def test_sign_in_limits_count_the_clients_address(client, alice, behind_proxy, settings):
    settings.LOGIN_FAILURES_PER_IP = 3
    settings.LOGIN_FAILURES_PER_USER_AND_IP = 3
    for n in range(3):
        client.post(
            "/accounts/login/",
            {"username": f"nobody{n}", "password": "guess"},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR="198.51.100.66",
        )
    # Another client behind the same proxy is not held back by them.
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "correct horse battery staple"},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert response.status_code == 302


@settings(max_examples=500, deadline=None)
@given(
    header=st.sampled_from(["X-Forwarded-For", "Forwarded"]),
    value=st.text(alphabet=st.characters(codec="latin-1"), max_size=80)
    | st.lists(
        st.sampled_from(
            [
                "203.0.113.50",
                "10.0.0.7",
                "[2001:db8::7]:80",
                '"for',
                "for=",
                "for=unknown",
                'for="[::1]"',
                "_x",
                ";",
                ",",
                " ",
                "=",
                '"',
                "2001:db8:ffff::9",
                "::ffff:10.0.0.1",
            ]
        ),
        max_size=8,
    ).map("".join),
    peer=st.sampled_from(["127.0.0.1", "10.2.3.4", "198.51.100.9", "2001:db8:ffff::1", "", "x"]),
)
def test_any_header_gives_an_address_or_none(header, value, peer):
    with override_settings(
        TRUSTED_PROXIES=["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"],
        TRUSTED_PROXY_HEADER=header,
    ):
        meta_key = "HTTP_" + header.upper().replace("-", "_")
        address = client_address({"REMOTE_ADDR": peer, meta_key: value})
    if address is not None:
        assert str(ipaddress.ip_address(address)) == address
