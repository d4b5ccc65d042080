"""Encryption at rest for secrets the service must be able to use again (CAD signing secrets).

A database dump alone cannot forge CAD traffic: the secrets in it are Fernet ciphertext under a
key that lives outside the database (``CORESPOND_SECRET_KEY``, or in development a key file
under ``data_dir`` created on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from corespond.config import Settings

DEV_KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts small secrets with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derived_key(self, purpose: str) -> bytes:
        """A key for another use (the audit chain's HMAC), derived from this one."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "a stored secret cannot be decrypted: CORESPOND_SECRET_KEY differs from the key "
                "it was sealed with"
            ) from exc


def secret_box(settings: Settings) -> SecretBox:
    """The box for these settings; development falls back to a key file made on first use."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value().encode())
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
