"""What each process keeps in memory: API clients, revoked tokens and pages
of the users API.

A token request for a client in memory makes no round trip at all; the
rows change rarely (an admin's edit, reset, rotation, deletion). Every cache
here is registered with oauth.coherence, which applies each change in every
process before the service that made it returns, and empties them all when
a process loses its lease. Only what the checks need is kept (the secret's
digest, never the secret); entries are reloaded at least every
CLIENT_CACHE_MAX_AGE seconds, for changes made by hand in SQL.

A row read from the database is kept only if no change was applied while it
was being read (an epoch moves on with every change), so a row read just
before a commit cannot outlive the change.
"""

import threading
import time

from cachetools import TLRUCache, TTLCache
from django.conf import settings
from django.utils import timezone

from oauth import coherence
from oauth.models import RevokedToken

_MAX_CLIENTS = 100_000
_MAX_REVOKED = 100_000
_MAX_PAGES = 512


class _Memory:
    def __init__(self):
        max_age = settings.OAUTH["CLIENT_CACHE_MAX_AGE"]
        self.lock = threading.Lock()
        self.epoch = 0
        self.clients: TTLCache = TTLCache(_MAX_CLIENTS, max_age)
        # jti -> when the token expires anyway (time.time()); dropped then.
        self.revoked: TLRUCache = TLRUCache(
            _MAX_REVOKED, ttu=lambda _jti, expires, _now: expires, timer=time.time
        )
        self.revocations_loaded = False
        self.pages: TTLCache = TTLCache(_MAX_PAGES, max_age)
        self.users_epochs: dict[str, int] = {}


_memory = _Memory()


def _reset() -> None:
    global _memory
    epoch = _memory.epoch
    _memory = _Memory()
    _memory.epoch = epoch + 1


# Clients ---------------------------------------------------------------------


def client_get(client_id: str):
    """The client's record as last loaded, while this process's lease holds."""
    if not coherence.live():
        return None
    memory = _memory
    with memory.lock:
        return memory.clients.get(client_id)


def epoch() -> int:
    return _memory.epoch


def client_keep(client_id: str, record, read_at_epoch: int) -> None:
    """Keeps a record read from the database, unless a change was applied
    since the read began (`read_at_epoch`) or the lease has lapsed."""
    memory = _memory
    with memory.lock:
        if memory.epoch == read_at_epoch and coherence.live():
            memory.clients[client_id] = record


def _client_forget(client_id: str) -> None:
    memory = _memory
    with memory.lock:
        memory.epoch += 1
        memory.clients.pop(client_id, None)


def client_changed(client_id: str) -> None:
    """In the transaction that changes or deletes the client (services)."""
    coherence.publish("client", client_id)


def _tenant_forget(tenant_id: str) -> None:
    memory = _memory
    with memory.lock:
        memory.epoch += 1
        for client_id, record in list(memory.clients.items()):
            if str(record.tenant_id) == tenant_id:
                memory.clients.pop(client_id, None)


def tenant_changed(tenant_id: str) -> None:
    """In the transaction that changes what every client of the tenant
    carries in its record (its policy: apiclients.policies)."""
    coherence.publish("tenant", tenant_id)


# Revoked tokens ------------------------------------------------------------------


def revoked(jti: str) -> bool | None:
    """Whether the token was revoked, or None when memory cannot say (no
    lease): then the caller asks the database."""
    if not coherence.live():
        return None
    memory = _memory
    if not memory.revocations_loaded:
        _revocations_load(memory)
    with memory.lock:
        return jti in memory.revoked


def _revocations_load(memory: _Memory) -> None:
    rows = RevokedToken.objects.filter(expires_at__gt=timezone.now()).values_list(
        "jti", "expires_at"
    )
    loaded = [(jti, expires.timestamp()) for jti, expires in rows]
    with memory.lock:
        # Added to, never replaced: a revocation applied meanwhile stays.
        for jti, expires in loaded:
            memory.revoked[jti] = expires
        memory.revocations_loaded = True


def _revoked_learn(key: str) -> None:
    expires, _, jti = key.partition(" ")
    memory = _memory
    with memory.lock:
        memory.revoked[jti] = float(expires)


def token_revoked(jti: str, expires: int) -> None:
    """In the transaction that records the revocation (oauth.tokens)."""
    coherence.publish("revoke", f"{expires} {jti}")


# Pages of a tenant's users (oauth.api) -----------------------------------------


def users_epoch(tenant_id) -> int:
    return _memory.users_epochs.get(str(tenant_id), 0)


def page_get(key: tuple, tenant_id):
    """A page kept by page_keep, while it is current."""
    if not coherence.live():
        return None
    memory = _memory
    with memory.lock:
        kept = memory.pages.get(key)
    if kept is None or kept[0] != (memory.epoch, users_epoch(tenant_id)):
        return None
    return kept[1]


def page_keep(key: tuple, tenant_id, read_at: tuple[int, int], value) -> None:
    """Keeps a page read from the database at `read_at` (page_epoch())."""
    memory = _memory
    with memory.lock:
        if read_at == (memory.epoch, users_epoch(tenant_id)) and coherence.live():
            memory.pages[key] = (read_at, value)


def page_epoch(tenant_id) -> tuple[int, int]:
    return _memory.epoch, users_epoch(tenant_id)


def _users_forget(tenant_id: str) -> None:
    memory = _memory
    with memory.lock:
        memory.users_epochs[tenant_id] = memory.users_epochs.get(tenant_id, 0) + 1


def users_changed(tenant_id) -> None:
    """In the transaction that changes a user or membership of the tenant."""
    coherence.publish("users", str(tenant_id))


coherence.register("client", apply=_client_forget, reset=_reset)
coherence.register("tenant", apply=_tenant_forget, reset=lambda: None)
coherence.register("revoke", apply=_revoked_learn, reset=lambda: None)
coherence.register("users", apply=_users_forget, reset=lambda: None)
