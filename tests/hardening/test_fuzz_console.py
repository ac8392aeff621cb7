"""Hostile input at every console form and page: create, edit, rotate, reset,
revoke, delete, the list's search/sort/page, the drawer, the audit log and
its export, sign-in; random methods, headers (htmx ones included), bodies,
client IDs in the path, and every role. No 5xx; a refused form re-renders
with its errors inline (200) or is a 4xx; and nothing saved changes unless
the request was a success."""

import re
from collections import Counter
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from apiclients.forms import GRANT_CHOICES
from apiclients.models import ApiClient
from tests.conftest import PASSWORD
from tests.hardening.conftest import signed_in
from tests.hardening.fuzzing import (
    CONTENT_TYPES,
    CONTROL,
    HTTP_METHODS,
    SIEM_ID,
    Sent,
    assert_unchanged,
    bodies_with_extremes,
    form_bodies,
    fuzz_example,
    fuzz_settings,
    hostile_bytes,
    hostile_text,
    latin1,
    query_strings,
    random_headers,
    send,
    snapshot,
)

# Hostile usernames make hostile sign-in throttle keys; fine on Redis and
# local memory, which accept any key (reported for memcached).
pytestmark = pytest.mark.filterwarnings("ignore::django.core.cache.backends.base.CacheKeyWarning")

BASE = "/administration/integrations/api-clients/"
CREATE = BASE + "new/"
EDIT = f"{BASE}{SIEM_ID}/edit/"
FORM = "application/x-www-form-urlencoded"
REVEAL = re.compile(rb"acsec_[A-Za-z0-9_-]{43}")
# An inline error as the templates render it (Django's error list) or a
# conflict notice.
INLINE_ERROR = (b'class="errorlist', b"field--error", b"alert--error", b"alert--warning")

# -- values ---------------------------------------------------------------------

ip_entries = st.one_of(
    st.sampled_from(
        [
            "203.0.113.7",
            "10.0.0.0/8",
            "2001:db8::1",
            "2001:db8::/32",
            "::ffff:10.0.0.1",
            "0.0.0.0/0",
            "::/0",
            "10.0.0.5/24",
            "1.2.3.4/33",
            "256.1.1.1",
            "1.2.3",
            "01.02.03.04",
            "fe80::1%eth0",
            "::1/129",
            "2001:db8::g",
            "10.0.0.0/-1",
            "/",
            "*",
            "localhost",
        ]
    ),
    st.ip_addresses().map(str),
    hostile_text,
)
ip_lists = st.one_of(
    st.builds(
        lambda entries, sep: sep.join(entries),
        st.lists(ip_entries, max_size=6),
        st.sampled_from(["\n", ",", ", ", ";", " ", "\t", "\r\n", "\x00", "\u2028"]),
    ),
    # Past the limit of 100 entries.
    st.integers(95, 130).map(lambda n: "\n".join(f"10.0.{i // 250}.{i % 250}" for i in range(n))),
)
names = st.one_of(
    st.sampled_from(
        [
            "Splunk export",
            "SIEM export",
            "siem EXPORT",
            " SIEM export ",
            "Restricted",
            "Globex sync",
            "A" * 100,
            "A" * 101,
            "   ",
            "Tab\tname",
            "New\nline",
            "Nul\x00byte",
            "\u202eevil",
        ]
    ),
    hostile_text,
)
grant_values = st.lists(
    st.one_of(
        st.sampled_from([value for value, _ in GRANT_CHOICES]),
        st.sampled_from(["oauth:read", "customer:write", "audit-log:write", "users:admin", ""]),
        hostile_text,
    ),
    max_size=5,
)
dates = st.one_of(
    st.sampled_from(
        [
            "",
            "2099-12-31",
            "2020-01-01",
            "9999-12-31",
            "9001-01-01",
            "0001-01-01",
            "2027-02-30",
            "tomorrow",
        ]
    ),
    st.dates().map(str),
    hostile_text,
)
versions = st.one_of(
    st.sampled_from(["1", "2", "0", "-1", "", "1.0", "99999999999999999999"]),
    st.integers(-(2**70), 2**70).map(str),
    hostile_text,
)
FORM_FIELDS = {
    "name": names,
    "description": st.one_of(st.just("Nightly export"), hostile_text, st.just("D" * 1001)),
    "grants": grant_values,
    "ip_mode": st.sampled_from(["all", "restricted", "restricted", "ALL", "", "both"]),
    "ip_allowlist": ip_lists,
    "status": st.sampled_from(["active", "inactive", "Active", "", "deleted"]),
    "expires_on": dates,
    "version": versions,
    "overlap": st.sampled_from(["1h", "24h", "7d", "", "0", "1y", "-1h"]),
}
HTMX_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_HX_REQUEST": st.sampled_from(["true", "false", ""]),
        "HTTP_HX_TARGET": st.sampled_from(["api-client-results", "audit-results", "x", ""]),
        "HTTP_HX_CURRENT_URL": st.one_of(
            st.sampled_from(
                [
                    "http://testserver" + BASE + "?q=a&sort=name",
                    BASE + "?page=2",
                    "http://[",
                    "http://evil.example" + BASE,
                    "//evil.example" + BASE,
                    "javascript:alert(1)",
                ]
            ),
            st.builds(latin1, hostile_text),
        ),
        "HTTP_HX_HISTORY_RESTORE_REQUEST": st.sampled_from(["true", "false"]),
    },
)


