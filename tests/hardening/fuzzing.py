"""What the property-based (hypothesis) tests share: hostile input, one way to
send it, and the checks every response must pass.

Each generated request goes through `send()`, which counts it (the session
summary prints the total; the full run must reach MIN_REQUESTS) and fails the
example on any server error: a 5xx status, an exception the test client caught
(`raise_request_exception=False` turns it into a status, `response.exc_info`
still has it), or an ERROR log record with a traceback, which is how an
exception swallowed by a view or by after-response work shows itself.

Every example runs in `fuzz_example()`: a savepoint rolled back afterwards, so
examples are independent and the fixtures are built once per test function,
and a snapshot of everything saved, compared before the rollback.

Determinism: `derandomize=True` and no example database, so CI and a laptop
generate the same requests. HARDENING_FUZZ_SCALE=10 (an environment variable)
multiplies every max_examples for a deeper run by hand.
"""

import base64
import json
import logging
import os
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection, transaction
from hypothesis import HealthCheck, assume, currently_in_test_context, settings
from hypothesis import strategies as st

from apiclients.models import ApiClient, AuditEvent, Membership, Tenant
from oauth.models import RevokedToken, SigningKey

MIN_REQUESTS = 10_000
# Requests sent, per test node id (the session summary adds them up).
COUNTS: Counter[str] = Counter()
# Requests that met a server error (hypothesis replays and shrinks a failing
# example, so one bug usually counts several times).
SERVER_ERRORS: Counter[str] = Counter()
# Statuses answered, per test node id, to show what the generators reached.
STATUSES: dict[str, Counter[int]] = {}
CURRENT_TEST = {"id": "?"}
SCALE = max(1, int(os.environ.get("HARDENING_FUZZ_SCALE", "1")))


def fuzz_settings(max_examples: int):
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# -- hostile values ------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\t\r\n",
    "\r\nSet-Cookie: pwned=1",
    "\x1b[31mred\x1b[0m",
    "\x7f\x80\x9f",
    "%00",
    "%",
    "%ZZ",
    "%FF%FE",
    "%C0%AF",
    "+",
    "&",
    "=",
    ";",
    ":",
    "::::",
    "'; DROP TABLE apiclients_apiclient; --",
    "' OR '1'='1",
    '" OR ""="',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "{{ 7*7 }}",
    "{% debug %}",
    "${jndi:ldap://example.invalid/a}",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%s%s%s%n",
    "\u202eevil\u202c",
    "\ufeffBOM",
    "\u200b",
    "😀" * 20,
    "Ω≈ç√∫",
    "ÅÍÎÏ˝ÓÔÒÚÆ☃",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    "NaN",
    "-Infinity",
    "-1",
    "0",
    "-0",
    "1e309",
    "99999999999999999999999999999",
    "9" * 5000,
    "0x7fffffff",
    "key-",
    "acsec_",
    "acsec_" + "A" * 43,
    "http://[",
    "//evil.example/administration/integrations/api-clients/",
    "https://evil.example/",
    "A" * 101,
    "A" * 1001,
    "A" * 20_000,
    "10.0.0.0/8",
    "::1",
    "999.999.999.999",
    "fe80::1%eth0",
    "2001:db8::/129",
    "1.2.3.4/33",
    "10.0.0.5/24",
]

