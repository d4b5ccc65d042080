"""Encryption at rest for secrets the service must be able to use again (CAD signing secrets,
the push key and retired audit chain keys).

A database dump alone cannot forge CAD traffic: the secrets in it are Fernet ciphertext under a
key that lives outside the database (``CORESPOND_SECRET_KEY``, or in development a key file
under ``data_dir`` created on first use).

``CORESPOND_SECRET_KEY`` may hold several keys, newest first, so that the key can be rotated
without a moment in which a process cannot read what another wrote: the newest seals, every
key opens, and ``corespond secret-key rotate`` seals everything stored again under the
newest, after which the older keys can be removed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from corespond.config import Settings, parse_secret_keys

DEV_KEY_FILE = "secret.key"


class UnreadableSecret(RuntimeError):
    """A stored secret that no configured key decrypts."""


class SecretBox:
    """Seals small secrets under the newest key; opens what any of the keys sealed."""

    def __init__(self, key: bytes, *older: bytes) -> None:
        self.keys: tuple[bytes, ...] = (key, *older)
        self._newest = Fernet(key)
        self._fernet = MultiFernet([Fernet(k) for k in self.keys])

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use (the audit chain's HMAC), derived from the newest key."""
        return _derive(self.keys[0], purpose)

    def derived_keys(self, purpose: str) -> list[bytes]:
        """The key for ``purpose`` derived from each configured key, newest first (what any
        process of this deployment may be writing with during a rotation)."""
        return [_derive(key, purpose) for key in self.keys]

    def oldest_derived_key(self, purpose: str) -> bytes:
        """The key for ``purpose`` derived from the oldest configured key: the one that
        stays the same while a new key is added in front of it."""
        return _derive(self.keys[-1], purpose)

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            raise UnreadableSecret(
                "a stored secret cannot be decrypted: none of the keys in "
                "CORESPOND_SECRET_KEY is the key it was sealed with"
            ) from exc

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` is sealed under the newest key."""
        try:
            self._newest.decrypt(ciphertext)
        except InvalidToken:
            return False
        return True

    def reseal(self, ciphertext: bytes) -> bytes:
        """The same secret sealed under the newest key (``UnreadableSecret`` if no key
        opens it)."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as exc:
            raise UnreadableSecret(
                "a stored secret cannot be decrypted by any key in CORESPOND_SECRET_KEY"
            ) from exc


def fingerprint(key: bytes) -> str:
    """A short public name for a key (it reveals nothing of the key)."""
    return hashlib.sha256(b"corespond key fingerprint\0" + key).hexdigest()[:16]


def _derive(key: bytes, purpose: str) -> bytes:
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()


def secret_box(settings: Settings) -> SecretBox:
    """The box for these settings; development falls back to a key file made on first use."""
    if settings.secret_key is not None:
        return SecretBox(*parse_secret_keys(settings.secret_key.get_secret_value()))
    return SecretBox(_development_key(settings.data_dir / DEV_KEY_FILE))


def _development_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
