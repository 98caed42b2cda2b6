"""Where pacing state lives: the `pacing` collection, one document per limited thing.

- `acct:<account id>`: an `AccountPace` (its windows, spacing, flood wait, cool-down);
- `global`: the fleet's sends of the last seconds; `api:<credential>`: the same per API credential;
- `rcpt:<peer key>`: the fleet's sends to one recipient in the last 24 h, and ever.

Each change reads the document and writes it back only if its `rev` did not move in between
(optimistic concurrency), so replicas sharing the database never both spend the last slot of a
window. Within one process a lock per key avoids pointless retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

GLOBAL = "global"


def acct_key(account_id: str) -> str:
    return f"acct:{account_id}"


def api_key(credential: str) -> str:
    return f"api:{credential}"


def rcpt_key(peer_key: str) -> str:
    return f"rcpt:{peer_key}"


class Denied(Exception):
    """A mutation found the state no longer allows the change (another replica got there first)."""

    def __init__(self, detail: Any = None) -> None:
        super().__init__("denied")
        self.detail = detail


class Contention(Exception):
    """The document kept changing under us; the caller retries later."""


Mutation = Callable[[dict[str, Any] | None], dict[str, Any]]


class PacingStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["pacing"]
        self._locks: dict[str, asyncio.Lock] = {}
        # The last version of each document this process read or wrote: a change is then one
        # conditional write (the read only happens when another replica moved the document on).
        self._known: dict[str, dict[str, Any]] = {}

    async def load(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        found = {d["_id"]: d async for d in self.c.find({"_id": {"$in": keys}})}
        self._known.update(found)
        return found

    async def get(self, key: str) -> dict[str, Any] | None:
        doc = await self.c.find_one({"_id": key})
        if doc is not None:
            self._known[key] = doc
        return doc

    async def all_accounts(self) -> list[dict[str, Any]]:
        docs = await self.c.find({"_id": {"$regex": "^acct:"}}).to_list()
        for d in docs:
            self._known[d["_id"]] = d
        return docs

    async def release_busy(self, key: str, token: str) -> None:
        """The send marked `token` has its outcome: clear the account's in-flight marker (one write;
        a newer marker of another send is left alone)."""
        field = f"inflight.{token}"
        result = await self.c.update_one(
            {"_id": key, field: {"$exists": True}}, {"$unset": {field: ""}, "$inc": {"rev": 1}}
        )
        known = self._known.get(key)
        if result.modified_count and known is not None and token in (known.get("inflight") or {}):
            inflight = {k: v for k, v in known["inflight"].items() if k != token}
            self._known[key] = {**known, "inflight": inflight, "rev": known.get("rev", 0) + 1}
        else:
            self._known.pop(key, None)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def mutate(self, key: str, fn: Mutation, attempts: int = 8) -> dict[str, Any]:
        """Apply `fn` (current document or None -> new fields) atomically; raises Denied from `fn`,
        or Contention when other writers won `attempts` times in a row."""
        async with self._lock(key):
            doc = self._known.get(key)
            fresh = doc is None
            if fresh:
                doc = await self.c.find_one({"_id": key})
            for _ in range(attempts):
                new = fn(doc)
                new.pop("_id", None)
                if doc is None:
                    try:
                        await self.c.insert_one({"_id": key, **new, "rev": 1})
                    except DuplicateKeyError:
                        doc = await self.c.find_one({"_id": key})
                        continue
                    self._known[key] = {"_id": key, **new, "rev": 1}
                    return self._known[key]
                rev = doc.get("rev", 0)
                new["rev"] = rev + 1
                result = await self.c.update_one({"_id": key, "rev": rev}, {"$set": new})
                if result.modified_count == 1:
                    self._known[key] = {**doc, **new}
                    return self._known[key]
                doc = await self.c.find_one({"_id": key})  # another replica wrote: read and try again
            self._known.pop(key, None)
            raise Contention(key)
