"""Client IDs and secrets.

A secret is 32 random bytes (256 bits) behind a recognisable prefix, so secret
scanners and people can tell what leaked. It is stored only as its SHA-256
digest: the secret is machine-generated and high-entropy, so a slow password
hash would add nothing but CPU cost on every token request (and hand attackers
a cheap way to burn it). Comparison is constant-time.
"""

import hashlib
import hmac
import re
import secrets

CLIENT_ID_PREFIX = "key-"
SECRET_PREFIX = "acsec_"
# Personal access tokens of console admins (the management API): the same
# shape, their own prefix, so scanners and people can tell the two apart.
ACCESS_TOKEN_PREFIX = "acpat_"

# token_urlsafe only emits unreserved characters, so IDs and secrets survive
# the form-urlencoding that RFC 6749 2.3.1 asks clients to apply to Basic auth.
_SECRET_RE = re.compile(r"^acsec_[A-Za-z0-9_-]{43}$")
# One of our secrets, or enough of one to matter, anywhere in a text: the
# prefix and at least 8 of its characters (48 of its 256 bits), so a secret
# pasted into the wrong field, quoted, after a colon or cut short is found.
# Case-insensitive, as a lowercased secret still gives most of it away.
_SECRET_ANYWHERE = re.compile(r"(acsec|acpat)_[A-Za-z0-9_-]{8,}", re.IGNORECASE)
WITHHELD = "acsec_[withheld]"
_ACCESS_TOKEN_RE = re.compile(r"^acpat_[A-Za-z0-9_-]{43}$")


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_access_token(value: str) -> bool:
    return bool(_ACCESS_TOKEN_RE.match(value))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(value: str) -> bool:
    return bool(_SECRET_RE.match(value))


def contains_secret(text: str) -> bool:
    """Whether `text` holds a secret (or enough of one) anywhere. Anything
    that does must not become a cache key, a log line or a message as it is:
    use a digest of it, or `redact` it."""
    return _SECRET_ANYWHERE.search(text) is not None


def redact(text: str) -> str:
    """`text` with every secret in it replaced by "acsec_[withheld]" (and
    every personal access token by "acpat_[withheld]")."""
    return _SECRET_ANYWHERE.sub(lambda m: m.group(1).lower() + "_[withheld]", text)


def secret_matches(secret: str, stored_digest: str) -> bool:
    # Anything that is not shaped like one of our secrets (a stored digest
    # pasted as a secret, say) never matches.
    if not stored_digest or not looks_like_secret(secret):
        return False
    return hmac.compare_digest(digest(secret), stored_digest)