# Text from the whole of Unicode (control characters and NUL included) except
# lone surrogates, which cannot be UTF-8 encoded at all.
CHARACTERS = st.characters(blacklist_categories=("Cs",))
nasty_text = st.sampled_from(NASTY)
# What databases and parsers choke on most (PostgreSQL refuses NUL in any
# query): every test also sends each of these in every parameter, not
# leaving them to chance.
CONTROL = ["\x00", "a\x00b", "\x00" * 3, "\r\n", "\x1b[0m", "\x7f", "\u202e", "\ud7ff\ue000"]
hostile_text = st.one_of(st.text(CHARACTERS, max_size=40), nasty_text, st.sampled_from(CONTROL))
# Raw bytes that are not UTF-8: lone continuation bytes, overlong forms,
# encoded surrogates, truncated sequences, Latin-1, UTF-16.
INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\x80abc",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    "caf\xe9".encode("latin-1"),
    "grant_type".encode("utf-16"),
]
hostile_bytes = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(INVALID_UTF8),
    st.builds(
        lambda a, b, c: a + b + c,
        st.binary(max_size=8),
        st.sampled_from(INVALID_UTF8),
        st.binary(max_size=8),
    ),
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=8,
)
# JSON texts that json.dumps would never write.
RAW_JSON = [
    "",
    " ",
    "{",
    "}",
    "[" * 5000 + "]" * 5000,
    "[" * 200_000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "1" * 5000,
    "1e99999",
    "-1e-99999",
    "NaN",
    "Infinity",
    '{"grant_type": NaN}',
    '{"client_id": "a", "client_id": "b"}',
    '{"client_secret": "x", "client_password": "y", "client_id": "z"}',
    '\ufeff{"grant_type": "client_credentials"}',
    '{"grant_type": "client_credentials"} trailing',
    "{'single': 'quotes'}",
    '{"a": "\\ud800"}',
    '{"a": "\\u0000"}',
    "null",
    "true",
    "[]",
    '"string"',
    "0",
    '{"' + "k" * 100 + '": 1}',
    json.dumps({f"k{i}": "v" for i in range(40)}),
]

HTTP_METHODS = [
    "GET",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "TRACE",
    "PROPFIND",
    "X",
]

CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded; charset=utf-16",
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data; boundary=",
    "text/plain",
    "text/html",
    "application/xml",
    "",
    ";",
    "application/json; charset=",
    "application/json;;;===",
    "\x00",
    "a" * 2000,
]

# Header names as WSGI environ keys, with what the app might read from them.
HEADER_NAMES = [
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_REAL_IP",
    "HTTP_COOKIE",
    "HTTP_ORIGIN",
    "HTTP_REFERER",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_USER_AGENT",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_RANGE",
    "HTTP_X_CSRFTOKEN",
    "HTTP_HX_REQUEST",
    "HTTP_HX_TARGET",
    "HTTP_HX_CURRENT_URL",
    "HTTP_HX_HISTORY_RESTORE_REQUEST",
    "HTTP_HX_TRIGGER",
    "HTTP_HX_PROMPT",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_X_HTTP_METHOD_OVERRIDE",
    "HTTP_HOST",
    "HTTP_X_REQUESTED_WITH",
]


