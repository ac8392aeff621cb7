"""Validation of what people type into the console. No saving here: views hand
`cleaned_data` to one service function."""

import ipaddress
import re
from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from apiclients import services, sudo
from apiclients.catalog import GRANTABLE_APIS, normalize_grants, permission_rows
from apiclients.models import ApiClient, AuditAction, Tenant

MAX_IP_ENTRIES = 100

IP_ALL = "all"
IP_RESTRICTED = "restricted"
IP_MODE_CHOICES = [
    (IP_ALL, "Allow all IP addresses"),
    (IP_RESTRICTED, "Restrict access by IP address"),
]
STATUS_CHOICES = [("active", "Active"), ("inactive", "Inactive")]
GRANT_CHOICES = [
    (scope, f"{api.label} {scope.rsplit(':', 1)[1]}")
    for api in GRANTABLE_APIS
    for scope in api.scopes
]

# Presets of the permission matrix (app.js fills the boxes; the admin can
# change any box after). The roles are Secureworks Taegis XDR's client roles
# mapped onto this catalog.
_READ_ALL = [f"{api.key}:read" for api in GRANTABLE_APIS]
_INVESTIGATE = ["alerts:write", "cases:write"]
PRESETS = [
    ("read-all", "Read everything", "Read on every API, write on none", _READ_ALL),
    (
        "admin",
        "Admin",
        "Read and write on every API",
        [s for a in GRANTABLE_APIS for s in a.scopes],
    ),
    ("analyst", "Analyst", "Read everything; work alerts and cases", _READ_ALL + _INVESTIGATE),
    (
        "responder",
        "Responder",
        "Read everything; act on alerts, cases, devices and watchlists",
        _READ_ALL + _INVESTIGATE + ["devices:write", "watchlists:write"],
    ),
    (
        "auditor",
        "Auditor",
        "Read the audit log, alerts, cases and file events",
        ["audit-log:read", "alerts:read", "cases:read", "file-events:read"],
    ),
]

_SEPARATORS = re.compile(r"[\s,;]+")

# "Expires on 31 March" means it works through 31 March and stops at midnight
# that ends it, in the console's time zone.


def expires_at_for(day: date | None) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def expires_on_date(expires_at: datetime | None) -> date | None:
    if expires_at is None:
        return None
    return (timezone.localtime(expires_at) - timedelta(microseconds=1)).date()