@st.composite
def console_headers(draw) -> dict:
    headers = draw(HTMX_HEADERS)
    if not draw(st.integers(0, 3)):
        headers.update(draw(random_headers))
    # A Host not in ALLOWED_HOSTS has its own test below.
    headers.pop("HTTP_HOST", None)
    return headers


@st.composite
def form_posts(draw) -> Sent:
    """A create/edit/rotate form as a browser would post it, with hostile
    twists; now and then a body that is no form at all."""
    body = draw(bodies_with_extremes(form_bodies(FORM_FIELDS)))
    content_type = FORM if draw(st.integers(0, 7)) else draw(st.sampled_from(CONTENT_TYPES))
    method = draw(st.sampled_from(["POST"] * 25 + HTTP_METHODS))
    query = draw(query_strings(["q", "back", "next"])) if not draw(st.integers(0, 4)) else ""
    return Sent(method, CREATE, query, body, content_type, draw(console_headers()))


QUERY_PARAMS = {
    "q": st.one_of(st.sampled_from(["SIEM", "key-Fuzz", "%", "_", "\\"]), hostile_text),
    "sort": st.sampled_from(
        ["name", "-name", "created", "-created", "last_redeemed", "-last_redeemed", "x", "--name"]
    ),
    "show": st.sampled_from(["", "active", "inactive", "expiring", "expired", "overlap", "nope"]),
    "page": st.one_of(
        st.sampled_from(["1", "2", "0", "-1", "last", "1e9", "99999999999999999999999"]),
        hostile_text,
    ),
    "back": st.one_of(
        st.sampled_from(
            [BASE + "?q=a", "http://[", "//evil.example" + BASE, "https://evil.example/"]
        ),
        hostile_text,
    ),
    "client": st.one_of(st.sampled_from([SIEM_ID, "SIEM", ""]), hostile_text),
    "action": st.sampled_from(["", "client.created", "token.failed", "nope"]),
    "format": st.sampled_from(["", "csv", "CSV", "json"]),
    "next": st.one_of(
        st.sampled_from(["/", "//evil.example/", "https://evil.example/"]), hostile_text
    ),
}


@st.composite
def page_queries(draw) -> str:
    if not draw(st.integers(0, 4)):
        return draw(query_strings(list(QUERY_PARAMS)))
    pairs = []
    for name in draw(st.lists(st.sampled_from(list(QUERY_PARAMS)), max_size=4)):
        pairs.append(
            (name, draw(QUERY_PARAMS[name]) if draw(st.integers(0, 3)) else draw(hostile_text))
        )
    return urlencode(pairs)


client_id_segments = st.one_of(
    st.sampled_from(
        [
            SIEM_ID,
            "key-FuzzGlobexSync000000",  # another tenant's: a 404
            "key-nope",
            "..",
            "%2e%2e",
            "%00",
            "%2F",
            "a" * 300,
            quote("key-\x00", safe=""),
        ]
    ),
    st.builds(lambda t: quote(t, safe=""), hostile_text),
    st.builds(lambda b: quote(b, safe=""), hostile_bytes),
)
ACTIONS = [
    "",
    "edit/",
    "reset-secret/",
    "rotate-secret/",
    "revoke-old-secret/",
    "lift-lockout/",
    "delete/",
]


def _check_console(response, sent: Sent) -> None:
    status = response.status_code
    assert status < 500, sent
    if 300 <= status < 400:
        # Redirects stay on this site.
        location = urlsplit(response["Location"])
        assert not location.scheme and not location.netloc, (response["Location"], sent)


