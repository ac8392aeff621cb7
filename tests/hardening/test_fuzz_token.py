"""Hostile requests at the token endpoint (both paths), introspection and
revocation: every answer is a 2xx or a clear JSON 4xx, a token goes only to a
client that proved its secret, and nothing saved changes on a refusal."""

import base64
import io
import json
from collections import Counter
from dataclasses import replace
from urllib.parse import quote, urlencode

import jwt
from hypothesis import given
from hypothesis import strategies as st

from apiclients.catalog import ALL_SCOPES
from tests.hardening.fuzzing import (
    CLIENT_IDS,
    CONTENT_TYPES,
    CONTROL,
    GLOBEX_ID,
    HTTP_METHODS,
    INACTIVE_ID,
    RAW_JSON,
    RESTRICTED_ID,
    SECRETS,
    SIEM_ID,
    Sent,
    assert_unchanged,
    basic,
    bodies_with_extremes,
    check_api_response,
    form_bodies,
    fuzz_example,
    fuzz_settings,
    hostile_bytes,
    hostile_text,
    json_values,
    latin1,
    query_strings,
    random_headers,
    send,
    snapshot,
)

TOKEN_PATHS = ["/v1/oauth", "/api/v3/oauth/token"]
PARAMS = ["grant_type", "client_id", "client_secret", "client_password", "scope", "token"]
GRANTS = {
    SIEM_ID: {"users:read", "audit-log:read", "alerts:read", "alerts:write", "introspection:read"},
    RESTRICTED_ID: {"users:read"},
    GLOBEX_ID: {"users:read", "audit-log:read"},
}
# Peer addresses as a WSGI server reports them; 10.0.0.0/8 and 2001:db8::/32
# are the restricted client's allowlist.
REMOTE_ADDRS = ["127.0.0.1", "10.1.2.3", "203.0.113.9", "2001:db8::5", "::ffff:10.0.0.1", "::1"]
# Stand-ins for the world's tokens (issued per test run), replaced before
# sending. Only letters: they survive form and JSON encoding unchanged.
TOKEN_PLACEHOLDERS = {
    "TOKENxSIEMx": "siem",
    "TOKENxUSERSx": "siem_users",
    "TOKENxGLOBEXx": "globex",
    "TOKENxINACTIVEx": "inactive",
    "TOKENxREVOKEDx": "revoked",
}

grant_types = st.one_of(
    st.sampled_from(
        [
            "client_credentials",
            "client_credentials",
            "password",
            "authorization_code",
            "refresh_token",
            "CLIENT_CREDENTIALS",
            " client_credentials",
            "client_credentials\x00",
            "",
        ]
    ),
    hostile_text,
)
client_ids = st.one_of(st.sampled_from(CLIENT_IDS), st.sampled_from(SECRETS), hostile_text)
client_secrets = st.one_of(st.sampled_from(SECRETS), st.sampled_from(CLIENT_IDS), hostile_text)
scopes = st.one_of(
    st.lists(
        st.sampled_from(sorted(ALL_SCOPES) + ["oauth:read", "customer:write", "x"]), max_size=4
    ).map(" ".join),
    st.sampled_from(["", " ", "\t", "users:read  users:read", "users:read,alerts:read"]),
    hostile_text,
)
token_values = st.one_of(st.sampled_from(list(TOKEN_PLACEHOLDERS)), hostile_text)
FIELDS = {
    "grant_type": grant_types,
    "client_id": client_ids,
    "client_secret": client_secrets,
    "client_password": client_secrets,
    "scope": scopes,
    "token": token_values,
    "token_type_hint": st.sampled_from(["access_token", "refresh_token", "x"]),
}


@st.composite
def authorization_headers(draw):
    kind = draw(
        st.sampled_from(["basic", "basic", "basic", "bytes", "bad_base64", "scheme", "huge", "raw"])
    )
    if kind == "basic":
        client_id, secret = draw(client_ids), draw(client_secrets)
        if draw(st.booleans()):
            # RFC 6749 2.3.1 form-encodes both before base64.
            client_id, secret = quote(client_id, safe=""), quote(secret, safe="")
        joined = draw(
            st.sampled_from(
                [
                    f"{client_id}:{secret}",
                    f"{client_id}::{secret}",
                    f"{client_id}:{secret}:x",
                    client_id,
                ]
            )
        )
        scheme = draw(st.sampled_from(["Basic ", "basic ", "BASIC ", "Basic  ", " Basic\t"]))
        return (
            scheme
            + base64.b64encode(joined.encode()).decode()
            + draw(st.sampled_from(["", "", " ", "=", "==", "\x00"]))
        )
    if kind == "bytes":
        raw = (
            draw(hostile_bytes) + draw(st.sampled_from([b":", b"", b":\xff"])) + draw(hostile_bytes)
        )
        return "Basic " + base64.b64encode(raw).decode()
    if kind == "bad_base64":
        return "Basic " + latin1(draw(hostile_text))
    if kind == "scheme":
        return draw(
            st.sampled_from(
                [
                    "",
                    " ",
                    "Basic",
                    "Basic ",
                    "Basic ====",
                    "Bearer x",
                    "Digest u=1",
                    "Negotiate",
                    "Basic Og==",
                ]
            )
        )
    if kind == "huge":
        size = draw(st.sampled_from([4_000, 60_000]))
        return "Basic " + base64.b64encode(b"a" * size + b":" + b"b" * size).decode()
    return latin1(draw(hostile_text))


