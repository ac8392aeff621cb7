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
    Api(
        "api-clients",
        "API Clients",
        note="Only an admin can grant it",
        description="API clients themselves, through the management API",
    ),
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


# Roles for clients: named presets that expand to grants, with the role IDs
# of the Taegis documentation so that its scripts run unchanged. A client's
# scopes are its explicit grants and the grants of its live roles (an
# assignment may expire; oauth.clients checks that at every use).


@dataclass(frozen=True)
class RolePreset:
    id: str
    label: str
    # As the Taegis API names it (role_name, and roles in camelCase).
    name: str
    grants: frozenset[str]
    description: str = ""

    @property
    def camel_name(self) -> str:
        return self.name[0].lower() + self.name[1:]


def _reads(*keys: str) -> set[str]:
    return {f"{key}:read" for key in keys}


def _writes(*keys: str) -> set[str]:
    return {f"{key}:write" for key in keys}


_ANALYST = _reads(
    "actors",
    "agents",
    "alert-rules",
    "alerts",
    "cases",
    "data-preferences",
    "departments",
    "devices",
    "directory-groups",
    "file-events",
    "sessions",
    "users",
    "watchlists",
)
ROLES: tuple[RolePreset, ...] = (
    RolePreset(
        "ba0fdcbd-e87d-4bdd-ae7d-ca6118b25068",
        "Admin",
        "TenantAdmin",
        frozenset(s for s in ALL_SCOPES if s != INTROSPECTION_SCOPE),
        "Every permission, including managing API clients",
    ),
    RolePreset(
        "a4903f9f-465b-478f-a24e-82fa2e129d2e",
        "Analyst",
        "TenantAnalyst",
        frozenset(_ANALYST),
        "Reads every investigation API",
    ),
    RolePreset(
        "a72dace7-4536-4dbc-947d-015a8eb65f4d",
        "Responder",
        "TenantResponder",
        frozenset(
            _ANALYST | _writes("agents", "alerts", "cases", "devices", "sessions", "watchlists")
        ),
        "An analyst who also acts on alerts, cases, sessions, devices and watchlists",
    ),
    RolePreset(
        "ace1cae4-59fd-4fd1-9500-40077dc529a7",
        "Auditor",
        "TenantAuditor",
        frozenset(
            _reads("audit-log", "users", "alert-rules", "data-preferences") | {API_CLIENTS_READ}
        ),
        "Reads the audit log, users, rules and the API clients; changes nothing",
    ),
)
ROLES_BY_ID: dict[str, RolePreset] = {role.id: role for role in ROLES}
# The role a client created through the Taegis createClient mutation gets
# when none is named, as that documentation says.
DEFAULT_GRAPHQL_ROLE = "a4903f9f-465b-478f-a24e-82fa2e129d2e"
