import json

import pytest

from apiclients import services
from apiclients.models import ApiClient, AuditAction, AuditEvent
from tests.apiclients.helpers import CREATE_URL, HTMX, form_data, secret_in, text


def test_create_dialog_opens_as_a_dialog_with_htmx(alice_client):
    response = alice_client.get(CREATE_URL, headers=HTMX)
    body = text(response)
    assert response.status_code == 200
    assert "<html" not in body
    assert '<dialog id="create-api-client"' in body
    assert "Create new API client" in body
    # The form posts back to the same URL and swaps the dialog's panel.
    assert f'hx-post="{CREATE_URL}"' in body
    assert 'hx-target="#create-api-client-panel"' in body


def test_create_dialog_is_a_full_page_when_visited_directly(alice_client):
    body = text(alice_client.get(CREATE_URL))
    assert "<html" in body and "<dialog" not in body
    assert "Create new API client" in body
    assert f'action="{CREATE_URL}"' in body and "hx-post" not in body


def test_the_form_offers_only_grantable_apis_and_write_only_where_offered(alice_client):
    body = text(alice_client.get(CREATE_URL))
    assert 'value="alerts:read"' in body and 'value="alerts:write"' in body
    assert 'value="audit-log:read"' in body and 'value="audit-log:write"' not in body
    assert 'value="file-events:write"' not in body
    for hidden in ("oauth:", "customer:"):
        assert hidden not in body
    assert "Allow all IP addresses" in body and "Restrict access by IP address" in body


def test_create_reveals_the_secret_once_in_the_dialog(alice_client, acme):
    response = alice_client.post(
        CREATE_URL,
        form_data(name="Splunk export", grants=["alerts:read", "users:write"]),
        headers=HTMX,
    )
    assert response.status_code == 200
    body = text(response)
    client = ApiClient.objects.get(tenant=acme, name="Splunk export")
    secret = secret_in(response)
    assert client.check_secret(secret)

    # The panel replaces the form inside the open dialog, with the copy fields.
    assert 'id="create-api-client-panel"' in body and "<dialog" not in body
    assert "API client created" in body
    for label, value in (
        ("Client ID", client.client_id),
        ("Secret", secret),
        ("Base URL", "http://127.0.0.1:8000"),
    ):
        assert f">{label}</label>" in body
        assert f'value="{value}" readonly' in body
    assert body.count("<span data-copy-label>Copy</span>") == 4
    assert f"curl -X POST -u &#x27;{client.client_id}:{secret}&#x27; -d &quot;&quot; " in body
    assert "http://127.0.0.1:8000/v1/oauth" in body
    assert (
        "This is the only time the secret is displayed. If you lose it, you must reset the secret."
        in body
    )
    assert ">Done</button>" in body
    assert 'hx-history="false"' in body

    # The list behind the dialog refreshes; nothing may cache the secret.
    assert "apiClientsChanged" in json.loads(response["HX-Trigger"])
    assert "no-store" in response["Cache-Control"]
    assert response.status_code != 302


def test_create_saves_what_was_chosen_and_audits_it(alice_client, alice, acme):
    alice_client.post(
        CREATE_URL,
        form_data(
            name="  SOAR  ",
            description="Closes alerts",
            grants=["alerts:write", "alerts:read"],
            ip_mode="restricted",
            ip_allowlist="203.0.113.0/24, 2001:DB8:0:0::1\n198.51.100.7/32",
            status="inactive",
        ),
        headers=HTMX,
        REMOTE_ADDR="192.0.2.44",
    )
    client = ApiClient.objects.get(tenant=acme)
    assert client.name == "SOAR"
    assert client.description == "Closes alerts"
    assert client.grants == ["alerts:read", "alerts:write"]
    assert client.ip_allowlist == ["203.0.113.0/24", "2001:db8::1", "198.51.100.7"]
    assert client.is_active is False
    assert client.created_by == alice and client.updated_by == alice
    event = AuditEvent.objects.get(action=AuditAction.CREATED)
    assert (event.actor, event.source_ip, event.client_id) == (
        "alice",
        "192.0.2.44",
        client.client_id,
    )


def test_create_without_htmx_renders_the_reveal_page(alice_client):
    response = alice_client.post(CREATE_URL, form_data())
    assert response.status_code == 200
    body = text(response)
    assert "<html" in body
    secret_in(response)
    assert "no-store" in response["Cache-Control"]
    assert "Done</a>" in body  # a link back, as there is no dialog to close


