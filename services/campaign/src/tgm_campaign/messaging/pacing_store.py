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

    async def load(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        return {d["_id"]: d async for d in self.c.find({"_id": {"$in": keys}})}

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": key})

    async def all_accounts(self) -> list[dict[str, Any]]:
        return await self.c.find({"_id": {"$regex": "^acct:"}}).to_list()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def mutate(self, key: str, fn: Mutation, attempts: int = 8) -> dict[str, Any]:
        """Apply `fn` (current document or None -> new fields) atomically; raises Denied from `fn`,
        or Contention when other writers won `attempts` times in a row."""
        async with self._lock(key):
            for _ in range(attempts):
                doc = await self.c.find_one({"_id": key})
                new = fn(doc)
                new.pop("_id", None)
                if doc is None:
                    try:
                        await self.c.insert_one({"_id": key, **new, "rev": 1})
                    except DuplicateKeyError:
                        continue
                    return {"_id": key, **new, "rev": 1}
                rev = doc.get("rev", 0)
                new["rev"] = rev + 1
                result = await self.c.update_one({"_id": key, "rev": rev}, {"$set": new})
                if result.modified_count == 1:
                    return {"_id": key, **new}
            raise Contention(key)