def latin1(value: str) -> str:
    """What a WSGI server hands the app for a header: text decoded as latin-1
    from the bytes on the wire."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


header_values = st.one_of(
    st.builds(latin1, hostile_text),
    st.sampled_from(["true", "false", "1", "api-client-results", "audit-results", "http://["]),
    st.builds(lambda b: b.decode("latin-1"), hostile_bytes),
)
random_headers = st.dictionaries(
    st.one_of(
        st.sampled_from(HEADER_NAMES),
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=12).map(
            lambda name: "HTTP_X_" + name
        ),
    ),
    header_values,
    max_size=4,
)


def percent_encode_bytes(raw: bytes) -> str:
    return quote(raw, safe="")


@st.composite
def query_strings(draw, names: list[str]) -> str:
    """A raw QUERY_STRING: well-formed pairs with hostile values, repeated
    names, percent-escapes that are not UTF-8, or plain garbage."""
    kind = draw(st.sampled_from(["none", "pairs", "pairs", "pairs", "raw", "bytes", "many"]))
    if kind == "none":
        return ""
    if kind == "pairs":
        pairs = draw(
            st.lists(
                st.tuples(st.one_of(st.sampled_from(names), hostile_text), hostile_text),
                max_size=5,
            )
        )
        return urlencode(pairs)
    if kind == "raw":
        return latin1(draw(hostile_text))
    if kind == "bytes":
        name = draw(st.sampled_from(names))
        return f"{name}={percent_encode_bytes(draw(hostile_bytes))}"
    # More parameters than Django accepts (DATA_UPLOAD_MAX_NUMBER_FIELDS).
    return "&".join(f"p{i}=1" for i in range(draw(st.sampled_from([33, 1001, 5000]))))


@st.composite
def form_bodies(draw, fields: dict) -> bytes:
    """An urlencoded body: `fields` maps a name to a strategy of its plausible
    values; each is kept, dropped, replaced by hostile text or repeated."""
    pairs: list[tuple[str, str]] = []
    for name, values in fields.items():
        how = draw(st.sampled_from(["keep", "keep", "keep", "drop", "hostile", "repeat"]))
        if how == "drop":
            continue
        value = draw(hostile_text) if how == "hostile" else draw(values)
        if isinstance(value, list):
            pairs.extend((name, v) for v in value)
        else:
            pairs.append((name, value))
        if how == "repeat":
            pairs.append((name, draw(hostile_text)))
    pairs.extend(draw(st.lists(st.tuples(hostile_text, hostile_text), max_size=2)))
    body = urlencode(pairs).encode()
    tail = draw(st.sampled_from([b"", b"", b"", b"&", b"&&=", b"&%ZZ=%FF", b"&name=%C0%AF"]))
    return body + tail


def bodies_with_extremes(plain: st.SearchStrategy) -> st.SearchStrategy:
    """`plain` bodies, and now and then an empty, binary or huge one."""
    return st.one_of(
        plain,
        plain,
        plain,
        st.just(b""),
        hostile_bytes,
        st.sampled_from([b"x" * 17_000, b"a=" + b"A" * 70_000, b"&" * 3000]),
    )


# -- the world every fuzz test starts from --------------------------------------

# Fixed IDs and secrets, so that strategies can name them (hypothesis draws
# before a fixture exists). Shaped like real ones.
SIEM_ID = "key-FuzzSiemExport000000"
RESTRICTED_ID = "key-FuzzRestricted000000"
INACTIVE_ID = "key-FuzzInactive00000000"
GLOBEX_ID = "key-FuzzGlobexSync000000"
SIEM_SECRET = "acsec_" + "S" * 43
RESTRICTED_SECRET = "acsec_" + "R" * 43
INACTIVE_SECRET = "acsec_" + "I" * 43
GLOBEX_SECRET = "acsec_" + "G" * 43
CLIENT_IDS = [SIEM_ID, RESTRICTED_ID, INACTIVE_ID, GLOBEX_ID]
SECRETS = [SIEM_SECRET, RESTRICTED_SECRET, INACTIVE_SECRET, GLOBEX_SECRET]


@dataclass
class World:
    """The saved state every example starts from (see conftest.fuzz_world)."""

    users: dict
    clients: dict  # name -> ApiClient
    tokens: dict = field(default_factory=dict)  # label -> access token


# What a refused request must leave alone: every row of these tables. Audit
# events may be added (failed token requests are audited), never altered.
def _snapshot_tables():
    User = get_user_model()
    return {
        "clients": ApiClient,
        "users": User,
        "memberships": Membership,
        "tenants": Tenant,
        "signing_keys": SigningKey,
        "revoked": RevokedToken,
        "sessions": Session,
        "events": AuditEvent,
    }


def snapshot() -> dict:
    """Every row of those tables, read with plain SQL (the ORM costs more than
    the queries, and this runs after every example), as lists of dicts."""
    state = {}
    with connection.cursor() as cursor:
        for key, model in _snapshot_tables().items():
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column)
            cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")  # noqa: S608
            names = [column[0] for column in cursor.description]
            state[key] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return state


def _without(rows: list[dict], fields: set[str]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in fields} for row in rows]


def assert_unchanged(before: dict, after: dict, *, allow: frozenset = frozenset(), what: str):
    """`allow` names what a successful request may change: "redeemed" (a
    token's last-redeemed stamp), "login" (a sign-in's session and
    last_login), "revoked" (a revocation)."""
    if after == before:
        return
    ignore = {"last_redeemed_at"} if "redeemed" in allow else set()
    assert _without(after["clients"], ignore) == _without(before["clients"], ignore), (
        f"an API client changed after {what}"
    )
    users_ignore = {"last_login"} if "login" in allow else set()
    assert _without(after["users"], users_ignore) == _without(before["users"], users_ignore), (
        f"a user changed after {what}"
    )
    for key in ("memberships", "tenants", "signing_keys"):
        assert after[key] == before[key], f"{key} changed after {what}"
    if "revoked" not in allow:
        assert after["revoked"] == before["revoked"], f"a token was revoked by {what}"
    if "login" not in allow:
        assert after["sessions"] == before["sessions"], f"sessions changed after {what}"
    old = before["events"]
    assert after["events"][: len(old)] == old, f"an audit event was altered after {what}"


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back():
    """Runs the block in a savepoint that is always rolled back."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


