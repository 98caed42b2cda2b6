"""API keys: random 256-bit secrets, stored as SHA-256 digests with a role; shown once at creation.

A key looks like `tgm_<key id>_<secret>`; the id finds the record, the digest proves the secret.
SHA-256 (not a slow password hash) is right here because the secret is random, not chosen by a person.

The first admin key (deploy/README.md, "The first admin key"):
- `TGM_ADMIN_KEY_FILE` set (compose, Kubernetes' Secret, tgm-stack): the key in that file is the admin
  key. A missing file is created once with a new key (0600, atomically: replicas sharing the volume
  agree on one); its record is an upsert on the key's id, so every replica stores the same digest and
  none mints a second key. A file whose id is already stored with another secret is not applied (rotate
  with `tgm-admin`), nor is a revoked one revived.
- no file configured: on a first start (no active key) a key with the fixed id `bootstrap` is created
  (one insert wins across replicas) and written to `<TGM_DATA_DIR>/admin.key`.
- locked out: `tgm-admin create-key` / `rotate-key` against the database (`tgm_gateway.admin`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
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

log = logging.getLogger("tgm.gateway.keys")

#: Record id of the key a first start without TGM_ADMIN_KEY_FILE makes (fixed: one insert wins).
BOOTSTRAP_KEY_ID = "bootstrap"


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


def new_key(key_id: str | None = None) -> tuple[str, str, str]:
    """A fresh key `tgm_<id>_<secret>` with its id and secret (the id random unless given)."""
    key_id = key_id or secrets.token_hex(4)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    return f"tgm_{key_id}_{secret}", key_id, secret


def write_key_file(path: Path, key: str) -> bool:
    """Write `key` to `path` (0600) unless the file exists; atomic (a hard link of a complete temporary
    file), so of two writers one wins and the other reads a whole key. True when this call wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


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
        key, key_id, secret = new_key()
        doc = await self.store.create(key_id, name, role.label, _digest(secret))
        self.cache.forget(key_id)
        return key, self.view(doc)

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

    async def rotate(self, key_id: str) -> tuple[str, dict[str, Any]]:
        """A new key with the name and role of `key_id`, which is revoked (NOT_FOUND if there is none)."""
        doc = await self.store.get(key_id)
        if doc is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no API key {key_id!r}")
        key, view = await self.create(doc["name"], Role.parse(doc["role"]))
        await self.revoke(key_id)
        return key, view

    async def from_file(self, path: Path) -> str:
        """Store the admin key of `path` (TGM_ADMIN_KEY_FILE), creating the file once when missing;
        returns the key id. Never logs the key."""
        write_key_file(path, new_key()[0])  # no-op when it exists
        text = path.read_text().strip()
        parsed = parse_key(text)
        if parsed is None or len(parsed[0]) > 64:
            raise ValueError(f"{path} does not hold an API key (tgm_<id>_<secret>, one line)")
        key_id, secret = parsed
        doc, created = await self.store.create_once(
            key_id, "admin-key-file", Role.ADMIN.label, _digest(secret)
        )
        self.cache.forget(key_id)
        if created:
            log.info("admin key %s from %s stored", key_id, path)
        elif doc.get("revoked"):
            log.warning("admin key %s of %s is revoked; not revived (use tgm-admin create-key)", key_id, path)
        elif not hmac.compare_digest(doc["digest"], _digest(secret)):
            log.warning(
                "key id %s of %s is stored with another secret; not replaced (tgm-admin)", key_id, path
            )
        return key_id

    async def bootstrap(self, data_dir: Path) -> str | None:
        """On a first start without TGM_ADMIN_KEY_FILE (no active key): an admin key with the fixed id
        `bootstrap`, written 0600 to `<data_dir>/admin.key` and returned, by the one replica whose
        insert won; None otherwise."""
        if await self.store.count_active() > 0:
            return None
        key, key_id, secret = new_key(BOOTSTRAP_KEY_ID)
        _, created = await self.store.create_once(
            key_id, "bootstrap-admin", Role.ADMIN.label, _digest(secret)
        )
        if not created:
            log.warning("no active API key and the bootstrap key exists (revoked?): use tgm-admin create-key")
            return None
        path = data_dir / "admin.key"
        path.unlink(missing_ok=True)  # a stale file of an earlier database
        write_key_file(path, key)
        return key