@st.composite
def json_objects(draw) -> bytes:
    obj = {}
    for name, values in FIELDS.items():
        how = draw(st.sampled_from(["keep", "keep", "drop", "drop", "any"]))
        if how == "keep":
            obj[name] = draw(values)
        elif how == "any":
            obj[name] = draw(json_values)
    obj.update(draw(st.dictionaries(hostile_text, json_values, max_size=2)))
    return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


credential_pairs = st.one_of(
    st.sampled_from(list(zip(CLIENT_IDS, SECRETS, strict=True))),
    st.sampled_from(list(zip(CLIENT_IDS, SECRETS, strict=True))),
    st.tuples(client_ids, client_secrets),
)


@st.composite
def plausible_bodies(draw) -> tuple[bytes, str | None, str | None]:
    """A request as a real client would build it, credentials in the header,
    the form or JSON, with one or two hostile twists. Returns the body, its
    content type and the Authorization header (or None)."""
    client_id, secret = draw(credential_pairs)
    params = {}
    if draw(st.integers(0, 3)):
        params["grant_type"] = draw(
            st.sampled_from(["client_credentials", None])
            if draw(st.integers(0, 2))
            else grant_types
        )
    if not draw(st.integers(0, 2)):
        params["scope"] = draw(scopes)
    if draw(st.booleans()):
        params["token"] = draw(token_values)
    how = draw(st.sampled_from(["basic", "basic", "form", "json", "json_password"]))
    authorization = None
    if how == "basic":
        authorization = basic(client_id, secret)
        if draw(st.integers(0, 4)) == 0:
            params["client_id"] = draw(st.one_of(st.just(client_id), client_ids))
    else:
        params["client_id"] = client_id
        params["client_password" if how == "json_password" else "client_secret"] = secret
    params = {name: value for name, value in params.items() if value is not None}
    if draw(st.booleans()):
        params.update(draw(st.dictionaries(hostile_text, hostile_text, max_size=2)))
    if how == "form" or (how == "basic" and draw(st.booleans())):
        return urlencode(params).encode(), FORM, authorization
    if params and not draw(st.integers(0, 4)):
        # One parameter of another JSON type.
        params[draw(st.sampled_from(sorted(params)))] = draw(json_values)
    body = json.dumps(params, ensure_ascii=draw(st.booleans())).encode()
    return body, JSON, authorization


@st.composite
def token_requests(draw, paths: list[str]) -> Sent:
    kind = draw(
        st.sampled_from(
            ["plausible"] * 5 + ["empty", "form", "json", "json_any", "raw_json", "bytes"]
        )
    )
    authorization = None
    if kind == "plausible":
        body, content_type, authorization = draw(plausible_bodies())
    elif kind == "empty":
        body, content_type = b"", draw(st.sampled_from([FORM, None, JSON]))
    elif kind == "form":
        body, content_type = draw(bodies_with_extremes(form_bodies(FIELDS))), FORM
    elif kind == "json":
        body, content_type = draw(bodies_with_extremes(json_objects())), JSON
    elif kind == "json_any":
        body, content_type = json.dumps(draw(json_values)).encode(), JSON
    elif kind == "raw_json":
        body, content_type = draw(st.sampled_from(RAW_JSON)).encode(), JSON
    else:
        body, content_type = draw(hostile_bytes), FORM
    if kind != "plausible" and draw(st.integers(0, 3)):
        authorization = draw(authorization_headers())
    if not draw(st.integers(0, 7)):
        content_type = draw(st.sampled_from(CONTENT_TYPES))
    headers = draw(random_headers) if not draw(st.integers(0, 2)) else {}
    # A foreign Host is refused before any view (see test_fuzz_console).
    headers.pop("HTTP_HOST", None)
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    if not draw(st.integers(0, 9)):
        # A Content-Length that is no number, or shorter than the body (a
        # longer one only makes a real server wait for the rest).
        headers["CONTENT_LENGTH"] = draw(
            st.one_of(
                st.sampled_from(["abc", "", "0", "-1", "1e3", "0x10"]),
                st.integers(0, len(body)).map(str),
            )
        )
    headers["REMOTE_ADDR"] = draw(st.sampled_from(REMOTE_ADDRS))
    method = draw(st.sampled_from(["POST"] * 30 + HTTP_METHODS))
    query = draw(query_strings(PARAMS)) if not draw(st.integers(0, 2)) else ""
    return Sent(
        method=method,
        path=draw(st.sampled_from(paths)),
        query=query,
        body=body,
        content_type=content_type,
        headers=headers,
    )


