"""Secrets at rest: AES-GCM with a key id in the ciphertext, so master keys can rotate.

Format: ``enc:v1:<key id>:<base64(nonce || ciphertext)>``. The key id is the first 8 hex digits of
the SHA-256 of the key. New secrets use the current key; old ones decrypt with any configured key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"


class SecretError(Exception):
    pass


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def decode_key(text: str) -> bytes:
    key = base64.b64decode(text.strip())
    if len(key) != 32:
        raise SecretError("a master key must be 32 bytes, base64-encoded")
    return key


def new_key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def load_or_create_key_file(path: Path) -> str:
    """The embedded default: a key generated once into the data folder, readable by its owner only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return text


class SecretBox:
    def __init__(self, current: bytes, previous: list[bytes] | None = None) -> None:
        self._current = current
        self._current_id = key_id(current)
        self._keys = {key_id(k): k for k in [*(previous or []), current]}

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt; `context` (e.g. the account id) is bound as associated data."""
        nonce = os.urandom(12)
        ct = AESGCM(self._current).encrypt(nonce, plaintext.encode(), context.encode() or None)
        return f"{PREFIX}{self._current_id}:{base64.b64encode(nonce + ct).decode()}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        if not is_encrypted(token):
            raise SecretError("value is not an encrypted secret")
        try:
            kid, body = token[len(PREFIX) :].split(":", 1)
            key = self._keys[kid]
            raw = base64.b64decode(body)
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode() or None).decode()
        except KeyError as exc:
            raise SecretError("secret was encrypted with a key that is not configured") from exc
        except Exception as exc:
            raise SecretError("secret cannot be decrypted") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(f"{PREFIX}{self._current_id}:")


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def mask(value: str | None, keep: int = 4) -> str | None:
    """`abcd••••••` — enough to recognise a key, not to use it."""
    if not value:
        return value
    return value[:keep] + "•" * max(4, min(12, len(value) - keep))