def _form_outcome(response, sent: Sent, before: dict, after: dict) -> str:
    """Checks a form POST by an admin and says what it did: "saved" (an edit,
    204 or a redirect to the client), "revealed" (a create or a rotation: the
    one-time reveal of a new secret) or "refused"."""
    status, body = response.status_code, response.fuzz_content
    if status == 204 or (status == 302 and "/accounts/login/" not in response["Location"]):
        return "saved"
    if status == 200 and after["clients"] != before["clients"]:
        # A new secret, one the request did not carry (a name can look like one).
        assert set(REVEAL.findall(body)) - set(REVEAL.findall(sent.body)), sent
        return "revealed"
    if status == 200 and sent.method == "POST":
        assert any(marker in body for marker in INLINE_ERROR), (
            f"a refused form without an inline error for {sent}"
        )
    else:
        # A page (GET), sign in again (a Cookie header replaced the session),
        # or a 4xx.
        assert status in (200, 302) or 400 <= status < 500, (status, sent)
    assert_unchanged(before, after, what=str(sent))
    return "refused"


def _assert_only_client_changed(before: dict, after: dict, *, pk: int | None, sent: Sent):
    """A successful save: other clients and everything else stay as they were."""
    others_before = [c for c in before["clients"] if c["id"] != pk]
    others_after = [
        c
        for c in after["clients"]
        if c["id"] != pk and c["id"] in {r["id"] for r in before["clients"]}
    ]
    assert others_after == others_before, f"another API client changed after {sent}"
    for key in ("users", "memberships", "tenants", "signing_keys", "revoked", "sessions"):
        assert after[key] == before[key], f"{key} changed after {sent}"
    assert after["events"][: len(before["events"])] == before["events"]


# -- the tests ------------------------------------------------------------------


def test_create_and_edit_forms_survive_hostile_input(fuzz_world):
    alice = signed_in(fuzz_world.users["alice"])
    siem_pk = fuzz_world.clients["siem"].pk
    before = snapshot()
    outcomes: Counter[tuple[str, str]] = Counter()

    # Each body goes to the create form and to the edit form (same fields),
    # and to the rotation form (its overlap field rides along).
    @fuzz_settings(max_examples=200)
    @given(sent=form_posts())
    def run(sent):
        for path in (CREATE, EDIT, f"{BASE}{SIEM_ID}/rotate-secret/"):
            one = Sent(sent.method, path, sent.query, sent.body, sent.content_type, sent.headers)
            with fuzz_example():
                response = send(alice, one)
                _check_console(response, one)
                after = snapshot()
                outcome = _form_outcome(response, one, before, after)
                outcomes[(path.rsplit("/", 2)[-2], outcome)] += 1
                if outcome != "refused":
                    _assert_only_client_changed(
                        before, after, pk=None if path == CREATE else siem_pk, sent=one
                    )
                    if path == CREATE:
                        assert len(after["clients"]) == len(before["clients"]) + 1, one

    run()
    # The savepoints held: after all that, the world's client is as it was.
    siem = ApiClient.objects.get(client_id=SIEM_ID)
    assert siem.name == "SIEM export" and siem.version == 1
    # Some hostile forms were still valid and saved; most were refused.
    assert outcomes[("new", "revealed")] and outcomes[("new", "refused")], outcomes
    assert outcomes[("edit", "saved")] and outcomes[("edit", "refused")], outcomes


@st.composite
def page_requests(draw):
    return (
        draw(st.sampled_from(["GET"] * 25 + HTTP_METHODS)),
        draw(page_queries()),
        draw(console_headers()),
    )


def test_pages_survive_hostile_queries_and_headers(fuzz_world):
    alice = signed_in(fuzz_world.users["alice"])
    bob = signed_in(fuzz_world.users["bob"])
    before = snapshot()
    pages = [
        BASE,
        f"{BASE}{SIEM_ID}/",
        "/administration/audit-log/",
        "/administration/audit-log/export.csv",
        "/accounts/login/",
    ]

    # Each query goes to every page, as the admin or the auditor.
    @fuzz_settings(max_examples=200)
    @given(request=page_requests(), as_auditor=st.booleans())
    def run(request, as_auditor):
        method, query, headers = request
        for path in pages:
            sent = Sent(method, path, query, b"", None, headers)
            with fuzz_example():
                response = send(bob if as_auditor else alice, sent)
                _check_console(response, sent)
                assert response.status_code in (200, 302, 400, 403, 404, 405), (
                    response.status_code,
                    sent,
                )
                assert_unchanged(before, snapshot(), what=str(sent))

    run()