def _with_tokens(sent: Sent, tokens: dict) -> Sent:
    body, query = sent.body, sent.query
    for placeholder, label in TOKEN_PLACEHOLDERS.items():
        body = body.replace(placeholder.encode(), tokens[label].encode())
        query = query.replace(placeholder, tokens[label])
    return Sent(sent.method, sent.path, query, body, sent.content_type, sent.headers)


def test_token_endpoint_survives_hostile_requests(fuzz_world, anonymous):
    statuses: Counter[int] = Counter()
    before = snapshot()

    # Each example goes to both token paths: the same endpoint, twice the
    # requests for one generation (which costs more than a request).
    @fuzz_settings(max_examples=1750)
    @given(sent=token_requests(TOKEN_PATHS[:1]))
    def run(sent):
        for path in TOKEN_PATHS:
            check(replace(sent, path=path))

    def check(sent):
        with fuzz_example():
            response = send(anonymous, sent)
            statuses[response.status_code] += 1
            check_api_response(response, sent)
            if response.status_code == 200:
                # Only a client that proved its secret gets a token, with no
                # more than its grants, never the inactive one, never cached.
                data = json.loads(response.fuzz_content)
                claims = jwt.decode(data["access_token"], options={"verify_signature": False})
                assert claims["sub"] in GRANTS and claims["sub"] != INACTIVE_ID, sent
                assert set(data["scope"].split()) <= GRANTS[claims["sub"]], sent
                assert response["Cache-Control"] == "no-store"
            if response.status_code == 401:
                assert response.has_header("WWW-Authenticate"), sent
            if response.status_code == 405:
                assert response.has_header("Allow"), sent
            allow = frozenset({"redeemed"}) if response.status_code == 200 else frozenset()
            assert_unchanged(before, snapshot(), allow=allow, what=str(sent))

    run()
    # The generator reaches every outcome, not only the front door.
    assert statuses[200] and statuses[400] and statuses[401] and statuses[405], statuses


def test_introspection_and_revocation_survive_hostile_requests(fuzz_world, anonymous):
    statuses: Counter[tuple[str, int]] = Counter()
    paths = ["/v1/oauth/introspect", "/v1/oauth/revoke"]
    before = snapshot()

    @fuzz_settings(max_examples=1000)
    @given(sent=token_requests(paths[:1]))
    def run(sent):
        sent = _with_tokens(sent, fuzz_world.tokens)
        for path in paths:
            check(replace(sent, path=path))

    def check(sent):
        with fuzz_example():
            response = send(anonymous, sent)
            statuses[(sent.path, response.status_code)] += 1
            check_api_response(response, sent)
            if response.status_code == 200:
                assert response["Cache-Control"] == "no-store"
                data = json.loads(response.fuzz_content)
                if sent.path.endswith("introspect"):
                    assert isinstance(data.get("active"), bool), sent
            revoked = sent.path.endswith("revoke") and response.status_code == 200
            allow = frozenset({"revoked"}) if revoked else frozenset()
            assert_unchanged(before, snapshot(), allow=allow, what=str(sent))

    run()
    assert statuses[("/v1/oauth/introspect", 200)] and statuses[("/v1/oauth/revoke", 200)], statuses


def test_too_many_query_parameters_with_a_charset_are_a_400(db):
    """Django 5.2 parses the query string while it builds the request when the
    Content-Type names a charset, before any middleware: config/wsgi.py
    answers for it. Called as gunicorn calls it, not through the test client
    (which builds its request elsewhere)."""
    from wsgiref.util import setup_testing_defaults

    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/oauth",
        "QUERY_STRING": "&".join("a" for _ in range(1001)),
        "CONTENT_TYPE": "application/json; charset=utf-8",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
    }
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(application(environ, start_response))
    assert seen["status"].startswith("400")
    assert json.loads(body)["error"] == "invalid_request"


def test_control_characters_in_every_parameter(fuzz_world, anonymous):
    """Not left to chance: each control value in each parameter, in the form,
    the JSON body, the query string and the Basic credentials."""
    before = snapshot()
    paths = TOKEN_PATHS + ["/v1/oauth/introspect", "/v1/oauth/revoke"]
    valid = {"grant_type": "client_credentials", "client_id": SIEM_ID, "client_secret": SECRETS[0]}
    for name in [*PARAMS, "x\x00"]:
        for value in CONTROL:
            params = {**valid, name: value}
            sents = [
                Sent("POST", "", "", urlencode(params).encode(), FORM),
                Sent("POST", "", "", json.dumps(params).encode(), JSON),
                Sent("POST", "", urlencode({name: value}), b"", FORM),
                Sent(
                    "POST",
                    "",
                    "",
                    b"",
                    FORM,
                    {
                        "HTTP_AUTHORIZATION": basic(value, SECRETS[0])
                        if name == "client_id"
                        else basic(SIEM_ID, value)
                    },
                ),
            ]
            for sent in sents:
                for path in paths:
                    one = replace(sent, path=path)
                    with fuzz_example():
                        response = send(anonymous, one)
                        check_api_response(response, one)
                        allow = {"redeemed", "revoked"} if response.status_code == 200 else set()
                        assert_unchanged(before, snapshot(), allow=frozenset(allow), what=str(one))
