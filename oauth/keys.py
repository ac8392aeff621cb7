"""Token signing keys (ES256, EC P-256).

The key comes from OAUTH_SIGNING_KEY (a PEM value) or OAUTH_SIGNING_KEY_FILE.
When neither is set, one is generated the first time it is needed and kept in
the database (encrypted with a key derived from SECRET_KEY), so restarts and
every worker process share it; `manage.py rotate_signing_key` replaces it.

Each process loads the keys once and keeps them in memory: signing and
verifying cost no query. It reloads them every RELOAD_AFTER seconds so that a
rotation made elsewhere is picked up, and early when it meets an unknown kid.
"""

import base64
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from oauth.models import SigningKey

ALGORITHM = "ES256"
RELOAD_AFTER = 60.0
# An unknown kid triggers a reload at most this often, so that tokens with
# made-up kids cannot turn into a query each.
UNKNOWN_KID_RELOAD_AFTER = 5.0
_HKDF_INFO = b"apiclients oauth signing key v1"


@dataclass(frozen=True)
class Key:
    kid: str
    public_key: ec.EllipticCurvePublicKey
    jwk: dict
    private_key: ec.EllipticCurvePrivateKey | None = None


@dataclass(frozen=True)
class Keyring:
    signing: Key
    # Every key whose tokens may still be valid, by kid; the signing key first.
    verifying: dict[str, Key]
    loaded_at: float
    configured: bool


_keyring: Keyring | None = None
_lock = threading.Lock()


def signing_key() -> Key:
    return _current().signing


def verification_key(kid: str) -> Key | None:
    ring = _current()
    key = ring.verifying.get(kid)
    stale = time.monotonic() - ring.loaded_at > UNKNOWN_KID_RELOAD_AFTER
    if key is None and stale and not ring.configured:
        key = _load().verifying.get(kid)
    return key


def jwks() -> dict:
    return {"keys": [key.jwk for key in _current().verifying.values()]}


def reset_cache() -> None:
    global _keyring
    _keyring = None


@receiver(setting_changed)
def _settings_changed(*, setting, **kwargs):
    if setting == "OAUTH" or setting.startswith("SECRET_KEY"):
        reset_cache()


def _current() -> Keyring:
    ring = _keyring
    if ring is None or time.monotonic() - ring.loaded_at > RELOAD_AFTER:
        ring = _load()
    return ring


def _load() -> Keyring:
    global _keyring
    with _lock:
        configured = _configured_private_key()
        if configured is not None:
            key = _key_from_private(configured)
            ring = Keyring(key, {key.kid: key}, time.monotonic(), configured=True)
        else:
            ring = _load_from_database()
        _keyring = ring
        return ring


def _configured_private_key() -> ec.EllipticCurvePrivateKey | None:
    pem = settings.OAUTH["SIGNING_KEY"]
    source = "OAUTH_SIGNING_KEY"
    if not pem and settings.OAUTH["SIGNING_KEY_FILE"]:
        source = "OAUTH_SIGNING_KEY_FILE"
        try:
            pem = Path(settings.OAUTH["SIGNING_KEY_FILE"]).read_text()
        except OSError as exc:
            raise ImproperlyConfigured(f"{source} cannot be read: {exc.strerror}") from None
    if not pem:
        return None
    if "\n" not in pem:
        # An environment variable often carries the PEM with escaped newlines.
        pem = pem.replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # `from None`: nothing about the key material goes into a traceback.
        raise ImproperlyConfigured(f"{source} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ImproperlyConfigured(f"{source} must be an EC P-256 key (ES256)")
    return key


def _load_from_database() -> Keyring:
    now = timezone.now()
    rows = list(
        SigningKey.objects.filter(
            Q(is_current=True) | Q(retired_at__gt=now - _retired_key_window())
        ).order_by("-is_current", "-created_at")
    )
    if not rows or not rows[0].is_current:
        rows.insert(0, _create_current_key())
    current = rows[0]
    signing = _key_from_private(_decrypt(current))
    verifying = {signing.kid: signing}
    for row in rows[1:]:
        verifying[row.kid] = _key_from_jwk(row.public_jwk)
    return Keyring(signing, verifying, time.monotonic(), configured=False)


def _retired_key_window() -> timedelta:
    # A process may sign with a key for up to RELOAD_AFTER seconds after it
    # was retired elsewhere, and that token lives OAUTH_TOKEN_LIFETIME more.
    return timedelta(seconds=settings.OAUTH["TOKEN_LIFETIME"] + RELOAD_AFTER)


def _create_current_key() -> SigningKey:
    row = _new_key_row()
    try:
        with transaction.atomic():
            row.save()
        return row
    except IntegrityError:
        # Another process created it first (one current key at most): use theirs.
        return SigningKey.objects.get(is_current=True)


def rotate() -> SigningKey:
    """A new current key; the old one is retired but stays published until
    the tokens it signed have expired."""
    if _configured_private_key() is not None:
        raise ImproperlyConfigured(
            "The signing key is configured (OAUTH_SIGNING_KEY / OAUTH_SIGNING_KEY_FILE): "
            "rotate it there"
        )
    row = _new_key_row()
    with transaction.atomic():
        SigningKey.objects.filter(is_current=True).update(
            is_current=False, retired_at=timezone.now()
        )
        row.save()
    reset_cache()
    return row


def _new_key_row() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(private.public_key())
    return SigningKey(
        kid=jwk["kid"],
        public_jwk=jwk,
        encrypted_private_key=_encrypt(private, jwk["kid"]),
        is_current=True,
    )


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    numbers = public_key.public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638 thumbprint: required members, sorted, no whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {**members, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _key_from_private(private: ec.EllipticCurvePrivateKey) -> Key:
    public = private.public_key()
    jwk = public_jwk(public)
    return Key(kid=jwk["kid"], public_key=public, jwk=jwk, private_key=private)


def _key_from_jwk(jwk: dict) -> Key:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64url_decode(jwk["x"]), "big"),
        int.from_bytes(_b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    )
    return Key(kid=jwk["kid"], public_key=numbers.public_key(), jwk=jwk)


def _wrapping_key(secret_key: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return AESGCM(derived)


def _encrypt(private: ec.EllipticCurvePrivateKey, kid: str) -> str:
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(12)
    # The kid is bound as associated data: a row's ciphertext cannot be
    # swapped into another row.
    sealed = _wrapping_key(settings.SECRET_KEY).encrypt(nonce, pem, kid.encode())
    return "v1:" + _b64url(nonce + sealed)


def _decrypt(row: SigningKey) -> ec.EllipticCurvePrivateKey:
    data = _b64url_decode(row.encrypted_private_key.removeprefix("v1:"))
    # SECRET_KEY_FALLBACKS lets an operator rotate SECRET_KEY without losing the key.
    for secret_key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        try:
            pem = _wrapping_key(secret_key).decrypt(data[:12], data[12:], row.kid.encode())
        except InvalidTag:
            continue
        return serialization.load_pem_private_key(pem, password=None)
    raise ImproperlyConfigured(
        f"The signing key {row.kid} was stored under another SECRET_KEY: put the old one in "
        "SECRET_KEY_FALLBACKS, or run `manage.py rotate_signing_key` to replace the key"
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
