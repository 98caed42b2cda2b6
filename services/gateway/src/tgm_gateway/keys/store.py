"""The `api_keys` collection: one record per key (its id, name, role and the secret's digest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from tgm_runtime import Unavailable

COLLECTION = "api_keys"


class KeyStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db[COLLECTION]

    async def create(self, key_id: str, name: str, role: str, digest: str) -> dict[str, Any]:
        """A new active key's record (never the secret itself: only its digest)."""
        doc = {
            "_id": key_id,
            "name": name,
            "role": role,
            "digest": digest,
            "created_at": datetime.now(UTC),
            "revoked": False,
        }
        await self.col.insert_one(doc)
        return doc

    async def create_once(
        self, key_id: str, name: str, role: str, digest: str
    ) -> tuple[dict[str, Any], bool]:
        """The record `key_id`, inserted with these values when there is none (an upsert on the id:
        replicas doing it at once make one record), and whether this call inserted it."""
        doc = {
            "name": name,
            "role": role,
            "digest": digest,
            "created_at": datetime.now(UTC),
            "revoked": False,
        }
        try:
            res = await self.col.update_one({"_id": key_id}, {"$setOnInsert": doc}, upsert=True)
            created = res.upserted_id is not None
        except DuplicateKeyError:  # two upserts raced on the same new id: the other one inserted it
            created = False
        found = await self.col.find_one({"_id": key_id})
        assert found is not None
        return found, created

    async def get(self, key_id: str) -> dict[str, Any] | None:
        """The key's record; UNAVAILABLE (503, not a 500) while the database cannot be read."""
        try:
            return await self.col.find_one({"_id": key_id})
        except PyMongoError as exc:
            raise Unavailable(f"API keys cannot be checked right now: {type(exc).__name__}") from None

    async def all(self) -> list[dict[str, Any]]:
        """Every key, revoked ones included, oldest first."""
        return [d async for d in self.col.find({}).sort("created_at", 1)]

    async def revoke(self, key_id: str) -> bool:
        res = await self.col.update_one({"_id": key_id}, {"$set": {"revoked": True}})
        return res.matched_count == 1

    async def count_active(self) -> int:
        return await self.col.count_documents({"revoked": False})


async def count_active_keys(db: AsyncDatabase[Any]) -> dict[str, int]:
    """The gateway's cheap counts for the console (`sys info`)."""
    return {"apiKeys": await KeyStore(db).count_active()}
