"""A plaintext secret is shown once, and is nowhere else: not in any other
response, not in the database, not in any log line.

Through the real server: gunicorn with its access log and debug logging,
Django logging at DEBUG, stdout and stderr captured to one file. An admin
(made with `manage.py add_user`) signs in with the form, creates two clients
(a full-page form and an htmx dialog), resets one and rotates the other with
an overlap, then revokes its old secret; integrations get tokens with Basic,
form and JSON credentials, and fail with old and wrong secrets, and with the
secret sent as the client ID. Then every page that shows the clients or the
audit log is read, and the whole database is dumped as text.

The database is a fresh one of the kind the run uses (SQLite, or PostgreSQL
when DATABASE_URL says so)."""

import json
import re
import sqlite3

import pytest
import requests
from django.conf import settings
from django.contrib.messages.storage.cookie import MessageSerializer
from django.core import signing
from django.test import override_settings

from tests.hardening.servers import (
    SERVER_SECRET_KEY,
    app_env,
    csrf_token,
    drop_database,
    gunicorn,
    manage,
    recreate_database,
    require_postgres,
    sign_in,
)

DATABASE = "apiclients_leaks"
ADMIN, PASSWORD = "leak-admin", "a long and unguessable test password"
BASE = "/administration/integrations/api-clients/"
SECRET_RE = re.compile(r"acsec_[A-Za-z0-9_-]{43}")
CLIENT_ID_RE = re.compile(r"key-[A-Za-z0-9_-]{22}")
DUMP_SESSIONS = """
import json
from django.contrib.sessions.models import Session
print(json.dumps([s.get_decoded() for s in Session.objects.all()], default=str))
"""


class Recorder:
    """Every response the test receives: headers and body, as text."""

    def __init__(self):
        self.responses: list[tuple[str, str]] = []  # (label, text)

    def __call__(self, response: requests.Response, *args, **kwargs):
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        label = f"{response.request.method} {response.url} -> {response.status_code}"
        self.responses.append((label, headers + "\n\n" + response.text))
        return response


@pytest.fixture
def database(tmp_path):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        require_postgres()
        url = recreate_database(DATABASE)
        yield url, _postgres_dump
        drop_database(DATABASE)
    else:
        path = tmp_path / "leaks.sqlite3"
        yield f"sqlite:///{path}", _sqlite_dump


