"""The `memories` collection: one document per account and user."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class MemoryStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["memories"]

    @staticmethod
    def key(account_id: str, user_id: str) -> str:
        return f"{account_id}\x1f{user_id}"

    async def get(self, account_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": self.key(account_id, user_id)})

    async def put(self, doc: dict[str, Any]) -> None:
        doc["_id"] = self.key(doc["account_id"], doc["user_id"])
        await self.col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete(self, account_id: str, user_id: str | None) -> int:
        q: dict[str, Any] = {"account_id": account_id}
        if user_id is not None:
            q["user_id"] = user_id
        res = await self.col.delete_many(q)
        return res.deleted_count

    async def count(self) -> int:
        return await self.col.count_documents({})
