"""API keys: random 256-bit secrets, stored as SHA-256 digests with a role; shown once at creation.

A key looks like `tgm_<key id>_<secret>`; the id finds the record, the digest proves the secret.
SHA-256 (not a slow password hash) is right here because the secret is random, not chosen by a person.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts import Role

log = logging.getLogger("tgm.gateway.auth")

COLLECTION = "api_keys"


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


class KeyStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db[COLLECTION]
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def create(self, name: str, role: Role) -> tuple[str, dict[str, Any]]:
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        doc = {
            "_id": key_id,
            "name": name,
            "role": role.label,
            "digest": _digest(secret),
            "created_at": datetime.now(UTC),
            "revoked": False,
        }
        await self.col.insert_one(doc)
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
        return [self.view(d) async for d in self.col.find({}).sort("created_at", 1)]

    async def revoke(self, key_id: str) -> bool:
        res = await self.col.update_one({"_id": key_id}, {"$set": {"revoked": True}})
        self._cache.pop(key_id, None)
        return res.matched_count == 1

    async def count_active(self) -> int:
        return await self.col.count_documents({"revoked": False})

    async def authenticate(self, key: str | None) -> Principal | None:
        if not key:
            return None
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is None or now - cached[0] > 5.0:  # a revoked key stops working within seconds
            cached = (now, await self.col.find_one({"_id": key_id}))
            self._cache[key_id] = cached
        doc = cached[1]
        if not doc or doc.get("revoked") or not hmac.compare_digest(doc["digest"], _digest(secret)):
            return None
        return Principal(key_id=key_id, name=doc["name"], role=Role.parse(doc["role"]))

    async def bootstrap(self, data_dir: Path) -> str | None:
        """On first start (no active key), create an admin key, write it 0600 and return it once."""
        if await self.count_active() > 0:
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


class KeyRateLimiter:
    """A token bucket per key, so one runaway script cannot starve the others."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key_id: str) -> float:
        """0 when allowed, else seconds until a token is free."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key_id, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[key_id] = (tokens - 1, now)
            return 0.0
        self._buckets[key_id] = (tokens, now)
        return (1 - tokens) / self.rate