def _sqlite_dump(url: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return "\n".join(conn.iterdump())


def _postgres_dump(url: str) -> str:
    import psycopg

    lines = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        for (table,) in tables:
            # Every row as its text form, whatever the column types.
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # noqa: S608
            lines.extend(f"{table}: {row}" for (row,) in rows)
    return "\n".join(lines)


def _reveal(response: requests.Response) -> tuple[str, str]:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    secrets_shown = set(SECRET_RE.findall(response.text))
    assert len(secrets_shown) == 1, secrets_shown
    return CLIENT_ID_RE.search(response.text).group(0), secrets_shown.pop()


def _form(http: requests.Session, url: str, data: dict, *, htmx: bool = False):
    page = http.get(url, timeout=20)
    token = csrf_token(page.text)
    headers = {"Referer": url}
    if htmx:
        # As the page's htmx sends it: the token in a header.
        headers.update({"HX-Request": "true", "X-CSRFToken": token})
    else:
        data = {**data, "csrfmiddlewaretoken": token}
    return http.post(url, data=data, headers=headers, timeout=20, allow_redirects=False)


@override_settings(SECRET_KEY=SERVER_SECRET_KEY)  # to read the server's signed cookies
def _messages_cookies(recorder: Recorder) -> list[str]:
    """The messages framework's cookies, decoded (they are signed and may be
    compressed, so a secret inside would not show as text)."""
    decoded = []
    signer = signing.get_cookie_signer(salt="django.contrib.messages")
    for _, text in recorder.responses:
        for value in re.findall(r"messages=([^;\s]+)", text):
            try:
                messages = signer.unsign_object(value.strip('"'), serializer=MessageSerializer)
            except signing.BadSignature:
                continue
            decoded.append(json.dumps([str(m) for m in messages or []]))
    return decoded


def test_a_secret_is_shown_once_and_is_nowhere_else(database, tmp_path):
    url, dump = database
    env = app_env(DATABASE_URL=url, LOG_LEVEL="DEBUG")
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "add_user", ADMIN, "--tenant=Acme", "--role=cloud-admin", f"--password={PASSWORD}")
    log = tmp_path / "server.log"
    recorder = Recorder()
    reveals: dict[str, str] = {}  # secret -> label of the response that showed it

    def revealed(response):
        client_id, secret = _reveal(response)
        reveals[secret] = recorder.responses[-1][0]
        return client_id, secret

    server_args = ("--access-logfile", "-", "--error-logfile", "-", "--log-level", "debug")
    with gunicorn(env, log, workers=1, extra=server_args) as server:
        base = server.url
        http = requests.Session()
        http.hooks["response"].append(recorder)
        sign_in(http, base, ADMIN, PASSWORD)
        grants = ["users:read", "audit-log:read"]
        form = {"description": "", "grants": grants, "ip_mode": "all", "status": "active"}

        # Create (a full page, and an htmx dialog), reset, rotate.
        a_id, a1 = revealed(_form(http, base + BASE + "new/", {**form, "name": "Splunk"}))
        b_id, b1 = revealed(_form(http, base + BASE + "new/", {**form, "name": "SOAR"}, htmx=True))
        # Reset and rotation ask for the admin's password again (sudo mode).
        sudo = {"password": PASSWORD}
        _, a2 = revealed(_form(http, f"{base}{BASE}{a_id}/reset-secret/", sudo))
        _, b2 = revealed(
            _form(http, f"{base}{BASE}{b_id}/rotate-secret/", {"overlap": "1h", **sudo})
        )
        assert len({a1, a2, b1, b2}) == 4

        # Integrations: every way of sending the secret, and failures.
        token_url = base + "/v1/oauth"
        grant = {"grant_type": "client_credentials"}

        def token(url=token_url, **kwargs):
            return http.post(url, timeout=20, **kwargs)

        ok = [
            token(auth=(a_id, a2), data=""),
            token(data={**grant, "client_id": a_id, "client_secret": a2}),
            token(json={**grant, "client_id": a_id, "client_secret": a2}),
            token(json={**grant, "client_id": b_id, "client_password": b2}),
        ]
        assert [r.status_code for r in ok] == [200] * 4, [r.text for r in ok]
        # The rotated-out secret during its overlap (whether the token
        # endpoint honours the overlap is not this test's business).
        assert token(auth=(b_id, b1), data="").status_code in (200, 401)
        failed = [
            token(auth=(a_id, a1), data=""),  # reset: the old secret
            token(data={**grant, "client_id": a_id, "client_secret": b2}),  # another's
            token(auth=(a2, a_id), data=""),  # ID and secret swapped
            token(auth=(a2, a2), data=""),
            token(data={**grant, "client_id": b2, "client_secret": b2}),
            token(json={**grant, "client_id": a1, "client_password": a2}),
            # In the URL, where RFC 6749 forbids it: refused, and not logged.
            token(f"{token_url}?client_id={a_id}&client_secret={a2}", data=""),
            token(f"{token_url}?grant_type=client_credentials&x={a2}", data=""),
        ]
        assert all(r.status_code in (400, 401, 429) for r in failed), [r.text for r in failed]

        _form(http, f"{base}{BASE}{b_id}/revoke-old-secret/", {})
        assert token(auth=(b_id, b1), data="").status_code == 401

        # Everything that shows the clients or their history.
        bearer = {"Authorization": "Bearer " + ok[0].json()["access_token"]}
        for path in (
            BASE,
            f"{BASE}?q=Splunk",
            f"{BASE}{a_id}/",
            f"{BASE}{b_id}/",
            f"{BASE}{a_id}/edit/",
            f"{BASE}{a_id}/reset-secret/",
            f"{BASE}{b_id}/rotate-secret/",
            "/administration/audit-log/",
            "/administration/audit-log/?format=csv",
            "/administration/audit-log/export.csv",
        ):
            assert http.get(base + path, timeout=20).status_code == 200, path
        for path in ("/v1/audit-log", "/v1/users"):
            assert http.get(base + path, headers=bearer, timeout=20).status_code == 200
        sessions = manage(env, "shell", "-c", DUMP_SESSIONS)
    log_text = log.read_text(errors="replace")
    database_text = dump(url)

    # The checks can see what they look for: a client ID is in all of them.
    assert a_id in database_text and a_id in log_text
    assert '"POST /v1/oauth' in log_text and "[DEBUG]" in log_text
    for secret, shown_in in reveals.items():
        seen = [label for label, text in recorder.responses if secret in text]
        assert seen == [shown_in], f"the secret is in {seen}, not only in its reveal"
        assert secret not in database_text, "a plaintext secret in the database"
        assert secret not in sessions, "a plaintext secret in a session"
        assert not any(secret in text for text in _messages_cookies(recorder))
        lines = [line for line in log_text.splitlines() if secret in line]
        assert not lines, f"a plaintext secret in the logs: {lines}"