# -- sending and checking -------------------------------------------------------


class _ErrorRecords(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@dataclass
class Sent:
    """One request as sent, for failure messages."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    content_type: str | None = None
    headers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        body = (
            self.body
            if len(self.body) <= 300
            else self.body[:300] + b"...(%d bytes)" % len(self.body)
        )
        headers = {k: (v if len(v) <= 200 else v[:200] + "...") for k, v in self.headers.items()}
        query = self.query if len(self.query) <= 300 else self.query[:300] + "..."
        return (
            f"{self.method} {self.path}?{query} content_type={self.content_type!r} "
            f"headers={headers!r} body={body!r}"
        )


def hits_django_query_limit_bug(sent: Sent) -> bool:
    """Django 5.2 parses the query string while it builds the request when the
    Content-Type names a charset (HttpRequest.encoding's setter asks
    hasattr(self, "GET")), so more than DATA_UPLOAD_MAX_NUMBER_FIELDS query
    parameters raise before any middleware. config/wsgi.py answers those with
    a 400 (test_fuzz_token.test_too_many_query_parameters_with_a_charset_are_a_400
    calls it as gunicorn does), but the test client builds its requests
    without config/wsgi.py, so the generators step around this one case."""
    content_type = (sent.content_type or "") + sent.headers.get("CONTENT_TYPE", "")
    return "charset=" in content_type.lower() and sent.query.count("&") >= 1000


def send(client, sent: Sent):
    """Sends one request through the Django test client and fails on any
    server error, however it shows."""
    if currently_in_test_context():
        assume(not hits_django_query_limit_bug(sent))
    COUNTS[CURRENT_TEST["id"]] += 1
    extra = dict(sent.headers)
    if sent.query:
        extra["QUERY_STRING"] = sent.query
    kwargs = {}
    if sent.content_type is not None:
        kwargs["content_type"] = sent.content_type
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        response = client.generic(sent.method, sent.path, data=sent.body, **kwargs, **extra)
        if response.streaming:
            # Errors inside a streamed body happen while it is read.
            response.fuzz_content = b"".join(response.streaming_content)
        else:
            response.fuzz_content = response.content
    finally:
        root.removeHandler(handler)
    problems = []
    if response.status_code >= 500:
        problems.append(f"status {response.status_code}")
    if getattr(response, "exc_info", None):
        problems.append("exception:\n" + "".join(traceback.format_exception(*response.exc_info)))
    for record in handler.records:
        if record.name.startswith("django.security.") and 400 <= response.status_code < 500:
            # Django's own report of a SuspiciousOperation it answered with a
            # 400 (a foreign Host, too many fields): the intended outcome.
            continue
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        problems.append(f"logged at {record.levelname}: {text}")
    if problems:
        SERVER_ERRORS[CURRENT_TEST["id"]] += 1
        pytest.fail(f"server error for {sent}:\n" + "\n".join(problems), pytrace=False)
    STATUSES.setdefault(CURRENT_TEST["id"], Counter())[response.status_code] += 1
    body = response.fuzz_content
    assert b"Traceback" not in body, f"a stack trace in the response to {sent}"
    for secret in SECRETS:
        assert secret.encode() not in body, f"a secret echoed in the response to {sent}"
    return response


def check_api_response(response, sent: Sent) -> None:
    """An API answers 2xx or a clear 4xx in JSON with an `error` member."""
    status = response.status_code
    assert 200 <= status < 300 or 400 <= status < 500, f"{status} for {sent}"
    if status < 400:
        return
    assert response["Content-Type"].startswith("application/json"), (
        f"{status} {response['Content-Type']} (not JSON) for {sent}"
    )
    if sent.method == "HEAD":
        return  # no body to read
    data = json.loads(response.fuzz_content)
    assert isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"], (
        f"{status} without an error member for {sent}: {response.fuzz_content[:200]!r}"
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@contextmanager
def fuzz_example():
    """One example: a clean cache (rate limits start afresh) and a savepoint
    rolled back afterwards. Every example starts from the same saved state,
    so the test takes its snapshot once, before the first."""
    cache.clear()
    with rolled_back():
        yield
