"""API keys: random 256-bit secrets, stored as SHA-256 digests with a role; shown once at creation.

A key looks like `tgm_<key id>_<secret>`; the id finds the record, the digest proves the secret.
SHA-256 (not a slow password hash) is right here because the secret is random, not chosen by a person.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tgm_contracts import Role

from .store import KeyStore

#: How long a looked-up key is trusted without reading it again: a revoked key stops working within seconds.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_")
    if len(parts) != 3 or parts[0] != "tgm" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeys:
    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def create(self, name: str, role: Role) -> tuple[str, dict[str, Any]]:
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        doc = await self.store.create(key_id, name, role.label, _digest(secret))
        return f"tgm_{key_id}_{secret}", self.view(doc)

    @staticmethod
    def view(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": doc["_id"],
            "name": doc["name"],
            "role": doc["role"],
            "createdAt": doc["created_at"].isoformat() if doc.get("created_at") else None,
            "revoked": doc.get("revoked", False),
        }

    async def list(self) -> list[dict[str, Any]]:
        return [self.view(d) for d in await self.store.all()]

    async def revoke(self, key_id: str) -> bool:
        revoked = await self.store.revoke(key_id)
        self._cache.pop(key_id, None)
        return revoked

    def forget_cached(self) -> None:
        """After a restore the records may all have changed: read each key again."""
        self._cache.clear()

    async def authenticate(self, key: str | None) -> Principal | None:
        if not key:
            return None
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            cached = (now, await self.store.get(key_id))
            self._cache[key_id] = cached
        doc = cached[1]
        if not doc or doc.get("revoked") or not hmac.compare_digest(doc["digest"], _digest(secret)):
            return None
        return Principal(key_id=key_id, name=doc["name"], role=Role.parse(doc["role"]))

    async def bootstrap(self, data_dir: Path) -> str | None:
        """On first start (no active key), create an admin key, write it 0600 and return it once."""
        if await self.store.count_active() > 0:
            return None
        key, _ = await self.create("bootstrap-admin", Role.ADMIN)
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "admin.key"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        tmp.replace(path)
        return key
