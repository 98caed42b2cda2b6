"""The provider settings document (`ai_settings`, versioned) and usage counters per provider, model
and UTC day (`usage`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class SettingsStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["ai_settings"]

    async def get(self) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": "settings"})

    async def put(self, doc: dict[str, Any], expected_version: int | None) -> bool:
        """Write if the stored version is `expected_version` (None = unconditionally)."""
        doc["_id"] = "settings"
        if expected_version is None:
            await self.col.replace_one({"_id": "settings"}, doc, upsert=True)
            return True
        if expected_version == 0:
            current = await self.get()
            if current is not None and int(current.get("version", 0)) != 0:
                return False
            await self.col.replace_one({"_id": "settings"}, doc, upsert=True)
            return True
        res = await self.col.replace_one({"_id": "settings", "version": expected_version}, doc)
        return res.matched_count == 1


class UsageStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["usage"]

    async def record(
        self,
        day: date,
        provider: str,
        model: str,
        *,
        ok: bool,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
    ) -> None:
        key = f"{day.isoformat()}|{provider}|{model}"
        await self.col.update_one(
            {"_id": key},
            {
                "$setOnInsert": {"day": day.isoformat(), "provider": provider, "model": model},
                "$inc": {
                    "calls": 1,
                    "errors": 0 if ok else 1,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "latency_ms_total": latency_ms,
                },
                "$max": {"latency_ms_max": latency_ms},
            },
            upsert=True,
        )

    async def rows(
        self, since: date, until: date, provider: str | None, model: str | None
    ) -> list[dict[str, Any]]:
        q: dict[str, Any] = {"day": {"$gte": since.isoformat(), "$lte": until.isoformat()}}
        if provider:
            q["provider"] = provider
        if model:
            q["model"] = model
        return [d async for d in self.col.find(q).sort([("day", 1), ("provider", 1), ("model", 1)])]
