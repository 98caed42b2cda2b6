"""The `alerts` collection (schema in /work/notes/analytics.md, read by stats too) and the sliding-window
marks the burst rules count.

Folding: at most one undismissed alert per `fold_key` (a partial unique index). A repeat grows `count`
and `last_seen_at`; after dismissal the next occurrence opens a new alert.

At-least-once delivery: every alert keeps the ids of the last `RECENT_EVENTS` events that raised or
grew it (`recent_event_ids`), and the conditional update that grows `count` is the same write that
records the event id, so a redelivered event never counts twice. Burst marks are one document per
event (`_id` = key + event id), upserted, so recounting a redelivered event is harmless too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError
from tgm_contracts.commands.analytics import ClearAlertsRequest, GetAlertsRequest
from tgm_contracts.models.analytics import ALERT_LEVELS, AlertView
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

from ..windows import between
from .rules import LEVEL_RANK, Signal

ALERTS = "alerts"
MARKS = "alert_marks"
LEASES = "alert_leases"
#: get-alerts pages: newest last seen first.
NEWEST = Keyset(("last_seen_at", "_id"), descending=True)
#: Event ids remembered per alert (a redelivery comes soon after the first delivery).
RECENT_EVENTS = 50


def ms(at: datetime) -> datetime:
    """A time as the database keeps it (UTC, milliseconds), so cursors compare equal on the way back."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def create_indexes(db: Any) -> None:
    """Migration 3: one open alert per fold key, the newest-first order, burst marks."""
    alerts = db[ALERTS]
    await alerts.create_index(
        [("fold_key", ASCENDING)],
        unique=True,
        partialFilterExpression={"dismissed": False},
        name="open_fold_key",
    )
    await alerts.create_index([("last_seen_at", DESCENDING), ("_id", DESCENDING)], name="newest")
    await alerts.create_index([("recent_event_ids", ASCENDING)], name="recent_events")
    await alerts.create_index([("dismissed", ASCENDING), ("level", ASCENDING)], name="unresolved")
    await db[MARKS].create_index([("key", ASCENDING), ("at", ASCENDING)], name="key_at")


def view(doc: dict[str, Any]) -> AlertView:
    """An alert document as the contract shows it (its fields keep the view's names; `_id` is `id`)."""
    return AlertView.model_validate({**doc, "id": doc["_id"]})


def list_filter(req: GetAlertsRequest) -> dict[str, Any]:
    query: dict[str, Any] = {}
    levels = set(ALERT_LEVELS)
    if req.level:
        levels &= set(req.level)
    if req.min_level:
        levels &= {lv for lv in ALERT_LEVELS if LEVEL_RANK[lv] >= LEVEL_RANK[req.min_level]}
    if levels != set(ALERT_LEVELS):
        query["level"] = {"$in": sorted(levels, key=LEVEL_RANK.__getitem__)}
    if req.unresolved_only:
        query["dismissed"] = False
    if req.service is not None:
        query["service"] = req.service.value
    if req.account_id:
        query["account_id"] = req.account_id
    if req.code:
        query["code"] = req.code
    seen = between(req.since, req.until, ms)
    if seen:
        query["last_seen_at"] = seen
    return query


def clear_filter(req: ClearAlertsRequest) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if req.dismissed_only:
        query["dismissed"] = True
    if req.level:
        query["level"] = {"$in": list(req.level)}
    if req.before:
        query["last_seen_at"] = {"$lt": ms(req.before)}
    return query


@dataclass
class Raised:
    doc: dict[str, Any]
    repeat: bool


