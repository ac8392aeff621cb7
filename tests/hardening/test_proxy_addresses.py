"""Behind a reverse proxy, through a real hop: gunicorn (the production
settings of bin/serve) behind a proxy on this host that adds the address each
connection came from to X-Forwarded-For (or Forwarded), as nginx does. The
test's clients connect from other loopback addresses (127.0.0.5, 127.0.0.6),
so the proxy sees a different address from its own (127.0.0.1), which is the
one trusted proxy (TRUSTED_PROXIES).

What an operator relies on: the IP restriction, the audit log and the access
log see the client, not the proxy; a header forged by the client, through the
proxy or straight to the server, changes nothing."""

import base64
import sqlite3
import time

import pytest

from tests.hardening.servers import ForwardingProxy, app_env, gunicorn, manage, raw_request

CLIENT, OTHER = "127.0.0.5", "127.0.0.6"
SETUP = f"""
from apiclients.accounts import user_create
from apiclients.models import Role
from apiclients.services import api_client_create
user, _ = user_create(username="proxy-admin", tenant_name="Acme", role=Role.CLOUD_ADMIN,
                      password="a long and unguessable test password")
for name, allowed in [("at-client", "{CLIENT}"), ("at-proxy", "127.0.0.1"),
                      ("elsewhere", "203.0.113.50")]:
    client, secret = api_client_create(tenant=user.membership.tenant, name=name,
                                       grants=["users:read"], ip_allowlist=[allowed], actor=user)
    print("client", name, client.client_id, secret)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    path = tmp_path_factory.mktemp("proxy") / "db.sqlite3"
    env = app_env(DATABASE_URL=f"sqlite:///{path}")
    manage(env, "migrate", "--noinput", "-v", "0")
    clients = {}
    for line in manage(env, "shell", "-c", SETUP).splitlines():
        if line.startswith("client "):
            _, name, client_id, secret = line.split()
            clients[name] = (client_id, secret)
    return env, path, clients


def _auth(creds: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(":".join(creds).encode()).decode()}


def _token(port: int, creds, *, source: str = CLIENT, **headers) -> int:
    status, _ = raw_request(port, "POST", "/v1/oauth", {**_auth(creds), **headers}, source=source)
    return status


def _audited_addresses(path) -> list[str]:
    # The audit event is written once the response has gone out.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT source_ip FROM apiclients_auditevent WHERE action = 'token.failed'"
            ).fetchall()
        if rows:
            return [ip for (ip,) in rows]
        time.sleep(0.1)
    return []


def test_through_the_proxy_the_client_is_who_connected_to_it(world, tmp_path):
    env, path, clients = world
    log = tmp_path / "server.log"
    with gunicorn({**env, "TRUSTED_PROXIES": "127.0.0.1"}, log, workers=3) as server:
        proxy = ForwardingProxy(("127.0.0.1", server.port))
        try:
            assert _token(proxy.port, clients["at-client"]) == 200
            # The proxy's own address no longer passes for every client's.
            assert _token(proxy.port, clients["at-proxy"]) == 401
            assert _audited_addresses(path) == [CLIENT]
            # Another client behind the same proxy is another address.
            assert _token(proxy.port, clients["at-client"], source=OTHER) == 401

            # Forged by the client: the proxy appends the address it saw.
            forged = {"X-Forwarded-For": "203.0.113.50"}
            assert _token(proxy.port, clients["elsewhere"], **forged) == 401
            assert _token(proxy.port, clients["at-client"], **forged) == 200
        finally:
            proxy.close()

        # Forged straight to the server, from a peer that is no trusted proxy.
        for forged in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
            assert _token(server.port, clients["at-proxy"], **forged) == 401
            assert _token(server.port, clients["at-client"], **forged) == 200
        assert (
            _token(server.port, clients["elsewhere"], **{"X-Forwarded-For": "203.0.113.50"}) == 401
        )

    # gunicorn's access log names the client of every token request.
    requests = [line for line in log.read_text().splitlines() if "POST /v1/oauth" in line]
    assert len(requests) == 10
    assert {line.split()[0] for line in requests} == {CLIENT, OTHER}


def test_a_proxy_that_sets_forwarded(world, tmp_path):
    env, _, clients = world
    settings = {**env, "TRUSTED_PROXIES": "127.0.0.0/30", "TRUSTED_PROXY_HEADER": "Forwarded"}
    with gunicorn(settings, tmp_path / "server.log", workers=1) as server:
        proxy = ForwardingProxy(("127.0.0.1", server.port), header="Forwarded")
        try:
            assert _token(proxy.port, clients["at-client"]) == 200
            assert _token(proxy.port, clients["at-proxy"]) == 401
            # The header this deployment does not read is the client's to forge.
            forged = {"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
            assert _token(proxy.port, clients["at-proxy"], **forged) == 401
        finally:
            proxy.close()