def test_a_missing_name_is_an_inline_error_and_keeps_what_was_typed(alice_client, acme):
    response = alice_client.post(
        CREATE_URL,
        form_data(
            name="",
            description="Keep me",
            grants=["cases:write"],
            ip_mode="restricted",
            ip_allowlist="10.0.0.0/8",
        ),
        headers=HTMX,
    )
    assert response.status_code == 200
    body = text(response)
    assert "Enter a name for the API client." in body
    assert 'aria-invalid="true"' in body
    assert "Keep me</textarea>" in body
    assert 'value="cases:write" id="grant-cases-write" checked' in body
    assert 'value="restricted" checked' in body
    assert "10.0.0.0/8</textarea>" in body
    assert not ApiClient.objects.filter(tenant=acme).exists()
    assert "acsec_" not in body and "HX-Trigger" not in response


def test_a_taken_name_is_refused_ignoring_case_and_keeps_the_input(alice_client, make_api_client):
    make_api_client("Splunk Export")
    response = alice_client.post(
        CREATE_URL,
        form_data(name="splunk EXPORT", description="Second try", grants=["users:read"]),
        headers=HTMX,
    )
    body = text(response)
    assert response.status_code == 200
    assert "An API client named “splunk EXPORT” already exists. Choose another name." in body
    assert 'value="splunk EXPORT"' in body
    assert "Second try</textarea>" in body
    assert 'value="users:read" id="grant-users-read" checked' in body
    assert ApiClient.objects.count() == 1


def test_a_name_taken_by_a_concurrent_create_is_an_inline_error(alice_client, monkeypatch):
    def racing_create(**kwargs):
        raise services.NameTaken(kwargs["name"])

    monkeypatch.setattr(services, "api_client_create", racing_create)
    body = text(alice_client.post(CREATE_URL, form_data(name="Racy"), headers=HTMX))
    assert "An API client named “Racy” already exists." in body
    assert 'value="Racy"' in body


def test_another_tenant_may_use_the_same_name(dave_client, make_api_client, globex):
    make_api_client("Splunk export")
    response = dave_client.post(CREATE_URL, form_data(name="Splunk export"), headers=HTMX)
    assert "API client created" in text(response)
    assert ApiClient.objects.filter(tenant=globex, name="Splunk export").exists()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("name", "x" * 101, "Ensure this value has at most 100 characters"),
        ("description", "x" * 1001, "Ensure this value has at most 1000 characters"),
        ("grants", ["oauth:read"], "“oauth:read” is not a permission you can grant."),
        ("grants", ["audit-log:write"], "“audit-log:write” is not a permission you can grant."),
        ("status", "deleted", "Select a valid choice"),
    ],
)
def test_invalid_fields_are_refused_with_a_clear_message(alice_client, field, value, message):
    response = alice_client.post(CREATE_URL, form_data(**{field: value}), headers=HTMX)
    assert response.status_code == 200
    assert message in text(response)
    assert not ApiClient.objects.exists()


@pytest.mark.parametrize(
    "typed, message",
    [
        ("10.0.0.1\n10.0.0.300", "“10.0.0.300” is not a valid IP address or CIDR range."),
        ("bad, worse", "“bad”, “worse” are not valid IP addresses or CIDR ranges."),
        ("10.0.0.5/24", "“10.0.0.5/24” has host bits set: did you mean 10.0.0.0/24?"),
        ("2001:db8::/129", "“2001:db8::/129” is not a valid IP address or CIDR range."),
        ("fe80::1%eth0", "“fe80::1%eth0” is not a valid IP address or CIDR range."),
        ("", "Enter at least one IP address or CIDR range"),
        (" , \n ", "Enter at least one IP address or CIDR range"),
        (
            "\n".join(f"10.0.{i // 256}.{i % 256}" for i in range(101)),
            "Enter at most 100 IP addresses or ranges (you entered 101)",
        ),
    ],
)
def test_ip_restriction_errors_name_the_bad_entry(alice_client, typed, message):
    response = alice_client.post(
        CREATE_URL, form_data(ip_mode="restricted", ip_allowlist=typed), headers=HTMX
    )
    body = text(response)
    assert message in body
    assert not ApiClient.objects.exists()
    # What was typed stays in the box.
    assert f"{typed.strip()}</textarea>" in body or typed.strip() == ","


def test_ip_entries_are_normalised_and_deduplicated(alice_client, acme):
    alice_client.post(
        CREATE_URL,
        form_data(
            ip_mode="restricted",
            ip_allowlist="10.0.0.1, 10.0.0.1/32\n2001:0DB8::0001;2001:db8::1 10.1.0.0/16",
        ),
        headers=HTMX,
    )
    assert ApiClient.objects.get(tenant=acme).ip_allowlist == [
        "10.0.0.1",
        "2001:db8::1",
        "10.1.0.0/16",
    ]


def test_allow_all_ignores_addresses_left_in_the_box(alice_client, acme):
    alice_client.post(
        CREATE_URL, form_data(ip_mode="all", ip_allowlist="not even an address"), headers=HTMX
    )
    assert ApiClient.objects.get(tenant=acme).ip_allowlist == []