@st.composite
def path_requests(draw):
    return (
        draw(st.sampled_from(["GET", "POST", "POST"] + HTTP_METHODS)),
        draw(client_id_segments),
        draw(st.one_of(st.just(b""), form_bodies(FORM_FIELDS), hostile_bytes)),
        draw(console_headers()),
    )


def test_client_urls_survive_hostile_client_ids(fuzz_world):
    alice = signed_in(fuzz_world.users["alice"])
    before = snapshot()

    @fuzz_settings(max_examples=50)
    @given(request=path_requests())
    def run(request):
        method, segment, body, headers = request
        for action in ACTIONS:
            sent = Sent(method, f"{BASE}{segment}/{action}", "", body, FORM, headers)
            with fuzz_example():
                response = send(alice, sent)
                _check_console(response, sent)
                if segment != SIEM_ID:
                    # Not a client of Acme: not found, whatever the method.
                    assert response.status_code in (301, 302, 400, 404, 405), (
                        response.status_code,
                        sent,
                    )
                    assert_unchanged(before, snapshot(), what=str(sent))

    run()


ROLES = ["bob", "charlie", "dave", None]


@st.composite
def role_requests(draw):
    return (
        draw(st.sampled_from(ROLES)),
        draw(st.sampled_from(["POST"] * 6 + HTTP_METHODS)),
        draw(st.one_of(form_bodies(FORM_FIELDS), st.just(b""), hostile_bytes)),
        draw(console_headers()),
    )


def test_no_other_role_changes_anything_however_it_asks(fuzz_world):
    """The auditor, a member with no role, another tenant's admin and an
    anonymous visitor, with hostile requests to every mutating URL."""
    clients = {role: signed_in(fuzz_world.users[role]) for role in ROLES if role}
    clients[None] = Client(raise_request_exception=False)
    before = snapshot()
    paths = [CREATE] + [f"{BASE}{SIEM_ID}/{action}" for action in ACTIONS if action]

    @fuzz_settings(max_examples=40)
    @given(request=role_requests())
    def run(request):
        role, method, body, headers = request
        # Another tenant's admin may create clients, in Globex: not this test.
        for path in paths[1:] if role == "dave" else paths:
            sent = Sent(method, path, "", body, FORM, headers)
            with fuzz_example():
                response = send(clients[role], sent)
                _check_console(response, sent)
                # Sign in (anonymous), the role page (403), not found (another
                # tenant's admin), or the method is refused.
                assert response.status_code in (302, 403, 404, 405), (response.status_code, sent)
                assert not REVEAL.search(response.fuzz_content), sent
                assert_unchanged(before, snapshot(), what=f"{role}: {sent}")

    run()


@st.composite
def sign_ins(draw) -> Sent:
    fields = {
        "username": st.sampled_from(["alice", "ALICE", "alice ", "nobody", "", "a" * 200]),
        "password": st.sampled_from([PASSWORD, "wrong", "", "\x00", "p" * 5000]),
        "next": QUERY_PARAMS["next"],
    }
    body = draw(bodies_with_extremes(form_bodies(fields)))
    return Sent(
        draw(st.sampled_from(["POST"] * 10 + HTTP_METHODS)),
        "/accounts/login/",
        draw(page_queries()) if draw(st.booleans()) else "",
        body,
        FORM if draw(st.integers(0, 5)) else draw(st.sampled_from(CONTENT_TYPES)),
        draw(console_headers()),
    )


def test_sign_in_survives_hostile_input(fuzz_world, settings):
    before = snapshot()
    outcomes: Counter[int] = Counter()

    @fuzz_settings(max_examples=150)
    @given(sent=sign_ins())
    def run(sent):
        with fuzz_example():
            response = send(Client(raise_request_exception=False), sent)
            _check_console(response, sent)
            outcomes[response.status_code] += 1
            signed_in_now = response.status_code == 302 and sent.method == "POST"
            if response.status_code == 200 and sent.method == "POST":
                assert any(marker in response.fuzz_content for marker in INLINE_ERROR), sent
            assert_unchanged(
                before,
                snapshot(),
                allow=frozenset({"login"}) if signed_in_now else frozenset(),
                what=str(sent),
            )

    run()
    assert outcomes[302] and outcomes[200], outcomes


