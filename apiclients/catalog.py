"""The platform's APIs an API client can be granted, modelled on Incydr's list.

A grant is "<api key>:read" or "<api key>:write"; grants are the client's OAuth
scopes. Read-only APIs (Audit Log, File Events, ...) offer no write, and APIs
that only people may use (Oauth, Customer) are not offered at all.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Api:
    key: str
    label: str
    write: bool = True
    grantable: bool = True
    note: str = ""

    @property
    def scopes(self) -> list[str]:
        return [f"{self.key}:read"] + ([f"{self.key}:write"] if self.write else [])


APIS: tuple[Api, ...] = (
    Api("actors", "Actors", write=False),
    Api("agents", "Agents"),
    Api("alert-rules", "Alert Rules", note="Rules in the Developer Portal"),
    Api("alerts", "Alerts"),
    Api(
        "api-clients",
        "API Clients",
        note="Manage API clients through the management API; only an admin can grant it",
    ),
    Api("audit-log", "Audit Log", write=False),
    Api("cases", "Cases"),
    Api("customer", "Customer", grantable=False),
    Api("data-preferences", "Data Preferences", note="Trusted Activities in the Developer Portal"),
    Api("departments", "Departments", write=False),
    Api("devices", "Devices", note="Read is required to download exfiltrated files"),
    Api("directory-groups", "Directory Groups", write=False),
    Api("file-events", "File Events", write=False),
    Api("oauth", "Oauth", grantable=False),
    Api("sessions", "Sessions"),
    Api(
        "introspection",
        "Token introspection",
        write=False,
        note="Ask whether an access token is active and what it grants (RFC 7662)",
    ),
    Api("users", "Users"),
    Api("watchlists", "Watchlists"),
)

# The grant that lets a client use the introspection endpoint (RFC 7662 2.1:
# the endpoint needs an authorization of its own, not only authentication).
INTROSPECTION_SCOPE = "introspection:read"
# The management API (apiclients.api). Only a person (an admin's personal
# access token, or the console) may grant these: a client holding them could
# otherwise mint peers that outlive its own revocation.
API_CLIENTS_READ = "api-clients:read"
API_CLIENTS_WRITE = "api-clients:write"
ADMIN_ONLY_SCOPES = frozenset({API_CLIENTS_READ, API_CLIENTS_WRITE})

GRANTABLE_APIS: tuple[Api, ...] = tuple(api for api in APIS if api.grantable)
ALL_SCOPES: frozenset[str] = frozenset(s for api in GRANTABLE_APIS for s in api.scopes)
_ORDER = {scope: i for i, scope in enumerate(s for api in GRANTABLE_APIS for s in api.scopes)}


def normalize_grants(grants) -> list[str]:
    """Known grants, deduplicated, in catalog order. Unknown ones are dropped."""
    return sorted({g for g in grants if g in ALL_SCOPES}, key=_ORDER.__getitem__)


def permission_rows(grants) -> list[dict]:
    """One row per grantable API for the read/write table and matrix."""
    held = set(grants)
    return [
        {
            "api": api,
            "read": f"{api.key}:read" in held,
            "write": api.write and f"{api.key}:write" in held,
        }
        for api in GRANTABLE_APIS
    ]
