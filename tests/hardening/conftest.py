"""Hardening tests: hostile input (hypothesis), a database outage, secrets that
must never leak. The cast comes from tests/conftest.py."""

from pathlib import Path

import pytest
from django.test import Client

from apiclients import secrets
from apiclients.models import ApiClient
from oauth import keys
from oauth.clients import client_record
from oauth.models import RevokedToken
from oauth.tokens import token_decode, token_issue
from tests.hardening import fuzzing


def _issue(client, scopes):
    return token_issue(
        client=client_record(client.client_id),
        generation=client.secret_generation,
        scopes=list(scopes),
    )


_fuzz_tests: set[str] = set()
_FUZZ_FILES = {
    f"tests/hardening/{path.name}" for path in Path(__file__).parent.glob("test_fuzz_*.py")
}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if item.nodeid.startswith("tests/hardening/test_fuzz_"):
            _fuzz_tests.add(item.nodeid)


@pytest.fixture(autouse=True)
def _count_requests_as(request):
    fuzzing.CURRENT_TEST["id"] = request.node.nodeid
    yield
    fuzzing.CURRENT_TEST["id"] = "?"


def _fuzz_totals(session) -> tuple[int, bool]:
    total = sum(fuzzing.COUNTS.values())
    stats = session.config.pluginmanager.get_plugin("terminalreporter").stats
    finished = {
        report.nodeid
        for outcome in ("passed", "xfailed")
        for report in stats.get(outcome, [])
        if report.when == "call"
    }
    # The whole set: every fuzz file collected, nothing deselected, all passed.
    options = session.config.option
    complete = (
        {nodeid.split("::")[0] for nodeid in _fuzz_tests} == _FUZZ_FILES
        and not options.keyword
        and not options.markexpr
        and _fuzz_tests <= finished
    )
    return total, complete


def pytest_sessionfinish(session, exitstatus):
    # The whole fuzz set passed but sent fewer requests than promised: fail
    # the run rather than let the figure quietly shrink.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    total, complete = _fuzz_totals(session)
    if complete and total < fuzzing.MIN_REQUESTS and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not fuzzing.COUNTS:
        return
    total = sum(fuzzing.COUNTS.values())
    terminalreporter.write_sep("-", "hardening: fuzzed requests")
    for nodeid, count in sorted(fuzzing.COUNTS.items()):
        statuses = fuzzing.STATUSES.get(nodeid, {})
        shown = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{count:>7}  {nodeid.split('::')[-1]} ({shown})")
    _, complete = _fuzz_totals(terminalreporter._session)
    verdict = ""
    if complete:
        ok = total >= fuzzing.MIN_REQUESTS
        verdict = f" (at least {fuzzing.MIN_REQUESTS}: {'yes' if ok else 'NO, the run fails'})"
    errors = sum(fuzzing.SERVER_ERRORS.values())
    found = "none" if not errors else f"{errors} (with hypothesis's replays)"
    terminalreporter.write_line(f"{total:>7}  in all{verdict}; server errors: {found}")


def _pin(client: ApiClient, client_id: str, secret: str) -> ApiClient:
    # Fixed IDs and secrets, so that hypothesis strategies can name them.
    ApiClient.objects.filter(pk=client.pk).update(
        client_id=client_id, secret_digest=secrets.digest(secret)
    )
    client.refresh_from_db()
    return client


@pytest.fixture
def fuzz_world(alice, bob, charlie, dave, make_api_client, settings) -> fuzzing.World:
    """Built once per test function; every example runs in a savepoint that
    is rolled back (fuzzing.fuzz_example), so each starts from this."""
    keys.reset_cache()
    keys.signing_key()  # saved now, not inside an example's savepoint
    globex = dave.membership.tenant
    siem, _ = make_api_client(
        "SIEM export",
        grants=[
            "users:read",
            "audit-log:read",
            "alerts:read",
            "alerts:write",
            "introspection:read",
        ],
        description="Nightly export",
    )
    restricted, _ = make_api_client(
        "Restricted", grants=["users:read"], ip_allowlist=["10.0.0.0/8", "2001:db8::/32"]
    )
    inactive, _ = make_api_client("Dormant", grants=["users:read"], is_active=False)
    other, _ = make_api_client(
        "Globex sync", tenant=globex, actor=dave, grants=["users:read", "audit-log:read"]
    )
    clients = {
        "siem": _pin(siem, fuzzing.SIEM_ID, fuzzing.SIEM_SECRET),
        "restricted": _pin(restricted, fuzzing.RESTRICTED_ID, fuzzing.RESTRICTED_SECRET),
        "inactive": _pin(inactive, fuzzing.INACTIVE_ID, fuzzing.INACTIVE_SECRET),
        "globex": _pin(other, fuzzing.GLOBEX_ID, fuzzing.GLOBEX_SECRET),
    }
    tokens = {
        "siem": _issue(clients["siem"], clients["siem"].grants).access_token,
        "siem_users": _issue(clients["siem"], ["users:read"]).access_token,
        "globex": _issue(clients["globex"], clients["globex"].grants).access_token,
    }
    # Signed by us, yet refused: the client is inactive, or the token revoked.
    tokens["inactive"] = _issue(clients["inactive"], ["users:read"]).access_token
    revoked = _issue(clients["siem"], ["users:read"]).access_token
    claims = token_decode(revoked)
    RevokedToken.objects.create(
        jti=claims["jti"],
        tenant_id=claims["tid"],
        client_id=claims["client_id"],
        expires_at="2999-01-01T00:00:00Z",
    )
    tokens["revoked"] = revoked
    return fuzzing.World(
        users={"alice": alice, "bob": bob, "charlie": charlie, "dave": dave},
        clients=clients,
        tokens=tokens,
    )


@pytest.fixture
def anonymous() -> Client:
    return Client(raise_request_exception=False)


def signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client
