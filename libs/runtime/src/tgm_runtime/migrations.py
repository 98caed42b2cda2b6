"""Numbered migrations, applied in order and recorded in the service's own database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "_migrations"


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    apply: Callable[[AsyncDatabase[Any]], Awaitable[None]]


class MigrationRunner:
    def __init__(self, db: AsyncDatabase[Any], migrations: Sequence[Migration]) -> None:
        numbers = [m.number for m in migrations]
        if numbers != sorted(set(numbers)) or (numbers and numbers[0] < 1):
            raise ValueError("migrations must be numbered 1, 2, 3 … in order, without repeats")
        self.db = db
        self.migrations = list(migrations)

    async def applied(self) -> dict[int, dict[str, Any]]:
        return {d["_id"]: d async for d in self.db[COLLECTION].find({})}

    async def status(self) -> dict[str, Any]:
        done = await self.applied()
        applied = [
            {"number": n, "name": d["name"], "applied_at": d["applied_at"]} for n, d in sorted(done.items())
        ]
        pending = [{"number": m.number, "name": m.name} for m in self.migrations if m.number not in done]
        return {
            "current": max(done, default=0),
            "latest": self.migrations[-1].number if self.migrations else 0,
            "applied": applied,
            "pending": pending,
        }

    async def run(self) -> list[int]:
        done = await self.applied()
        ran: list[int] = []
        for m in self.migrations:
            if m.number in done:
                continue
            await m.apply(self.db)
            await self.db[COLLECTION].update_one(
                {"_id": m.number},
                {"$setOnInsert": {"name": m.name, "applied_at": datetime.now(UTC)}},
                upsert=True,
            )
            ran.append(m.number)
        return ran