def parse_ip_allowlist(text: str) -> list[str]:
    """Addresses and CIDR ranges, one per line or comma-separated, normalised
    (compressed IPv6, a /32 or /128 written as the bare address) and
    de-duplicated in the order given. Raises ValidationError naming the bad
    entries."""
    entries = [e for e in _SEPARATORS.split(text or "") if e]
    result: list[str] = []
    bad: list[str] = []
    host_bits: list[tuple[str, str]] = []
    for entry in entries:
        # Zone IDs ("fe80::1%eth0") name an interface on *our* side; they mean
        # nothing in an allowlist of peers.
        if "%" in entry:
            bad.append(entry)
            continue
        try:
            if "/" in entry:
                try:
                    network = ipaddress.ip_network(entry, strict=True)
                except ValueError:
                    # Widening 10.0.0.5/24 to 10.0.0.0/24 silently would allow
                    # more than the admin wrote: ask instead.
                    loose = ipaddress.ip_network(entry, strict=False)
                    host_bits.append((entry, str(loose)))
                    continue
                value = (
                    str(network.network_address)
                    if network.num_addresses == 1
                    else network.compressed
                )
            else:
                value = ipaddress.ip_address(entry).compressed
        except ValueError:
            bad.append(entry)
            continue
        if value not in result:
            result.append(value)

    errors = []
    if bad:
        shown = ", ".join(f"“{b}”" for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        noun = (
            "is not a valid IP address or CIDR range"
            if len(bad) == 1
            else ("are not valid IP addresses or CIDR ranges")
        )
        errors.append(
            forms.ValidationError(
                f"{shown}{more} {noun}. Use addresses such as 203.0.113.7 or 2001:db8::1, "
                "or ranges such as 203.0.113.0/24.",
                code="invalid_ip",
            )
        )
    for entry, network in host_bits[:5]:
        errors.append(
            forms.ValidationError(
                f"“{entry}” has host bits set: did you mean {network}?", code="host_bits"
            )
        )
    if errors:
        raise forms.ValidationError(errors)
    if len(result) > MAX_IP_ENTRIES:
        raise forms.ValidationError(
            f"Enter at most {MAX_IP_ENTRIES} IP addresses or ranges (you entered {len(result)}). "
            "Use CIDR ranges to cover more addresses.",
            code="too_many",
        )
    return result


class ApiClientForm(forms.Form):
    """Create (and, with `version`, edit) an API client."""

    name = forms.CharField(
        label="Client name",
        max_length=100,
        help_text="Name it after the integration or script that will use it.",
        widget=forms.TextInput(attrs={"class": "input", "autocomplete": "off", "autofocus": True}),
        error_messages={"required": "Enter a name for the API client."},
    )
    description = forms.CharField(
        label="Description",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "input"}),
    )
    grants = forms.MultipleChoiceField(
        label="API permissions",
        choices=GRANT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "“%(value)s” is not a permission you can grant."},
    )
    ip_mode = forms.ChoiceField(
        label="IP restriction",
        choices=IP_MODE_CHOICES,
        initial=IP_ALL,
        widget=forms.RadioSelect,
    )
    ip_allowlist = forms.CharField(
        label="Allowed IP addresses",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "class": "input mono", "spellcheck": "false", "autocomplete": "off"}
        ),
        help_text="One per line or comma-separated: IPv4 or IPv6 addresses and CIDR ranges.",
    )
    status = forms.ChoiceField(
        label="Status", choices=STATUS_CHOICES, initial="active", widget=forms.RadioSelect
    )
    allow_self_rotation = forms.BooleanField(
        label="Allow self-rotation",
        required=False,
        help_text="The client may rotate its own secret through the management API "
        "(from the pipeline that uses it).",
    )
    expires_on = forms.DateField(
        label="Expires",
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "input input--date"}),
        help_text="Optional. From this date on the client gets no tokens.",
        error_messages={"invalid": "Enter a date such as 2027-03-31."},
    )

    def __init__(self, *args, tenant: Tenant, instance: ApiClient | None = None, **kwargs):
        self.tenant = tenant
        self.instance = instance
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_for(cls, client: ApiClient) -> dict:
        return {
            "name": client.name,
            "description": client.description,
            "grants": list(client.grants),
            "ip_mode": IP_RESTRICTED if client.ip_allowlist else IP_ALL,
            "ip_allowlist": "\n".join(client.ip_allowlist),
            "status": "active" if client.is_active else "inactive",
            "expires_on": expires_on_date(client.expires_at),
            "allow_self_rotation": client.allow_self_rotation,
            "version": client.version,
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if any(ord(c) < 32 for c in name):
            raise forms.ValidationError("The name cannot contain control characters.")
        exclude = self.instance.pk if self.instance else None
        if services.name_is_taken(tenant=self.tenant, name=name, exclude_pk=exclude):
            raise forms.ValidationError(
                f"An API client named “{name}” already exists. Choose another name.",
                code="name_taken",
            )
        return name

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ip_mode") == IP_RESTRICTED and "ip_allowlist" not in self._errors:
            try:
                allowlist = parse_ip_allowlist(cleaned.get("ip_allowlist", ""))
            except forms.ValidationError as exc:
                self.add_error("ip_allowlist", exc)
            else:
                if not allowlist:
                    self.add_error(
                        "ip_allowlist",
                        "Enter at least one IP address or CIDR range, "
                        "or choose “Allow all IP addresses”.",
                    )
                cleaned["ip_list"] = allowlist
        else:
            cleaned["ip_list"] = []
        return cleaned

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data["expires_on"]
        if day is None:
            return None
        unchanged = self.instance is not None and day == expires_on_date(self.instance.expires_at)
        if not unchanged and day <= timezone.localdate():
            raise forms.ValidationError(
                "Choose a date after today, or leave it empty for no expiry. "
                "To stop a client now, set its status to Inactive.",
                code="past",
            )
        if day.year > 9000:
            raise forms.ValidationError("Choose a date before the year 9000.", code="far")
        return day

    def add_name_taken_error(self) -> None:
        """For the race the form check cannot see (services.NameTaken)."""
        name = self.cleaned_data.get("name", "")
        self.add_error("name", f"An API client named “{name}” already exists. Choose another name.")

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "grants": data["grants"],
            "ip_allowlist": data["ip_list"],
            "is_active": data["status"] == "active",
            "expires_at": expires_at_for(data.get("expires_on")),
            "allow_self_rotation": data.get("allow_self_rotation", False),
        }

    # Template helpers: the permission matrix and the radio groups are laid
    # out by hand, so they need the submitted (or initial) values.

    def selected_grants(self) -> set[str]:
        if self.is_bound:
            return set(self.data.getlist("grants")) if hasattr(self.data, "getlist") else set()
        return set(self.initial.get("grants", []))

    def permission_matrix(self) -> list[dict]:
        return permission_rows(self.selected_grants())

    def presets(self) -> list[dict]:
        return [
            {"key": key, "label": label, "title": title, "grants": " ".join(normalize_grants(g))}
            for key, label, title, g in PRESETS
        ]

    def current(self, field: str) -> str:
        value = self[field].value()
        return "" if value is None else str(value)


