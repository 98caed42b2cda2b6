"""Where the audit trail lives: the gateway's `audit` collection, one document per audited call.

Each document expires at its `expire_at` (a TTL index), so the retention in force when it was written
applies to it. Pages are newest first by (`at`, `_id`), a keyset over the `at` index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from tgm_runtime.cursor import Keyset

INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("at", DESCENDING), ("_id", DESCENDING)], {"name": "at"}),
    ([("expire_at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": 0}),
]


ORDER = Keyset(("at", "_id"), descending=True)


class AuditStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["audit"]

    async def add(self, entries: Sequence[dict[str, Any]]) -> None:
        """Idempotent by entry id: a batch written again after a lost acknowledgement is no error."""
        if not entries:
            return
        try:
            await self.c.insert_many(list(entries), ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def page(
        self, limit: int, cursor: str | None = None, command: str | None = None, key_id: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: up to `limit` entries after `cursor`, and the cursor of the next page."""
        query: dict[str, Any] = {}
        if command:
            query["command"] = command
        if key_id:
            query["key_id"] = key_id
        found = self.c.find(ORDER.where(query, cursor), {"expire_at": 0}).sort(ORDER.sort())
        return ORDER.page(await found.limit(limit + 1).to_list(), limit)
