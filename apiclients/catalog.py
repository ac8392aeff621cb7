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
    Api("users", "Users"),
    Api("watchlists", "Watchlists"),
)

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
