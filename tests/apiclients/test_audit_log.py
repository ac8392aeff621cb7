import csv
import io
import json
import re

from apiclients.models import AuditAction
from apiclients.services import api_client_delete, api_client_update, audit_record
from tests.apiclients.helpers import AUDIT_URL, EXPORT_URL, HTMX, text


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text(response))))


def test_the_audit_log_shows_who_did_what_from_where(alice_client, alice, make_api_client):
    client, _ = make_api_client("SIEM export", source_ip="192.0.2.7")
    api_client_update(
        client=client,
        actor=alice,
        source_ip="192.0.2.8",
        name="SIEM nightly",
        grants=["users:read", "users:write"],
        ip_allowlist=["10.0.0.0/8"],
    )
    body = text(alice_client.get(AUDIT_URL))
    assert "Audit log" in body
    for expected in (
        "Created",
        "Edited",
        "alice",
        "192.0.2.7",
        "192.0.2.8",
        "SIEM nightly",
        client.client_id,
        "Name: “SIEM export” → “SIEM nightly”",
        "API permissions: added Users write; removed Audit Log read",
        "IP restriction: “all IP addresses” → “10.0.0.0/8”",
    ):
        assert expected in body, expected


def test_auditors_read_the_audit_log(bob_client, make_api_client):
    make_api_client("SIEM export")
    body = text(bob_client.get(AUDIT_URL))
    assert "SIEM export" in body and "Created" in body


def test_nobody_can_post_to_the_audit_log(alice_client, bob_client):
    assert alice_client.post(AUDIT_URL, {}).status_code == 405
    assert bob_client.post(AUDIT_URL, {}).status_code == 405


def test_it_filters_by_client_id_or_name(alice_client, make_api_client):
    siem, _ = make_api_client("SIEM export")
    make_api_client("HR sync")
    by_id = text(alice_client.get(AUDIT_URL + f"?client={siem.client_id}"))
    assert "SIEM export" in by_id and "HR sync" not in by_id
    by_name = text(alice_client.get(AUDIT_URL + "?client=hr"))
    assert "HR sync" in by_name and "SIEM export" not in by_name


def test_it_filters_by_action(alice_client, alice, make_api_client):
    client, _ = make_api_client("SIEM export")
    make_api_client("HR sync")
    api_client_delete(client=client, actor=alice)
    body = text(alice_client.get(AUDIT_URL + f"?action={AuditAction.DELETED}"))
    assert "SIEM export" in body and "HR sync" not in body
    assert "1 event" in body


def test_a_filter_without_matches_says_so(alice_client, make_api_client):
    make_api_client()
    body = text(alice_client.get(AUDIT_URL + "?client=nothing"))
    assert "No audit events match these filters" in body


def test_filters_with_htmx_swap_only_the_results(alice_client, make_api_client):
    make_api_client()
    body = text(
        alice_client.get(
            AUDIT_URL + "?action=client.created", headers={**HTMX, "HX-Target": "audit-results"}
        )
    )
    assert "<html" not in body and 'id="audit-results"' in body
    assert 'href="/administration/audit-log/export.csv?action=client.created"' in body


def test_the_audit_log_is_per_tenant(dave_client, make_api_client):
    make_api_client("Acme secret project")
    assert "Acme secret project" not in text(dave_client.get(AUDIT_URL))
    assert "Acme secret project" not in text(dave_client.get(EXPORT_URL))


def test_token_failures_are_listed_readably(alice_client, acme):
    audit_record(
        tenant=acme,
        action=AuditAction.TOKEN_FAILED,
        actor="key-unknown",
        source_ip="198.51.100.9",
        client_id="key-unknown",
        details={"reason": "invalid_client"},
    )
    body = text(alice_client.get(AUDIT_URL))
    assert "Token request failed" in body
    assert "Reason: client authentication failed (invalid_client)" in body


def test_aggregated_token_failures_say_how_many_from_where_and_since_when(
    alice_client, acme, make_api_client
):
    api_client, _ = make_api_client("SIEM export")
    first = audit_record(
        tenant=acme,
        action=AuditAction.TOKEN_FAILED,
        actor=api_client.client_id,
        source_ip="198.51.100.7",
        client=api_client,
        details={"reason": "wrong_secret", "endpoint": "token"},
    )
    later = audit_record(
        tenant=acme,
        action=AuditAction.TOKEN_FAILED,
        actor=api_client.client_id,
        source_ip="198.51.100.7",
        client=api_client,
        details={"reason": "wrong_secret", "endpoint": "token", "suppressed_failures": 11},
    )
    body = text(alice_client.get(AUDIT_URL))
    # The later entry stands for itself and the 11 left out since the first.
    assert (
        "<strong>12 failed requests</strong> from 198.51.100.7 between "
        f'<time datetime="{first.created_at.isoformat()}"' in body
    )
    assert f'and <time datetime="{later.created_at.isoformat()}"' in body
    assert "which counts the failures since the previous one" in body
    assert "Suppressed" not in body and "not listed one by one" not in body
    # The export keeps the count, in words and in the JSON.
    export = text(alice_client.get(EXPORT_URL))
    assert "Failed requests counted here, not listed one by one: 11" in export


def test_the_audit_log_paginates(alice_client, acme):
    for i in range(55):
        audit_record(tenant=acme, action=AuditAction.TOKEN_FAILED, actor=f"key-{i:03d}")
    first = text(alice_client.get(AUDIT_URL))
    assert "Showing 1–50 of 55 events" in first and "key-054" in first and "key-004" not in first
    second = text(alice_client.get(AUDIT_URL + "?page=2"))
    assert "key-004" in second and "key-054" not in second


def test_csv_export_streams_every_matching_event(alice_client, alice, make_api_client):
    client, _ = make_api_client("SIEM export", source_ip="192.0.2.7")
    api_client_update(client=client, actor=alice, name="SIEM nightly")
    response = alice_client.get(EXPORT_URL)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="audit-log-acme-\d{8}-\d{6}\.csv"', response["Content-Disposition"]
    )
    rows = csv_rows(response)
    assert [r["action"] for r in rows] == ["client.edited", "client.created"]
    edited = rows[0]
    assert edited["actor"] == "alice"
    assert edited["client_id"] == client.client_id
    assert edited["client_name"] == "SIEM nightly"
    assert edited["details"] == "Name: “SIEM export” → “SIEM nightly”"
    assert json.loads(edited["details_json"]) == {
        "changes": {"name": ["SIEM export", "SIEM nightly"]}
    }
    assert rows[1]["source_ip"] == "192.0.2.7"


def test_csv_export_applies_the_filters_and_format_param_works(
    alice_client, alice, make_api_client
):
    client, _ = make_api_client("SIEM export")
    make_api_client("HR sync")
    api_client_delete(client=client, actor=alice)
    response = alice_client.get(AUDIT_URL + "?format=csv&action=client.deleted")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_rows(response)
    assert [(r["action"], r["client_name"]) for r in rows] == [("client.deleted", "SIEM export")]


def test_csv_cells_cannot_become_spreadsheet_formulas(alice_client, make_api_client, acme):
    make_api_client('=HYPERLINK("http://evil.example","x")')
    make_api_client("+1+1")
    make_api_client("-2")
    audit_record(tenant=acme, action=AuditAction.TOKEN_FAILED, actor="@SUM(A1)")
    rows = csv_rows(alice_client.get(EXPORT_URL))
    names = {r["client_name"] for r in rows} - {""}
    assert names == {'\'=HYPERLINK("http://evil.example","x")', "'+1+1", "'-2"}
    assert rows[0]["actor"] == "'@SUM(A1)"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@"))
