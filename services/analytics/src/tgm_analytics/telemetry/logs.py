"""Shipped log records: stored once each, filtered, paged, exported, cleared (the queries: store.py).

A document per record, `_id` = `<replica>:<boot>:<seq>` (the id the shipping process gave it), so a
batch delivered twice inserts nothing the second time: storing and de-duplicating are one write.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands.analytics import (
    ClearLogs,
    ClearLogsRequest,
    ExportLogs,
    ExportLogsRequest,
    GetLogs,
    GetLogsRequest,
    LogFilters,
)
from tgm_contracts.models.analytics import ExportFile, LogEntryView
from tgm_contracts.telemetry import LogBatch
from tgm_runtime.exports import Exports
from tgm_runtime.routes import answers

from ..windows import between
from .store import NEWEST_LOGS, OLDEST_LOGS, LogStore

log = logging.getLogger(__name__)

LEVEL_NO = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
#: Rows an export reads at most: far more than fit one inline file (about 3,000 log rows), so a cut
#: file is still as full as it can be, without holding a million documents in memory.
EXPORT_READ_LIMIT = 20_000
EXPORT_COLUMNS = (
    "timestamp",
    "level",
    "service",
    "replicaId",
    "logger",
    "message",
    "accountId",
    "requestId",
    "traceId",
    "fields",
)


def aware(value: datetime | None) -> datetime | None:
    # The database hands back UTC; a naive time from a client is read as UTC too.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def doc_of(batch: LogBatch, received_at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "_id": batch.id_of(r),
            "ts": aware(r.timestamp),
            "level": r.level,
            "lv": LEVEL_NO[r.level],
            "service": batch.service.value,
            "replica_id": batch.replica_id,
            "logger": r.logger,
            "message": r.message,
            "account_id": r.account_id,
            "request_id": r.request_id,
            "trace_id": r.trace_id,
            "fields": r.fields,
            "received_at": received_at,
        }
        for r in batch.records
    ]


def query_of(f: LogFilters) -> dict[str, Any]:
    """The Mongo filter of the contract's log filters (every given filter must hold)."""
    q: dict[str, Any] = {}
    if f.level:
        q["level"] = {"$in": list(dict.fromkeys(f.level))}
    if f.min_level:
        q["lv"] = {"$gte": LEVEL_NO[f.min_level]}
    if f.service:
        q["service"] = {"$in": [s.value for s in f.service]}
    for name in ("account_id", "request_id", "trace_id"):
        value = getattr(f, name)
        if value is not None:
            q[name] = value
    if f.text:
        # Case-insensitive substring, the text taken literally (no regex from the caller).
        q["message"] = {"$regex": re.escape(f.text), "$options": "i"}
    ts = between(f.since, f.until, aware)
    if ts:
        q["ts"] = ts
    return q


def view_of(doc: dict[str, Any]) -> LogEntryView:
    return LogEntryView(
        id=doc["_id"],
        timestamp=aware(doc["ts"]),
        level=doc["level"],
        service=doc["service"],
        replica_id=doc.get("replica_id"),
        logger=doc.get("logger"),
        message=doc.get("message", ""),
        account_id=doc.get("account_id"),
        request_id=doc.get("request_id"),
        trace_id=doc.get("trace_id"),
        fields=doc.get("fields") or {},
    )


class LogService:
    """`AnalyticsApp.logs`: ingest batches, and get-logs, export-logs, clear-logs (`page` for reports)."""

    def __init__(self, store: LogStore, exports: Exports | None = None) -> None:
        self.store = store
        #: Where a file too large for one reply goes (the object store; without one: inline, cut to fit).
        self.exports = exports or Exports()

    async def ingest(self, batch: LogBatch, now: datetime | None = None) -> int:
        """Store a batch's records; returns how many were new (a redelivered batch adds none)."""
        docs = doc_of(batch, now or datetime.now(UTC))
        if batch.dropped:
            log.debug(
                "%s/%s dropped %d log records before shipping", batch.service, batch.replica_id, batch.dropped
            )
        return await self.store.insert(docs)

    @answers(GetLogs)
    async def page(self, req: GetLogsRequest) -> Page[LogEntryView]:
        order = NEWEST_LOGS if req.order == "desc" else OLDEST_LOGS
        docs, cursor = await self.store.page(query_of(req), order, req.cursor, req.limit)
        # Counting scans the matches; done for the first page only, where a screen shows it.
        total = await self.store.count(query_of(req)) if not req.cursor else None
        return Page[LogEntryView](items=[view_of(d) for d in docs], next_cursor=cursor, total=total)

    @answers(ExportLogs)
    async def export(self, req: ExportLogsRequest) -> ExportFile:
        """Newest first, so a file cut short keeps the most recent records."""
        read = min(req.max_rows, EXPORT_READ_LIMIT)
        docs = await self.store.newest(query_of(req), read + 1)
        truncated = len(docs) > read  # more matched than maxRows (or than one export reads)
        docs = docs[:read]
        rows = [
            [
                aware(d["ts"]),
                d["level"],
                d["service"],
                d.get("replica_id"),
                d.get("logger"),
                d.get("message"),
                d.get("account_id"),
                d.get("request_id"),
                d.get("trace_id"),
                d.get("fields") or {},
            ]
            for d in docs
        ]
        return await self.exports.file(
            req.format,
            EXPORT_COLUMNS,
            rows,
            name="logs",  # also the sheet's name
            truncated=truncated,
            role=ExportLogs.ROLE,
        )

    @answers(ClearLogs, principal=True)
    async def clear(self, req: ClearLogsRequest, by: str | None, now: datetime | None = None) -> Ack:
        """clear-logs: delete the matching records; who did it is logged (the records themselves are gone)."""
        q: dict[str, Any] = {}
        cutoff = req.cutoff(now or datetime.now(UTC))
        if cutoff is not None:
            q["ts"] = {"$lt": aware(cutoff)}
        if req.service:
            q["service"] = {"$in": [s.value for s in req.service]}
        if req.level:
            q["level"] = {"$in": list(req.level)}
        ack = Ack(affected=await self.store.delete(q))
        log.info("clear-logs removed %d records (by %s)", ack.affected, by or "?")
        return ack
