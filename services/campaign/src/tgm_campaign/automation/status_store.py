"""A collection of status documents: definitions with a `status` that moves compare-and-set, paged
newest first. Automation's `campaigns` (`campaign_store.py`) and ads' `ad_campaigns` (`ads/store.py`)
are both this shape; each store adds its own queries on top.

Also the helpers the campaign stores share: `campaign_match` (a breakdown's `$match`: campaigns and
a `since`/`until` window), `job_breakdown` (their jobs counted by state, reason, account and local
day), `local_day`, `aggregate` (a pipeline's rows) and `insert_new` (an insert that is a no-op,
False, when its unique key is taken).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

from ..messaging.store import JobStore
from ..messaging.window_store import between

#: Pages of definitions: newest first.
NEWEST = Keyset(("created_at", "_id"), descending=True)


class StatusStore:
    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self.c = collection

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.c.insert_one(doc)

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": doc_id})

    async def many(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        return await self.c.find({"_id": {"$in": list(ids)}}).to_list()

    async def redefine(
        self, doc_id: str, fields: Mapping[str, Any], not_in: Sequence[str]
    ) -> dict[str, Any] | None:
        """Replace a definition unless its status is one of `not_in` (the runner is using it); the
        document after, or None when there is none (or it was in one of `not_in`)."""
        result = await self.c.update_one(
            {"_id": doc_id, "status": {"$nin": list(not_in)}}, {"$set": dict(fields)}
        )
        return await self.get(doc_id) if result.matched_count else None

    async def transition(
        self,
        doc_id: str,
        from_statuses: Sequence[str],
        set_: Mapping[str, Any],
        unset: Sequence[str] = (),
        *,
        where: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Move a document out of one of `from_statuses` (compare-and-set, and on `where`'s fields
        too); the document after, or None when another caller moved it first."""
        query: dict[str, Any] = {"_id": doc_id, "status": {"$in": list(from_statuses)}, **(where or {})}
        update: dict[str, Any] = {"$set": dict(set_)}
        if unset:
            update["$unset"] = {k: "" for k in unset}
        result = await self.c.update_one(query, update)
        return await self.get(doc_id) if result.modified_count else None

    async def set_fields(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        await self.c.update_one({"_id": doc_id}, {"$set": dict(fields)})

    async def in_statuses(self, statuses: Sequence[str]) -> list[dict[str, Any]]:
        return await self.c.find({"status": {"$in": list(statuses)}}).to_list()

    async def count(self, statuses: Sequence[str] | None = None) -> int:
        return await self.c.count_documents({"status": {"$in": list(statuses)}} if statuses else {})

    async def page(
        self, statuses: Sequence[str] | None, search: str | None, limit: int, cursor: str | None, **equal: Any
    ) -> tuple[list[dict[str, Any]], str | None, int]:
        """One page, newest first, of the documents in `statuses` (all when None) whose `name_key`
        contains `search` and whose fields equal `equal`'s values (those given: None is no filter);
        the next page's cursor and the total."""
        query: dict[str, Any] = {k: v for k, v in equal.items() if v is not None}
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if search:
            query["name_key"] = {"$regex": re.escape(search.casefold())}
        total = await cached_count(self.c, query)
        items, next_cursor = await read_newest(self.c, NEWEST, query, cursor, limit)  # windowed.py
        return items, next_cursor, total


@dataclass(frozen=True)
class Scope:
    """What a campaign figure is counted over: the campaigns (any when None), a `since`..`until`
    window (no bound when None) and the zone whose local days the figures are bucketed by."""

    campaign_ids: Sequence[str] | None
    since: datetime | None = None
    until: datetime | None = None
    timezone: str = "UTC"


def campaign_match(scope: Scope, date_field: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An aggregation's `$match`: `base`, of the scope's campaigns, with `date_field` in its window."""
    match: dict[str, Any] = dict(base or {})
    if scope.campaign_ids is not None:
        match["campaign_id"] = {"$in": list(scope.campaign_ids)}
    window = between(scope.since, scope.until)
    if window:
        match[date_field] = window
    return match


def local_day(date: Any, timezone: str) -> dict[str, Any]:
    """An aggregation expression: the day (`YYYY-MM-DD`) of the date expression `date` in `timezone`."""
    return {"$dateToString": {"format": "%Y-%m-%d", "date": date, "timezone": timezone}}


async def job_breakdown(
    jobs: JobStore, match: Mapping[str, Any], timezone: str, keys: Mapping[str, Any], **totals: Any
) -> list[dict[str, Any]]:
    """The jobs matching `match` counted by campaign, state, reason, account, local day (of the send,
    or of the last change for jobs not sent) and `keys`: rows `{c, s, r, a, d, <keys>, n, <totals>}`
    (`totals`: more accumulators of each group, e.g. the last send)."""
    day = local_day({"$ifNull": ["$sent_at", "$updated_at"]}, timezone)
    by = {"c": "$campaign_id", "s": "$state", "r": "$reason", "a": "$account_id", **keys, "d": day}
    rows = await jobs.aggregate(
        [{"$match": dict(match)}, {"$group": {"_id": by, "n": {"$sum": 1}, **totals}}]
    )
    return [{**r["_id"], "n": int(r["n"]), **{k: r.get(k) for k in totals}} for r in rows]


async def aggregate(collection: AsyncCollection[Any], pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cursor = await collection.aggregate(pipeline)
    rows: list[dict[str, Any]] = await cursor.to_list()
    return rows


async def insert_new(collection: AsyncCollection[Any], doc: Mapping[str, Any]) -> bool:
    """Insert; False when a unique key (the id, or another unique index) is taken already."""
    try:
        await collection.insert_one(dict(doc))
        return True
    except DuplicateKeyError:
        return False