class EditApiClientForm(ApiClientForm):
    # The version the editor started from: a save by someone else in between
    # is a conflict, never a silent overwrite.
    version = forms.IntegerField(
        min_value=1,
        widget=forms.HiddenInput,
        # Only a tampered or truncated form gets these; say what to do.
        error_messages={
            key: "This form is incomplete or out of date. Reload the page and edit again."
            for key in ("required", "invalid", "min_value")
        },
    )


# A client that got a token this recently is taken to be in use: deleting it
# asks for its name to be typed.
RECENT_USE = timedelta(hours=24)


class SudoForm(forms.Form):
    """A destructive action on a credential: asks for the admin's password
    unless sudo mode is on (apiclients.sudo)."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            attrs={"class": "input", "autocomplete": "current-password", "autofocus": True}
        ),
    )

    def __init__(self, *args, request, **kwargs):
        self.request = request
        self.needs_password = not sudo.is_active(request)
        super().__init__(*args, **kwargs)
        if not self.needs_password:
            del self.fields["password"]

    def forget_confirmed_password(self) -> None:
        """After a POST whose password was right but another field was not:
        sudo mode is on now, so the form shown again asks for it no more."""
        if "password" in self.fields and sudo.is_active(self.request):
            del self.fields["password"]
            self.needs_password = False

    @property
    def asks_nothing(self) -> bool:
        """Nothing to type: the dialog focuses Cancel instead of a field."""
        return "password" not in self.fields and "confirm_name" not in self.fields

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password", "")
        minutes = sudo.throttled_minutes(self.request)
        if minutes is not None:
            raise forms.ValidationError(
                f"Too many wrong passwords. Try again in {minutes} "
                f"minute{'' if minutes == 1 else 's'}.",
                code="throttled",
            )
        if not password:
            raise forms.ValidationError("Enter your password to confirm.", code="required")
        if not sudo.check_password(self.request, password):
            raise forms.ValidationError(
                "That is not your password. Enter the password you sign in with.",
                code="wrong_password",
            )
        return ""  # never kept in cleaned_data


class ResetSecretForm(SudoForm):
    pass


class DeleteForm(SudoForm):
    confirm_name = forms.CharField(
        label="Type the client's name to confirm",
        required=False,
        strip=True,
        widget=forms.TextInput(
            attrs={"class": "input", "autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args, client: ApiClient, now: datetime, **kwargs):
        self.client = client
        super().__init__(*args, **kwargs)
        last = client.last_redeemed_at
        self.recently_used = last is not None and now - last < RECENT_USE
        if self.recently_used:
            # The name first: it is the check that makes the admin stop and read.
            self.order_fields(["confirm_name", "password"])
            if "password" in self.fields:
                self.fields["password"].widget.attrs.pop("autofocus", None)
            self.fields["confirm_name"].widget.attrs["autofocus"] = True
        else:
            del self.fields["confirm_name"]

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data.get("confirm_name", "")
        if typed != self.client.name:
            raise forms.ValidationError(
                f"Type “{self.client.name}” exactly as shown to delete this client.",
                code="name_mismatch",
            )
        return typed


OVERLAP_CHOICES = [("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days")]
OVERLAPS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


class RotateSecretForm(SudoForm):
    overlap = forms.ChoiceField(
        label="Keep the old secret working for",
        choices=OVERLAP_CHOICES,
        initial="24h",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose how long the old secret keeps working."},
    )

    field_order = ["overlap", "password"]

    @property
    def grace(self) -> timedelta:
        return OVERLAPS[self.cleaned_data["overlap"]]


class LiftLockoutForm(forms.Form):
    # Empty: the lockout of the client from anywhere.
    address = forms.GenericIPAddressField(
        required=False,
        error_messages={"invalid": "That is not an IP address: open the lockout from the drawer."},
    )


ACTION_CHOICES = [("", "All actions"), *AuditAction.choices]


class AuditLogFilterForm(forms.Form):
    client = forms.CharField(label="Client", required=False, max_length=100)
    action = forms.ChoiceField(label="Action", required=False, choices=ACTION_CHOICES)
