"""Schemathesis against the live server, driven by /v1/openapi.json: every
operation it describes (the management API, the token endpoint, the bearer
APIs), with generated valid and invalid input. No answer may be a server
error, an undocumented status or content type, or a body that breaks its
schema.

gunicorn on PostgreSQL, as in production (tests/hardening/servers.py); a
few hundred examples in all, bounded in time."""

import json
import os
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hardening import servers

EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
RUN = Counter()

# A personal access token, an API client for the bearer APIs, and one client
# per operation on a client (so that a DELETE spares the others).
_SETUP_SCRIPT = """
import json
from apiclients.access_tokens import access_token_create
from apiclients.models import Membership
from apiclients.services import api_client_create
user = Membership.objects.get(user__username="fuzzadmin").user
tenant = user.membership.tenant
pat = access_token_create(user=user, name="fuzz", days=1)[1]
reader, secret = api_client_create(
    tenant=tenant, name="reader", grants=["users:read", "audit-log:read"], actor=user
)
targets = [
    api_client_create(tenant=tenant, name=f"target {i}", actor=user)[0].client_id
    for i in range(8)
]
print(json.dumps({"pat": pat, "reader": [reader.client_id, secret], "targets": targets}))
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    servers.require_postgres()
    name = "apiclients_schema_fuzz"
    url = servers.recreate_database(name)
    env = servers.app_env(
        DATABASE_URL=url,
        MANAGEMENT_API_RATE_LIMIT="100000",
        OAUTH_RATE_LIMIT_PER_CLIENT="100000",
        OAUTH_RATE_LIMIT_PER_IP="100000",
    )
    servers.manage(env, "migrate", "--noinput", "-v", "0")
    servers.manage(
        env,
        "add_user",
        "fuzzadmin",
        "--tenant",
        "Fuzz",
        "--role",
        "cloud-admin",
        "--password",
        "x" * 20,
    )
    seeded = json.loads(servers.manage(env, "shell", "-c", _SETUP_SCRIPT).strip().splitlines()[-1])
    log = tmp_path_factory.mktemp("fuzz") / "gunicorn.log"
    started = time.monotonic()
    with servers.gunicorn(env, log) as server:
        answer = requests.post(server.url + "/v1/oauth", auth=tuple(seeded["reader"]), timeout=10)
        yield {
            "url": server.url,
            "pat": seeded["pat"],
            "bearer": answer.json()["access_token"],
            "targets": seeded["targets"],
        }
    servers.drop_database(name)
    total = sum(RUN.values())
    print(
        f"\nschemathesis: {total} examples over {len(RUN)} operations "
        f"in {time.monotonic() - started:.1f} s: {dict(RUN)}"
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_every_answer_matches_the_document(live, mode):
    schema = schemathesis.openapi.from_url(live["url"] + "/v1/openapi.json")
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    targets = iter(live["targets"])
    for operation in operations:
        # Operations on a client: on a client that exists in positive runs,
        # any client ID in negative ones.
        path = {}
        if "{client_id}" in operation.path and mode == GenerationMode.POSITIVE:
            path = {"client_id": next(targets)}
        _fuzz(operation, mode, live, failures, path)
    assert not failures, "\n\n".join(failures[:5])


def _fuzz(operation, mode, live, failures, path):
    if operation.path == "/v1/oauth":
        headers = {}
    elif operation.path.startswith("/v1/api-clients"):
        headers = {"Authorization": f"Bearer {live['pat']}"}
    else:
        headers = {"Authorization": f"Bearer {live['bearer']}"}

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case):
        RUN[f"{mode.value} {operation.label}"] += 1
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported together below
            failures.append(f"{operation.label}: {exc}")
            return
        if response.status_code >= 400 and operation.path.startswith("/v1/api-clients"):
            assert json.loads(response.content)["status"] == response.status_code

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (the JWKS takes no input): nothing to send.
        assert mode == GenerationMode.NEGATIVE
