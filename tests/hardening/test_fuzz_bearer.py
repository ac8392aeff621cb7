"""Hostile requests at the bearer APIs: random, garbled and forged tokens,
tokens signed with our own key but carrying hostile claims, and random query
parameters. Every answer is a 2xx or a JSON 4xx; only a valid token of a
live client reads anything, and only its own tenant's data."""

import base64
import hashlib
import hmac
import json
from collections import Counter
from dataclasses import replace
from urllib.parse import urlencode

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oauth import keys
from oauth.tokens import audience, issuer
from tests.hardening.fuzzing import (
    CLIENT_IDS,
    CONTROL,
    HTTP_METHODS,
    SECRETS,
    Sent,
    assert_unchanged,
    basic,
    check_api_response,
    fuzz_example,
    fuzz_settings,
    hostile_text,
    json_values,
    latin1,
    query_strings,
    random_headers,
    send,
    snapshot,
)

PATHS = ["/v1/users", "/api/v3/users", "/v1/audit-log"]
PARAMS = ["active", "blocked", "pageSize", "page", "action", "clientId", "since", "until", "cursor"]
# Which world tokens may read anything, and whose data they see.
LIVE = {"siem": "Acme", "siem_users": "Acme", "globex": "Globex"}
TOKENS = ["siem", "siem", "siem", "siem_users", "globex", "globex", "inactive", "revoked"]
USERS = {"Acme": {"alice", "bob", "charlie"}, "Globex": {"dave"}}
CLIENT_NAMES = {"Acme": {"SIEM export", "Restricted", "Dormant"}, "Globex": {"Globex sync"}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


datetimes = st.one_of(
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00+05:30",
            "9999-12-31T23:59:59+00:00",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "0001-01-01T00:00:00Z",
            "2026-13-45T25:61:61",
            "2026-02-30T00:00:00",
            "1e10",
            "now",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    hostile_text,
)
cursors = st.one_of(
    st.builds(lambda v: _b64(json.dumps(v).encode()), json_values),
    st.builds(
        lambda t, pk: _b64(json.dumps([t, pk]).encode()),
        datetimes,
        st.one_of(st.integers(-(2**70), 2**70), json_values),
    ),
    st.binary(max_size=40).map(_b64),
    hostile_text,
)
VALUES = {
    "active": st.sampled_from(["true", "false", "TRUE", "1", "yes", ""]),
    "blocked": st.sampled_from(["true", "false", "False", "0", ""]),
    "pageSize": st.one_of(
        st.integers(-(2**70), 2**70).map(str), st.sampled_from(["1", "500", "501", "0", "1.5"])
    ),
    "page": st.one_of(
        st.integers(-(2**70), 2**70).map(str), st.sampled_from(["1", "2", "1000000", "1000001"])
    ),
    "action": st.sampled_from(["client.created", "token.failed", "client.created\x00", "x"]),
    "clientId": st.sampled_from(CLIENT_IDS + ["key-\x00", "%", "A" * 200]),
    "since": datetimes,
    "until": datetimes,
    "cursor": cursors,
}


@st.composite
def api_queries(draw) -> str:
    from urllib.parse import urlencode

    if not draw(st.integers(0, 3)):
        return draw(query_strings(PARAMS))
    pairs = []
    for name in draw(st.lists(st.sampled_from(PARAMS), max_size=4)):
        value = draw(VALUES[name]) if draw(st.integers(0, 3)) else draw(hostile_text)
        pairs.append((name, value))
    return urlencode(pairs)


# How a world token is mangled before sending (applied when sending: the
# tokens only exist once the fixture has run).
MUTATIONS = [
    *["none"] * 20,
    "flip",
    "truncate",
    "append",
    "drop_signature",
    "alg_none",
    "alg_hs256",
    "swap_payload",
    "lowercase",
    "duplicate",
    "kid",
]


@st.composite
def forged_claims(draw) -> dict:
    """Claims for a token signed with our real key: what a bug in the issuer
    (or a stolen key) could produce. The bearer path must not crash on them."""
    claims = {
        "iss": "ISSUER",
        "sub": draw(st.sampled_from(CLIENT_IDS)),
        "aud": "AUDIENCE",
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "jti": "fuzz-jti",
        "scope": "users:read audit-log:read",
        "tid": "00000000-0000-0000-0000-000000000000",
        "sgen": 1,
    }
    for name in list(claims) + ["client_id", "nbf"]:
        how = draw(st.sampled_from(["keep", "keep", "keep", "drop", "hostile", "any"]))
        if how == "drop":
            claims.pop(name, None)
        elif how == "hostile":
            claims[name] = draw(hostile_text)
        elif how == "any":
            claims[name] = draw(json_values)
    if "client_id" not in claims and draw(st.booleans()):
        claims["client_id"] = claims.get("sub")
    return claims


@st.composite
def authorizations(draw):
    """("token", label, mutation, position) | ("forged", claims) | ("raw", value)."""
    kind = draw(st.sampled_from(["token"] * 6 + ["forged", "forged", "raw"]))
    if kind == "token":
        return (
            "token",
            draw(st.sampled_from(TOKENS)),
            draw(st.sampled_from(MUTATIONS)),
            draw(st.integers(0, 2000)),
            draw(st.sampled_from(["Bearer ", "bearer ", "BEARER  ", "Bearer\t", " Bearer "])),
        )
    if kind == "forged":
        return ("forged", draw(forged_claims()), draw(st.sampled_from([True, True, False])))
    value = draw(
        st.one_of(
            st.sampled_from(
                ["", "Bearer", "Bearer ", "Bearer a b", "Bearer ...", "Bearer e30.e30.e30"]
            ),
            st.builds(lambda t: "Bearer " + latin1(t), hostile_text),
            st.builds(basic, st.sampled_from(CLIENT_IDS), st.sampled_from(SECRETS)),
            st.builds(latin1, hostile_text),
            st.just("Bearer " + "A" * 60_000),
        )
    )
    return ("raw", value)


def _mutate(token: str, mutation: str, position: int) -> str:
    header, payload, signature = token.split(".")
    i = position % len(token)
    if mutation == "flip":
        c = token[i]
        return token[:i] + ("A" if c != "A" else "B") + token[i + 1 :]
    if mutation == "truncate":
        return token[:i]
    if mutation == "append":
        return token + ".x"
    if mutation == "drop_signature":
        return f"{header}.{payload}."
    if mutation == "alg_none":
        forged = json.loads(base64.urlsafe_b64decode(header + "=="))
        return _b64(json.dumps({**forged, "alg": "none"}).encode()) + f".{payload}."
    if mutation == "alg_hs256":
        # Algorithm confusion: HMAC keyed with the public JWK's text (built by
        # hand: PyJWT refuses to).
        forged = json.loads(base64.urlsafe_b64decode(header + "=="))
        signing_input = _b64(json.dumps({**forged, "alg": "HS256"}).encode()) + "." + payload
        jwk = json.dumps(keys.jwks()["keys"][0]).encode()
        mac = hmac.new(jwk, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(mac)
    if mutation == "swap_payload":
        return f"{payload}.{header}.{signature}"
    if mutation == "lowercase":
        return token.lower()
    if mutation == "duplicate":
        return f"{token} {token}"
    if mutation == "kid":
        forged = json.loads(base64.urlsafe_b64decode(header + "=="))
        return (
            _b64(json.dumps({**forged, "kid": "../../etc/passwd"}).encode())
            + f".{payload}.{signature}"
        )
    return token


def _authorization(spec, world) -> tuple[str, str | None]:
    """The header value, and the tenant whose data it may read (None: none)."""
    if spec[0] == "raw":
        return spec[1], None
    if spec[0] == "forged":
        claims, real_tenant = dict(spec[1]), spec[2]
        # Our issuer and audience where the strategy left them in place.
        for name, value in (("iss", issuer()), ("aud", audience())):
            if claims.get(name) in ("ISSUER", "AUDIENCE"):
                claims[name] = value
        if real_tenant and isinstance(claims.get("sub"), str):
            client = next((c for c in world.clients.values() if c.client_id == claims["sub"]), None)
            if client is not None:
                claims = {**claims, "tid": str(client.tenant_id)}
        key = keys.signing_key()
        try:
            token = jwt.encode(
                claims,
                key.private_key,
                algorithm="ES256",
                headers={"kid": key.kid, "typ": "at+jwt"},
            )
        except (TypeError, ValueError):
            return "Bearer x.y.z", None  # not even encodable
        return "Bearer " + token, "forged"
    _, label, mutation, position, scheme = spec
    token = _mutate(world.tokens[label], mutation, position)
    return scheme + token, LIVE.get(label)


@st.composite
def api_requests(draw):
    headers = draw(random_headers) if not draw(st.integers(0, 2)) else {}
    headers.pop("HTTP_HOST", None)  # see test_fuzz_console
    return (
        draw(st.sampled_from(["GET"] * 40 + HTTP_METHODS)),
        draw(api_queries()),
        draw(authorizations()) if draw(st.integers(0, 9)) else None,
        headers,
        draw(st.one_of(st.just(b""), st.just(b""), st.binary(max_size=30))),
    )


def test_bearer_apis_survive_hostile_requests(fuzz_world, anonymous):
    statuses: Counter[int] = Counter()
    before = snapshot()

    # Each example goes to every bearer API: one generation, three requests.
    @fuzz_settings(max_examples=1100)
    @given(request=api_requests())
    def run(request):
        method, query, spec, headers, body = request
        tenant = None
        if spec is not None:
            value, tenant = _authorization(spec, fuzz_world)
            headers = {**headers, "HTTP_AUTHORIZATION": value}
        for path in PATHS:
            sent = Sent(method, path, query, body, "application/octet-stream", headers)
            with fuzz_example():
                response = send(anonymous, sent)
                statuses[response.status_code] += 1
                check_api_response(response, sent)
                if response.status_code in (401, 403):
                    assert "Bearer" in response["WWW-Authenticate"], sent
                if response.status_code == 200 and method == "GET":
                    _check_tenant(response, tenant, sent)
                assert_unchanged(before, snapshot(), what=str(sent))

    run()
    assert statuses[200] and statuses[400] and statuses[401] and statuses[403], statuses


def _check_tenant(response, tenant: str | None, sent: Sent) -> None:
    assert tenant is not None, f"read with a token that should be refused: {sent}"
    data = json.loads(response.fuzz_content)
    if "users" in data:
        names = {user["username"] for user in data["users"]}
        allowed = USERS if tenant == "forged" else {tenant: USERS[tenant]}
    else:
        names = {event["clientName"] for event in data["events"]} - {""}
        allowed = CLIENT_NAMES if tenant == "forged" else {tenant: CLIENT_NAMES[tenant]}
    assert any(names <= own for own in allowed.values()), f"another tenant's data for {sent}"


def test_bearer_apis_never_accept_a_changed_token(fuzz_world, anonymous):
    """Any change to a valid token that changes what it says is refused."""

    @fuzz_settings(max_examples=150)
    @given(position=st.integers(0, 10_000), char=st.sampled_from("AQgw_-0.=~ "))
    def run(position, char):
        token = fuzz_world.tokens["siem"]
        header_and_payload = token.rsplit(".", 1)[0]
        i = position % len(header_and_payload)
        if header_and_payload[i] == char:
            return
        changed = header_and_payload[:i] + char + token[i + 1 :]
        sent = Sent("GET", "/v1/users", headers={"HTTP_AUTHORIZATION": "Bearer " + changed})
        response = send(anonymous, sent)
        check_api_response(response, sent)
        assert response.status_code == 401, sent

    run()


def test_valid_tokens_still_work_after_the_fuzzing(fuzz_world, anonymous):
    # The positive control: the world's tokens do read.
    for label in LIVE:
        sent = replace(
            Sent("GET", "/v1/users"),
            headers={"HTTP_AUTHORIZATION": "Bearer " + fuzz_world.tokens[label]},
        )
        assert send(anonymous, sent).status_code == 200


@pytest.mark.parametrize(
    "query", ["since=9999-12-31T23:59:59-23:59", "until=0001-01-01T00:00:00%2B23:59"]
)
def test_an_out_of_range_since_is_a_400(fuzz_world, anonymous, query):
    sent = Sent(
        "GET",
        "/v1/audit-log",
        query,
        headers={"HTTP_AUTHORIZATION": "Bearer " + fuzz_world.tokens["siem"]},
    )
    response = anonymous.generic(sent.method, sent.path, QUERY_STRING=query, **sent.headers)
    assert response.status_code == 400


def test_control_characters_in_every_parameter_and_claim(fuzz_world, anonymous):
    """Not left to chance: each control value in each parameter, and in each
    claim of a token signed with our key."""
    before = snapshot()
    token = {"HTTP_AUTHORIZATION": "Bearer " + fuzz_world.tokens["siem"]}
    for name in PARAMS + ["x\x00"]:
        for value in CONTROL:
            query = urlencode({name: value})
            for path in PATHS:
                sent = Sent("GET", path, query, headers=token)
                with fuzz_example():
                    response = send(anonymous, sent)
                    check_api_response(response, sent)
                    assert_unchanged(before, snapshot(), what=str(sent))
    siem = fuzz_world.clients["siem"]
    valid = {
        "iss": issuer(),
        "aud": audience(),
        "sub": siem.client_id,
        "client_id": siem.client_id,
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "jti": "jti",
        "scope": "users:read",
        "tid": str(siem.tenant_id),
        "sgen": siem.secret_generation,
    }
    for claim in valid:
        for value in CONTROL:
            spec = ("forged", {**valid, claim: value}, False)
            header, _ = _authorization(spec, fuzz_world)
            sent = Sent("GET", "/v1/users", headers={"HTTP_AUTHORIZATION": header})
            with fuzz_example():
                response = send(anonymous, sent)
                check_api_response(response, sent)


def test_a_nul_byte_in_client_id_is_not_a_server_error(fuzz_world, anonymous):
    response = anonymous.get(
        "/v1/audit-log",
        QUERY_STRING="clientId=key-%00",
        HTTP_AUTHORIZATION="Bearer " + fuzz_world.tokens["siem"],
    )
    # No client ID can hold a NUL byte (PostgreSQL would refuse the query).
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_nul_byte_in_a_signed_jti_is_a_401(fuzz_world, anonymous):
    siem = fuzz_world.clients["siem"]
    claims = {
        "iss": issuer(),
        "aud": audience(),
        "sub": siem.client_id,
        "client_id": siem.client_id,
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "jti": "a\x00b",
        "scope": "users:read",
        "tid": str(siem.tenant_id),
        "sgen": siem.secret_generation,
    }
    header, _ = _authorization(("forged", claims, False), fuzz_world)
    response = anonymous.get("/v1/users", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
