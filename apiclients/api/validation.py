"""The API's input, validated by the console's own forms, so that both say
the same thing about the same mistake."""

from django import forms

from apiclients.api.problems import Problem
from apiclients.forms import (
    IP_ALL,
    IP_RESTRICTED,
    OVERLAPS,
    ApiClientForm,
    EditApiClientForm,
    RotateSecretForm,
    expires_on_date,
)
from apiclients.models import ApiClient, Tenant

# Form field -> API field.
_FIELDS = {
    "name": "name",
    "description": "description",
    "grants": "permissions",
    "ip_allowlist": "ipAllowlist",
    "ip_mode": "ipAllowlist",
    "status": "status",
    "expires_on": "expiresOn",
    "version": "version",
    "overlap": "overlap",
    "__all__": "",
}


def form_data(values: dict) -> dict:
    """API values (camelCase, lists) as the console's form posts them."""
    ip = values.get("ipAllowlist") or []
    expires_on = values.get("expiresOn")
    return {
        "name": values.get("name") or "",
        "description": values.get("description") or "",
        "grants": list(values.get("permissions") or []),
        "ip_mode": IP_RESTRICTED if ip else IP_ALL,
        "ip_allowlist": "\n".join(ip),
        "status": values.get("status") or "active",
        "expires_on": expires_on.isoformat() if expires_on else "",
    }


def current_values(client: ApiClient) -> dict:
    return {
        "name": client.name,
        "description": client.description,
        "permissions": list(client.grants),
        "ipAllowlist": list(client.ip_allowlist),
        "status": "active" if client.is_active else "inactive",
        "expiresOn": expires_on_date(client.expires_at),
    }


def invalid(form) -> Problem:
    errors = [
        {"field": _FIELDS.get(name, name), "message": str(message)}
        for name, messages in form.errors.items()
        for message in messages
    ]
    return Problem(
        422,
        errors[0]["message"] if len(errors) == 1 else "Some fields are not valid; see errors.",
        errors=errors,
    )


def create_arguments(*, tenant: Tenant, values: dict) -> dict:
    form = ApiClientForm(form_data(values), tenant=tenant)
    if not form.is_valid():
        raise invalid(form)
    arguments = form.service_arguments()
    # Given apart, behind its own guard (apiclients.api.guards).
    arguments.pop("allow_self_rotation")
    return arguments


def update_arguments(*, client: ApiClient, changes: dict) -> dict:
    merged = {**current_values(client), **changes}
    form = EditApiClientForm(
        {**form_data(merged), "version": str(client.version)},
        tenant=client.tenant,
        instance=client,
    )
    if not form.is_valid():
        raise invalid(form)
    arguments = form.service_arguments()
    # Only what was sent is changed (and audited).
    sent = {
        "name": "name",
        "description": "description",
        "permissions": "grants",
        "ipAllowlist": "ip_allowlist",
        "status": "is_active",
        "expiresOn": "expires_at",
    }
    return {sent[key]: arguments[sent[key]] for key in changes if key in sent}


class _OverlapForm(forms.Form):
    # The console's field, without the console's password re-entry (sudo
    # mode): a token is the credential here, and it is checked on every call.
    overlap = RotateSecretForm.base_fields["overlap"]


def rotate_grace(overlap: str):
    form = _OverlapForm({"overlap": overlap})
    if not form.is_valid():
        raise invalid(form)
    return OVERLAPS[form.cleaned_data["overlap"]]
