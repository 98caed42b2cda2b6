"""The `leases` collection: which replica does the periodic chores (one at a time, renewed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class LeaseStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["leases"]

    async def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease `name`; True while `owner` holds it."""
        result = await self.c.update_one(
            {"_id": name, "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
            {"$set": {"owner": owner, "until": until}},
        )
        if result.matched_count:
            return True
        try:
            await self.c.insert_one({"_id": name, "owner": owner, "until": until})
            return True
        except DuplicateKeyError:
            return False

    async def release(self, name: str, owner: str) -> None:
        await self.c.delete_one({"_id": name, "owner": owner})