class AlertStore:
    def __init__(self, db: Any) -> None:
        self.db = db
        self.col = db[ALERTS]
        self.marks = db[MARKS]
        self.leases = db[LEASES]

    async def raise_signal(self, sig: Signal) -> Raised | None:
        """Open or fold an alert for `sig`; None when its event was already counted."""
        at = ms(sig.at)
        for _ in range(5):
            doc = await self.col.find_one_and_update(
                {"fold_key": sig.fold_key, "dismissed": False, "recent_event_ids": {"$ne": sig.event_id}},
                {
                    "$inc": {"count": 1},
                    "$max": {"last_seen_at": at},
                    "$set": {
                        "level": sig.level,
                        "title": sig.title,
                        "message": sig.message,
                        "source_event_id": sig.event_id,
                    },
                    "$push": {"recent_event_ids": {"$each": [sig.event_id], "$slice": -RECENT_EVENTS}},
                },
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return Raised(doc, repeat=True)
            if await self.col.find_one(
                {"recent_event_ids": sig.event_id, "fold_key": sig.fold_key}, {"_id": 1}
            ):
                return None  # a redelivery: this event is already in an alert's count
            doc = {
                "_id": uuid.uuid4().hex,
                "level": sig.level,
                "code": sig.code,
                "title": sig.title,
                "message": sig.message,
                "service": sig.service.value if sig.service else None,
                "account_id": sig.account_id,
                "subject": sig.subject,
                "count": 1,
                "first_seen_at": at,
                "last_seen_at": at,
                "dismissed": False,
                "dismissed_at": None,
                "dismissed_by": None,
                "note": None,
                "source_event_id": sig.event_id,
                "fold_key": sig.fold_key,
                "recent_event_ids": [sig.event_id],
            }
            try:
                await self.col.insert_one(doc)
                return Raised(doc, repeat=False)
            except DuplicateKeyError:
                continue  # another replica opened it a moment ago: fold into that one
        raise RuntimeError(f"could not raise alert {sig.fold_key} (contention)")

    async def mark(self, key: str, event_id: str, at: datetime, window: timedelta) -> int:
        """Record one event under `key`; the count of marks in `(at - window, at]`."""
        at = ms(at)
        await self.marks.update_one(
            {"_id": f"{key}|{event_id}"}, {"$setOnInsert": {"key": key, "at": at}}, upsert=True
        )
        # Marks older than any window we count are of no further use; prune as we go.
        await self.marks.delete_many({"key": key, "at": {"$lt": at - 2 * window}})
        return await self.marks.count_documents({"key": key, "at": {"$gt": at - window, "$lte": at}})

    async def page(self, req: GetAlertsRequest) -> tuple[list[dict[str, Any]], str | None, int]:
        query = list_filter(req)
        total = await cached_count(self.col, query)
        items, cursor = await read_newest(self.col, NEWEST, query, req.cursor, req.limit)  # windowed.py
        return items, cursor, total

    async def open_counts(self) -> tuple[int, int]:
        """Undismissed alerts, and of those the critical ones (the dashboard's two figures)."""
        total = await cached_count(self.col, {"dismissed": False})
        return total, await cached_count(self.col, {"dismissed": False, "level": "critical"})

    async def unresolved_by_level(self) -> dict[str, int]:
        """Undismissed alerts per level (every get-alerts page shows them): counted once until this
        process writes alerts (`counts.py`)."""
        out: dict[str, int] = {}
        for level in ALERT_LEVELS:
            n = await cached_count(self.col, {"dismissed": False, "level": level})
            if n:
                out[level] = n
        return out

    async def get(self, alert_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": alert_id})

    async def dismiss(
        self, alert_id: str, by: str | None, note: str | None, at: datetime
    ) -> dict[str, Any] | None:
        """Dismiss an open alert; None when it is unknown or was dismissed already."""
        changes: dict[str, Any] = {"dismissed": True, "dismissed_at": ms(at), "dismissed_by": by}
        if note is not None:
            changes["note"] = note
        return await self.col.find_one_and_update(
            {"_id": alert_id, "dismissed": False},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )

    async def open_ids(self, fold_keys: list[str]) -> list[str]:
        docs = await self.col.find({"fold_key": {"$in": fold_keys}, "dismissed": False}, {"_id": 1}).to_list()
        return [d["_id"] for d in docs]

    async def clear(self, req: ClearAlertsRequest, by: str | None, at: datetime) -> int:
        query = clear_filter(req)
        if req.mode == "delete":
            res = await self.col.delete_many(query)
            return res.deleted_count
        if req.dismissed_only:
            return 0  # dismissing alerts that are dismissed already changes nothing
        res = await self.col.update_many(
            {**query, "dismissed": False},
            {"$set": {"dismissed": True, "dismissed_at": ms(at), "dismissed_by": by}},
        )
        return res.modified_count

    async def claim_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Hold the named lease for `ttl` (renewing our own); False while another holder's is live."""
        try:
            doc = await self.leases.find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lt": ms(now)}}]},
                {"$set": {"holder": holder, "expires_at": ms(now + ttl)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # the document exists, held by someone else
        return doc is not None and doc.get("holder") == holder

    async def release_lease(self, name: str, holder: str) -> None:
        await self.leases.delete_one({"_id": name, "holder": holder})