def test_csrf_is_enforced_on_hostile_posts(fuzz_world):
    """Without the CSRF token every console POST is refused, whatever else it
    carries."""
    alice = Client(enforce_csrf_checks=True, raise_request_exception=False)
    alice.force_login(fuzz_world.users["alice"])
    before = snapshot()
    paths = [CREATE] + [f"{BASE}{SIEM_ID}/{action}" for action in ACTIONS if action]

    @fuzz_settings(max_examples=20)
    @given(body=form_bodies(FORM_FIELDS), headers=console_headers(), token=hostile_text)
    def run(body, headers, token):
        for path in paths:
            sent = Sent(
                "POST", path, "", body, FORM, {**headers, "HTTP_X_CSRFTOKEN": latin1(token)}
            )
            with fuzz_example():
                response = send(alice, sent)
                assert response.status_code == 403, (response.status_code, sent)
                assert_unchanged(before, snapshot(), what=str(sent))

    run()


def test_a_foreign_host_header_is_a_400(fuzz_world):
    alice = signed_in(fuzz_world.users["alice"])
    before = snapshot()

    @fuzz_settings(max_examples=40)
    @given(
        host=st.one_of(
            st.sampled_from(["evil.example", "127.0.0.1:8000@evil", "", "[::1", "a" * 300]),
            st.builds(latin1, hostile_text),
        ),
        path=st.sampled_from([BASE, CREATE, "/v1/oauth", "/v1/users", "/healthz"]),
    )
    def run(host, path):
        sent = Sent("GET", path, headers={"HTTP_HOST": host})
        with fuzz_example():
            response = send(alice, sent)
            assert response.status_code in (200, 302, 400, 401, 405), (response.status_code, sent)
            assert_unchanged(before, snapshot(), what=str(sent))

    run()


def _valid_form(**overrides) -> dict:
    data = {
        "name": "Splunk export",
        "description": "",
        "grants": ["users:read"],
        "ip_mode": "restricted",
        "ip_allowlist": "10.0.0.0/8",
        "status": "active",
        "expires_on": "",
        "version": "1",
        "overlap": "1h",
    }
    data.update(overrides)
    return data


def test_control_characters_in_every_field_parameter_and_path(fuzz_world):
    """Not left to chance: each control value in each form field, each query
    parameter, as the client ID in every client URL, and at sign-in."""
    alice = signed_in(fuzz_world.users["alice"])
    before = snapshot()
    siem_pk = fuzz_world.clients["siem"].pk
    forms = (CREATE, EDIT, f"{BASE}{SIEM_ID}/rotate-secret/")
    for field in FORM_FIELDS:
        for value in CONTROL:
            body = urlencode(_valid_form(**{field: value}), doseq=True).encode()
            for path in forms:
                sent = Sent("POST", path, "", body, FORM)
                with fuzz_example():
                    response = send(alice, sent)
                    _check_console(response, sent)
                    after = snapshot()
                    if _form_outcome(response, sent, before, after) != "refused":
                        _assert_only_client_changed(
                            before, after, pk=None if path == CREATE else siem_pk, sent=sent
                        )
    pages = [
        BASE,
        f"{BASE}{SIEM_ID}/",
        "/administration/audit-log/",
        "/administration/audit-log/export.csv",
    ]
    for name in QUERY_PARAMS:
        for value in CONTROL:
            for path in pages:
                sent = Sent("GET", path, urlencode({name: value}))
                with fuzz_example():
                    response = send(alice, sent)
                    _check_console(response, sent)
                    assert response.status_code == 200, sent
    segments = [quote(value, safe="") for value in CONTROL] + [
        "%00",
        "key-%00",
        "%FF",
        "a" * 65,
        "..",
        "%2e%2e",
    ]
    for segment in segments:
        for action in ACTIONS:
            for method in ("GET", "POST"):
                sent = Sent(method, f"{BASE}{segment}/{action}", "", b"", FORM)
                with fuzz_example():
                    response = send(alice, sent)
                    _check_console(response, sent)
                    assert response.status_code in (301, 302, 404, 405), (
                        response.status_code,
                        sent,
                    )
                    assert_unchanged(before, snapshot(), what=str(sent))
    for field in ("username", "password"):
        for value in CONTROL:
            body = urlencode({"username": "alice", "password": PASSWORD, field: value}).encode()
            sent = Sent("POST", "/accounts/login/", "", body, FORM)
            with fuzz_example():
                response = send(Client(raise_request_exception=False), sent)
                assert response.status_code == 200, sent
                assert any(marker in response.fuzz_content for marker in INLINE_ERROR), sent
                assert_unchanged(before, snapshot(), what=str(sent))
