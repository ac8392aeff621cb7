"""The real server for the hardening tests: gunicorn in a subprocess, the
operator's manage.py commands, the local PostgreSQL, and a TCP proxy in front
of it that can be switched off (the database "goes away") and on again."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = f"postgres://root@{PG_HOST}:{PG_PORT}/postgres"
SERVER_SECRET_KEY = "hardening-tests-" + "k" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def require_postgres() -> None:
    """These tests always need the local PostgreSQL. Without it: a skip on a
    developer's machine, a failure in CI (where it must be there)."""
    if postgres_reachable():
        return
    message = f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (user root, trust auth)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must provide it")
    pytest.skip(message)


def _own(name: str) -> str:
    # One per test run: runs side by side on one server never share one.
    return f"{name}_{os.getpid()}"


def recreate_database(name: str) -> str:
    import psycopg

    assert re.fullmatch(r"[a-z_]+", name)
    name = _own(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://root@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    import psycopg

    name = _own(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(**overrides) -> dict:
    """The environment of a server or command: production-like settings, and
    nothing from the test run's own database or cache."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_TIMEOUT")
        and not key.startswith("PYTEST")
    }
    env.update(
        # Audit events kept during an outage: the server's own, not the checkout's.
        OAUTH_SPOOL_DIR=tempfile.mkdtemp(prefix="spool-"),
        SECRET_KEY=SERVER_SECRET_KEY,
        DEBUG="false",
        CACHE_URL="locmemcache://",
        # No collectstatic in a fresh clone: plain static storage (WhiteNoise
        # still serves from the app directories).
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def manage(env: dict, *args: str, input_text: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


class Gunicorn:
    """`gunicorn config.wsgi` on a free port, its output in `log_path`."""

    def __init__(self, env: dict, log_path: Path, *, workers: int = 2, extra: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                # What bin/serve runs, on a port of our own.
                "--config",
                "config/gunicorn.conf.py",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                *extra,
            ],
            cwd=ROOT,
            env={**env, "BASE_URL": self.url},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or its workers still booting
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextmanager
def gunicorn(env: dict, log_path: Path, **kwargs):
    server = Gunicorn(env, log_path, **kwargs)
    try:
        yield server
    finally:
        server.stop()


class TcpProxy:
    """127.0.0.1:<port> -> target, one thread per direction per connection.

    `off()` closes the listening socket (new connections are refused) and
    cuts every live connection, as a database host that went away would;
    `silence()` keeps every connection open and accepting bytes but lets
    nothing through, either way, as a hung server or a firewall dropping
    packets would; `on()` listens on the same port again, or speaks again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.silent = False
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def silence(self) -> None:
        self.silent = True

    def on(self) -> None:
        self.silent = False
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._sockets = self._sockets, set()
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone
            # would leave it waiting.
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in live:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # switched off
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # switched off meanwhile
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.silent:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _CsrfField(HTMLParser):
    def __init__(self):
        super().__init__()
        self.token = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "csrfmiddlewaretoken":
            self.token = attrs.get("value")


def csrf_token(html: str) -> str:
    parser = _CsrfField()
    parser.feed(html)
    assert parser.token, "no CSRF token in the page"
    return parser.token


def sign_in(http: requests.Session, base_url: str, username: str, password: str) -> None:
    login = base_url + "/accounts/login/"
    page = http.get(login, timeout=10)
    response = http.post(
        login,
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "username": username,
            "password": password,
        },
        headers={"Referer": login},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, (response.status_code, response.text[:500])


class ForwardingProxy:
    """A reverse proxy on 127.0.0.1:<port> in front of `target`, as nginx with
    `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` (or, with
    header="Forwarded", one that appends `for=<peer>` to Forwarded): it adds
    the address each connection came from to whatever the client sent, then
    relays the bytes. One request per connection (gunicorn's sync workers
    close it after the response)."""

    def __init__(self, target: tuple[str, int], *, header: str = "X-Forwarded-For"):
        self.target = target
        self.header = header
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, (peer, *_) = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, peer), daemon=True).start()

    def _serve(self, client: socket.socket, peer: str) -> None:
        head = b""
        try:
            client.settimeout(10)
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    _close(client)
                    return
                head += data
            client.settimeout(None)
            head, rest = head.split(b"\r\n\r\n", 1)
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _close(client)
            return
        upstream.sendall(self._forwarded(head.decode("latin-1"), peer) + rest)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _forwarded(self, head: str, peer: str) -> bytes:
        request_line, *lines = head.split("\r\n")
        sent = [line.split(":", 1)[1].strip() for line in lines if self._is_ours(line)]
        kept = [line for line in lines if not self._is_ours(line)]
        if self.header == "Forwarded":
            added = f'for="[{peer}]"' if ":" in peer else f"for={peer}"
        else:
            added = peer
        value = ", ".join([*sent, added])
        return "\r\n".join([request_line, *kept, f"{self.header}: {value}", "", ""]).encode(
            "latin-1"
        )

    def _is_ours(self, line: str) -> bool:
        return line.lower().startswith(self.header.lower() + ":")

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def raw_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    source: str = "127.0.0.1",
    body: bytes = b"",
) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 request to 127.0.0.1:port sent from the
    loopback address `source` (any of 127.0.0.0/8 is this host), so a test
    can be a client at an address of its choosing."""
    with socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(source, 0)) as s:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "", ""]
        s.sendall("\r\n".join(lines).encode() + body)
        response = b""
        while data := s.recv(65536):
            response += data
    head, _, content = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


DRILL_ADMIN, DRILL_PASSWORD = "ops-admin", "a long and unguessable test password"
_DRILL = """
from apiclients.accounts import user_create
from apiclients.models import Role
from apiclients.services import api_client_create
user, _ = user_create(username={admin!r}, tenant_name="Acme", role=Role.CLOUD_ADMIN,
                      password={password!r})
client, secret = api_client_create(tenant=user.membership.tenant, name={name!r},
                                   grants=["users:read"], actor=user)
print(client.client_id, secret)
"""


@contextmanager
def drill_database(name: str, client_name: str):
    """A database of its own, migrated, with an admin (DRILL_ADMIN) and one
    API client: (database URL, client ID, secret). Dropped afterwards."""
    require_postgres()
    url = recreate_database(name)
    try:
        env = app_env(DATABASE_URL=url)
        manage(env, "migrate", "--noinput", "-v", "0")
        script = _DRILL.format(admin=DRILL_ADMIN, password=DRILL_PASSWORD, name=client_name)
        client_id, secret = manage(env, "shell", "-c", script).split()[-2:]
        yield url, client_id, secret
    finally:
        drop_database(name)
