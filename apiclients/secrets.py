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

# token_urlsafe only emits unreserved characters, so IDs and secrets survive
# the form-urlencoding that RFC 6749 2.3.1 asks clients to apply to Basic auth.
_SECRET_RE = re.compile(r"^acsec_[A-Za-z0-9_-]{43}$")


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(value: str) -> bool:
    return bool(_SECRET_RE.match(value))


def contains_secret(text: str) -> bool:
    """Whether a secret, or a piece of one, may be anywhere in `text` (a
    client ID or username that someone pasted a secret into): then the text
    goes into no key, log line or message."""
    return SECRET_PREFIX in text


def secret_matches(secret: str, stored_digest: str) -> bool:
    # Anything that is not shaped like one of our secrets (a stored digest
    # pasted as a secret, say) never matches.
    if not stored_digest or not looks_like_secret(secret):
        return False
    return hmac.compare_digest(digest(secret), stored_digest)
