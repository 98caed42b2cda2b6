"""The record of the last rebuild (`rebuild_runs`, one document): what `get-analytics-rebuild` shows."""

from __future__ import annotations

from typing import Any

RUNS = "rebuild_runs"
LAST = "last"


class RebuildStore:
    def __init__(self, db: Any) -> None:
        self.runs = db[RUNS]

    async def last(self) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.runs.find_one({"_id": LAST})
        return doc

    async def start(self, values: dict[str, Any]) -> None:
        await self.runs.replace_one({"_id": LAST}, {"_id": LAST, **values}, upsert=True)

    async def update(self, values: dict[str, Any]) -> None:
        await self.runs.update_one({"_id": LAST}, {"$set": values})
