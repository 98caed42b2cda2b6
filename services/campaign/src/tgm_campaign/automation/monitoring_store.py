"""The `monitoring` collection: one document `state` (whether monitoring is on, since when, which
groups, by whom) that survives restarts of every service, and the revision counter of the watched
chats written to the KV bucket (one counter for every replica, so revisions grow fleet-wide)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 3 (one document: no index needed).
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}

STATE_ID = "state"


class MonitoringStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["monitoring"]

    async def get(self) -> dict[str, Any]:
        doc = await self.c.find_one({"_id": STATE_ID})
        return doc or {"_id": STATE_ID, "active": False, "group_ids": None, "revision": 0}

    async def set_active(
        self, active: bool, group_ids: Sequence[str] | None, by: str | None, now: datetime
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"active": active, "by": by}
        if active:
            fields |= {"started_at": now, "group_ids": list(group_ids) if group_ids is not None else None}
        else:
            fields["stopped_at"] = now
        doc = await self.c.find_one_and_update(
            {"_id": STATE_ID}, {"$set": fields}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return doc if doc is not None else {"_id": STATE_ID, **fields}

    async def next_revision(self) -> int:
        doc = await self.c.find_one_and_update(
            {"_id": STATE_ID},
            {"$inc": {"revision": 1}, "$setOnInsert": {"active": False, "group_ids": None}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["revision"]) if doc else 0
