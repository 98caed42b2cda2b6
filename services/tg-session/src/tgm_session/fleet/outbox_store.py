"""The inbound outbox (`inbound_outbox`): inbound events NATS refused, kept until re-published.

One document per event: `_id` = event id (so the same event is never kept twice), `replica` (who
re-publishes it), `seq` (order: nanoseconds at keep time, strictly increasing per replica), `subject`
(which event class), `body` (the event as JSON, by alias) and `at`. Documents of this replica are read
in `seq` order and deleted once published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..base_store import Doc, Repo

INBOUND_OUTBOX = "inbound_outbox"


class OutboxRepo(Repo):
    name = INBOUND_OUTBOX

    async def ensure_indexes(self) -> None:
        await self.col.create_index([("replica", ASCENDING), ("seq", ASCENDING)])
        await self.col.create_index([("at", ASCENDING)])

    async def keep(self, doc: Doc) -> bool:
        """Insert one kept event; False when that event id is kept already."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def keep_many(self, docs: list[Doc]) -> None:
        """Insert kept events; ids kept already are skipped."""
        if not docs:
            return
        try:
            await self.col.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def page(self, replica: str, limit: int) -> list[Doc]:
        return await self.find({"replica": replica}, sort=[("seq", ASCENDING)], limit=limit)

    async def remove(self, ids: list[str]) -> None:
        if ids:
            await self.col.delete_many({"_id": {"$in": ids}})

    async def depth(self, replica: str) -> int:
        return await self.col.count_documents({"replica": replica})

    async def adopt(self, replica: str, kept_before: datetime) -> int:
        """Take over events other replicas kept before `kept_before` (they died or lost their data)."""
        result: Any = await self.col.update_many(
            {"replica": {"$ne": replica}, "at": {"$lt": kept_before}}, {"$set": {"replica": replica}}
        )
        return int(result.modified_count)
