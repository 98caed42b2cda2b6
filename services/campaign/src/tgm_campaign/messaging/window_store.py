"""A timeline's slice of one collection: the newest documents before a cursor instant.

`get-user-activity` merges a user's timeline from where each fact lives (chat history, the queue,
the CRM's activity). Each source is read the same way: the newest `want` documents within
`since`..`until` and before the cursor's instant, plus every document *at* that instant (the cursor
is (time, item), so items sharing the time are told apart by the caller, not skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING

#: At most this many documents of one source share the cursor's instant.
AT_CURSOR_MAX = 1000


def between(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """The condition `since <= x < until` (either end open when None; empty when both are)."""
    dates: dict[str, Any] = {}
    if since is not None:
        dates["$gte"] = since
    if until is not None:
        dates["$lt"] = until
    return dates


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None
    until: datetime | None
    cursor_at: datetime | None
    want: int

    async def read(self, collection: Any, date_field: str, base: dict[str, Any]) -> list[dict[str, Any]]:
        """The newest `want` documents of `base` before the cursor, plus every one at its instant."""
        dates = between(self.since, self.until)
        if self.cursor_at is not None:
            dates["$lt"] = min(self.cursor_at, dates.get("$lt", self.cursor_at))
        q = _and(base, {date_field: dates}) if dates else base
        docs = (
            await collection.find(q)
            .sort([(date_field, DESCENDING), ("_id", DESCENDING)])
            .limit(self.want)
            .to_list()
        )
        if self.cursor_at is not None:
            docs += (
                await collection.find(_and(base, {date_field: self.cursor_at})).limit(AT_CURSOR_MAX).to_list()
            )
        return docs


def _and(query: dict[str, Any], cond: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [query, cond]} if query else cond
