"""The platform's APIs an API client can be granted, modelled on the API
permissions of Code42 Incydr's API clients.

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
    description: str = ""  # one line, shown beside the API in the permission matrix

    @property
    def scopes(self) -> list[str]:
        return [f"{self.key}:read"] + ([f"{self.key}:write"] if self.write else [])


APIS: tuple[Api, ...] = (
    Api(
        "actors",
        "Actors",
        write=False,
        description="People whose activity is watched, with their risk",
    ),
    Api("agents", "Agents", description="Endpoint agents: their health, updates and removal"),
    Api(
        "alert-rules",
        "Alert Rules",
        note="Rules in the Developer Portal",
        description="The rules that raise alerts",
    ),
    Api("alerts", "Alerts", description="Alerts raised by rules: their state and notes"),
    Api("audit-log", "Audit Log", write=False, description="Who did what in the console, and when"),
    Api("cases", "Cases", description="Investigations and the file events in them"),
    Api("customer", "Customer", grantable=False),
    Api(
        "data-preferences",
        "Data Preferences",
        note="Trusted Activities in the Developer Portal",
        description="Domains and apps whose activity is trusted",
    ),
    Api("departments", "Departments", write=False, description="Departments from your directory"),
    Api(
        "devices",
        "Devices",
        note="Read is required to download exfiltrated files",
        description="Computers with an agent: activation and deactivation",
    ),
    Api(
        "directory-groups",
        "Directory Groups",
        write=False,
        description="Groups from your directory",
    ),
    Api(
        "file-events",
        "File Events",
        write=False,
        description="File activity on endpoints and in the cloud",
    ),
    Api("oauth", "Oauth", grantable=False),
    Api("sessions", "Sessions", description="A user's activity over time, scored for risk"),
    Api(
        "introspection",
        "Token introspection",
        write=False,
        note="Ask whether an access token is active and what it grants (RFC 7662)",
        description="For an API gateway: whether an access token is active, and its scopes",
    ),
    Api("users", "Users", description="Console users: their status and roles"),
    Api("watchlists", "Watchlists", description="Watchlists and the people on them"),
)

# The grant that lets a client use the introspection endpoint (RFC 7662 2.1:
# the endpoint needs an authorization of its own, not only authentication).
INTROSPECTION_SCOPE = "introspection:read"

GRANTABLE_APIS: tuple[Api, ...] = tuple(api for api in APIS if api.grantable)
ALL_SCOPES: frozenset[str] = frozenset(s for api in GRANTABLE_APIS for s in api.scopes)
_ORDER = {scope: i for i, scope in enumerate(s for api in GRANTABLE_APIS for s in api.scopes)}


def normalize_grants(grants) -> list[str]:
    """Known grants, deduplicated, in catalog order. Unknown ones are dropped.
    Write implies read, as in Stripe's restricted keys: "alerts:write" alone
    becomes "alerts:read alerts:write", so that what the console shows, what
    is saved and what a token can get are the same thing."""
    known = {g for g in grants if g in ALL_SCOPES}
    known |= {g.rsplit(":", 1)[0] + ":read" for g in known if g.endswith(":write")}
    return sorted(known, key=_ORDER.__getitem__)


def permission_rows(grants) -> list[dict]:
    """One row per grantable API for the read/write table and matrix."""
    held = set(normalize_grants(grants))
    return [
        {
            "api": api,
            "read": f"{api.key}:read" in held,
            "write": api.write and f"{api.key}:write" in held,
        }
        for api in GRANTABLE_APIS
    ]
