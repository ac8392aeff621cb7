"""The address a request comes from, decided in one place.

Behind a reverse proxy, the peer of every connection is the proxy. The proxy
says whom it serves in X-Forwarded-For (or the RFC 7239 Forwarded header),
but anyone can send such a header. So a header is believed only from the
proxies named in TRUSTED_PROXIES (addresses or CIDR ranges), and only as far
as they wrote it. The chain is the header's entries followed by the peer. It
is walked from the right while each address is a trusted proxy, and the first
address that is not one is the client (the right-most untrusted address).
The `forwarded` library parses both headers and does the walk. With
TRUSTED_PROXIES empty (the default), the client is the peer whatever the
headers say, so a server that clients reach directly cannot be fooled.

Only the header that TRUSTED_PROXY_HEADER names is read (X-Forwarded-For by
default, or Forwarded). A proxy passes on whatever headers it does not set,
so believing both would let a client forge the one its proxy leaves alone.

`ClientAddressMiddleware` (first in MIDDLEWARE) and config.wsgi put the
decided address in REMOTE_ADDR, and keep the peer in META[PEER_ADDR]. So
everything that reads REMOTE_ADDR, or calls `client_address`, uses the
decided address: IP restrictions, rate limits and lockouts, sign-in limits,
the audit log, and gunicorn's access log (which reads the same environ after
the response). REMOTE_ADDR is empty when the client cannot be told: a
trusted proxy sent a malformed or obfuscated entry (`for=unknown`), or the
peer has no IP address (a Unix socket). An IP restriction then refuses the
request.
"""

import ipaddress
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from forwarded import client_from_forwarded, client_from_x_forwarded

# The peer's address as the WSGI server reported it, once REMOTE_ADDR holds
# the decided one (its presence also means "decided already").
PEER_ADDR = "apiclients.peer_addr"

_HEADERS = {
    "x-forwarded-for": ("HTTP_X_FORWARDED_FOR", client_from_x_forwarded),
    "forwarded": ("HTTP_FORWARDED", client_from_forwarded),
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _config(proxies: tuple[str, ...], header: str):
    networks = []
    for entry in proxies:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or a CIDR range"
            ) from None
    try:
        meta_key, walk = _HEADERS[header.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(
            "TRUSTED_PROXY_HEADER must be X-Forwarded-For or Forwarded"
        ) from None
    return tuple(networks), meta_key, walk


def _settings():
    return _config(tuple(settings.TRUSTED_PROXIES), settings.TRUSTED_PROXY_HEADER)


def _text(address: IPAddress) -> str:
    # One spelling per client: a dual-stack socket's ::ffff:a.b.c.d is IPv4.
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _decide(meta: Mapping) -> str | None:
    try:
        peer = ipaddress.ip_address(meta.get("REMOTE_ADDR") or "")
    except ValueError:
        return None
    networks, meta_key, walk = _settings()
    if not networks:
        return _text(peer)
    try:
        client = walk(meta.get(meta_key), peer, trusted=networks)
    except (TypeError, ValueError):
        return None
    if client is None or client.node.ip is None:
        return None
    return _text(client.node.ip)


def client_address(meta: Mapping | HttpRequest) -> str | None:
    """The client's IP address, as text, for a request (or its META, or a
    WSGI environ); None when it cannot be told. The one place that decides
    it (see the module)."""
    if isinstance(meta, HttpRequest):
        meta = meta.META
    if PEER_ADDR in meta:
        return meta.get("REMOTE_ADDR") or None
    return _decide(meta)


def client_address_settle(environ: dict) -> None:
    """Puts the decided address in REMOTE_ADDR, once, and keeps the peer
    in PEER_ADDR."""
    if PEER_ADDR in environ:
        return
    address = _decide(environ)
    environ[PEER_ADDR] = environ.get("REMOTE_ADDR", "")
    environ["REMOTE_ADDR"] = address or ""


class ClientAddressMiddleware:
    """First in MIDDLEWARE, so everything after it sees the client's address."""

    def __init__(self, get_response):
        # A mistyped TRUSTED_PROXIES stops the server at start, not at the
        # first request.
        _settings()
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client_address_settle(request.META)
        return self.get_response(request)
