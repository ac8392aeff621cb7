"""Small helpers shared by the console tests."""

import re

from django.urls import reverse

from apiclients.forms import expires_on_date
from tests.conftest import PASSWORD

HTMX = {"HX-Request": "true"}
# The admin's password, for the dialogs that ask for it again (sudo mode).
SUDO = {"password": PASSWORD}
SECRET_RE = re.compile(r"acsec_[A-Za-z0-9_-]{43}")

LIST_URL = reverse("apiclients:list")
CREATE_URL = reverse("apiclients:create")
AUDIT_URL = reverse("apiclients:audit_log")
EXPORT_URL = reverse("apiclients:audit_log_export")


def htmx(target: str | None = None) -> dict:
    return {**HTMX, "HX-Target": target} if target else dict(HTMX)


def detail_url(client) -> str:
    return reverse("apiclients:detail", args=[client.client_id])


def edit_url(client) -> str:
    return reverse("apiclients:edit", args=[client.client_id])


def reset_url(client) -> str:
    return reverse("apiclients:reset_secret", args=[client.client_id])


def delete_url(client) -> str:
    return reverse("apiclients:delete", args=[client.client_id])


def form_data(**overrides) -> dict:
    """A valid create/edit form as the browser would post it."""
    data = {
        "name": "Splunk export",
        "description": "Nightly audit export",
        "grants": ["audit-log:read", "alerts:read"],
        "ip_mode": "all",
        "ip_allowlist": "",
        "status": "active",
    }
    data.update(overrides)
    return data


def edit_data(client, **overrides) -> dict:
    data = form_data(
        name=client.name,
        description=client.description,
        grants=list(client.grants),
        ip_mode="restricted" if client.ip_allowlist else "all",
        ip_allowlist="\n".join(client.ip_allowlist),
        status="active" if client.is_active else "inactive",
        expires_on=expires_on_date(client.expires_at) or "",
        version=client.version,
    )
    data.update(overrides)
    return data


def text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def secret_in(response) -> str:
    found = SECRET_RE.findall(text(response))
    assert found, "no secret in the response"
    assert len(set(found)) == 1
    return found[0]
