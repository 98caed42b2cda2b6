"""API keys: random 256-bit secrets, stored as SHA-256 digests with a role; shown once at creation.

A key looks like `tgm_<key id>_<secret>`; the id finds the record, the digest proves the secret.
SHA-256 (not a slow password hash) is right here because the secret is random, not chosen by a person.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tgm_contracts import ErrorCode, Role
from tgm_runtime import DomainError

from .cache import KeyCache
from .limiter import FailedAuthLimiter
from .store import KeyStore


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role

    def view(self) -> dict[str, str]:
        """Who this key is, never its secret: what `GET /api/v1/keys/me` and the WebSocket's
        `auth` frame answer."""
        return {"id": self.key_id, "name": self.name, "role": self.role.label}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_")
    if len(parts) != 3 or parts[0] != "tgm" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class ApiKeys:
    def __init__(self, store: KeyStore, cache: KeyCache, failures: FailedAuthLimiter) -> None:
        self.store = store
        self.cache = cache
        self.failures = failures

    async def create(self, name: str, role: Role) -> tuple[str, dict[str, Any]]:
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32).replace("_", "-")
        doc = await self.store.create(key_id, name, role.label, _digest(secret))
        self.cache.forget(key_id)
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
        self.cache.forget(key_id)
        return revoked

    def forget_cached(self) -> None:
        """After a restore the records may all have changed: read each key again."""
        self.cache.clear()

    async def admit(self, key: str | None, address: str) -> Principal:
        """The caller of one request from `address`, or a DomainError: UNAUTHORIZED without a key
        or with one that does not authenticate, RATE_LIMITED once the address has failed too often
        (then no lookup is made at all). A missing key is not a failure: it costs nothing to refuse."""
        if not key:
            raise DomainError(ErrorCode.UNAUTHORIZED, "missing API key: send 'Authorization: Bearer <key>'")
        wait = self.failures.wait(address)
        if wait > 0:
            raise DomainError(
                ErrorCode.RATE_LIMITED,
                "too many failed authentications from this address",
                retry_after=round(wait, 3),
            )
        principal = await self.authenticate(key)
        if principal is None:
            self.failures.take(address)
            raise DomainError(ErrorCode.UNAUTHORIZED, "invalid API key")
        return principal

    async def authenticate(self, key: str | None) -> Principal | None:
        """The principal of `key` (its record read through the cache), else None."""
        if not key:
            return None
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        if len(key_id) > 64:  # ids are 8 hex digits: no lookup, no cache entry for a long one
            return None
        doc = await self.cache.lookup(key_id, self.store.get)
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
