"""The `strategies` collection and `strategy_assignments` (account -> strategy)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ..ids import now


class StrategyStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["strategies"]
        self.assign = db["strategy_assignments"]

    async def all(self) -> list[dict[str, Any]]:
        return [d async for d in self.col.find({}).sort("created_at", 1)]

    async def get(self, strategy_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": strategy_id})

    async def default(self) -> dict[str, Any] | None:
        return await self.col.find_one({"is_default": True})

    async def by_name(self, name: str) -> dict[str, Any] | None:
        return await self.col.find_one({"name": name})

    async def put(self, doc: dict[str, Any]) -> None:
        if doc.get("is_default"):
            await self.col.update_many({"_id": {"$ne": doc["_id"]}}, {"$set": {"is_default": False}})
        await self.col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def assignment(self, account_id: str) -> str | None:
        doc = await self.assign.find_one({"_id": account_id})
        return doc["strategy_id"] if doc else None

    async def assignments(self, account_ids: list[str]) -> dict[str, str]:
        return {d["_id"]: d["strategy_id"] async for d in self.assign.find({"_id": {"$in": account_ids}})}

    async def accounts_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async for d in self.assign.find({}).sort("_id", 1):
            out.setdefault(d["strategy_id"], []).append(d["_id"])
        return out

    async def apply(self, strategy_id: str | None, account_ids: list[str]) -> None:
        if strategy_id is None:
            await self.assign.delete_many({"_id": {"$in": account_ids}})
            return
        ts = now()
        for a in account_ids:
            await self.assign.replace_one(
                {"_id": a}, {"_id": a, "strategy_id": strategy_id, "updated_at": ts}, upsert=True
            )

    async def count(self) -> int:
        return await self.col.count_documents({})
