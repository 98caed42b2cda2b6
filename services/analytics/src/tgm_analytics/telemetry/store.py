"""The telemetry collections: `logs` (a document per shipped record) and `perf_samples` (a document per
sample), each stored under the id its shipping process gave it, so a redelivered batch writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

LOGS = "logs"
PERF = "perf_samples"
#: get-performance spans at most 31 days; older samples are never read.
PERF_RETENTION_DAYS = 31
#: get-logs orders: by time, ties broken by id.
NEWEST_LOGS = Keyset(("ts", "_id"), descending=True)
OLDEST_LOGS = Keyset(("ts", "_id"))


async def create_indexes(db: Any) -> None:
    """Migration 4: log time order (pages, retention), the usual filters, and sample end times."""
    logs = db[LOGS]
    await logs.create_index([("ts", -1), ("_id", -1)])
    await logs.create_index([("service", 1), ("ts", -1)])
    await logs.create_index([("request_id", 1)], sparse=True)
    await logs.create_index([("account_id", 1)], sparse=True)
    await logs.create_index([("trace_id", 1)], sparse=True)
    perf = db[PERF]
    await perf.create_index([("end", 1)])
    await perf.create_index([("service", 1), ("end", -1)])


async def sweep(db: Any, log_retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete logs older than the retention, and samples older than that (at most PERF_RETENTION_DAYS)."""
    now = now or datetime.now(UTC)
    logs = await LogStore(db).expire(log_retention_days, now)
    samples = await PerfStore(db).expire(min(log_retention_days, PERF_RETENTION_DAYS), now)
    return {"logs": logs, "perf_samples": samples}


class LogStore:
    def __init__(self, db: Any) -> None:
        self.col = db[LOGS]

    async def insert(self, docs: list[dict[str, Any]]) -> int:
        """Store records once each; how many were new (a redelivered batch adds none)."""
        if not docs:
            return 0
        try:
            result = await self.col.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return len(docs) - len(errors)

    async def page(
        self, query: dict[str, Any], order: Keyset, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        if order == NEWEST_LOGS:  # newest first: read as time windows (windowed.py)
            return await read_newest(self.col, order, query, cursor, limit)
        docs = (
            await self.col.find(order.where(query, cursor)).sort(order.sort()).limit(limit + 1).to_list(None)
        )
        return order.page(docs, limit)

    async def count(self, query: dict[str, Any]) -> int:
        """get-logs' `total`, counted once until this process writes logs (`counts.py`)."""
        return await cached_count(self.col, query)

    async def newest(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return await self.col.find(query).sort(NEWEST_LOGS.sort()).limit(limit).to_list(None)

    async def delete(self, query: dict[str, Any]) -> int:
        return (await self.col.delete_many(query)).deleted_count

    async def expire(self, retention_days: int, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        return (await self.col.delete_many({"ts": {"$lt": cutoff}})).deleted_count


class PerfStore:
    def __init__(self, db: Any) -> None:
        self.col = db[PERF]

    async def insert(self, doc: dict[str, Any]) -> bool:
        try:
            await self.col.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False  # delivered before: already counted

    def ended_between(
        self, since: datetime, until: datetime, services: list[str] | None
    ) -> AsyncIterator[Any]:
        """The samples whose period ended in `(since, until]`, of these services (all without)."""
        q: dict[str, Any] = {"end": {"$gt": since, "$lte": until}}
        if services:
            q["service"] = {"$in": services}
        return self.col.find(q)

    async def newest_of(self, service: str) -> dict[str, Any] | None:
        return await self.col.find_one(
            {"service": service}, sort=[("end", -1)], projection={"end": 1, "interval": 1}
        )

    async def expire(self, retention_days: int, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        return (await self.col.delete_many({"end": {"$lt": cutoff}})).deleted_count
