"""Tracked users and the activity kept for them.

- `tracked_users`: one document per tracked user (`user_id` and/or `username_key`, each unique),
  with counters the event consumer keeps (`groups`: the chats they were seen writing in,
  `message_count`, `last_seen_at`).
- `activity`: what campaign hears that is not already stored elsewhere: group messages written by
  tracked users (chat history keeps private conversations only) and keyword matches / trigger runs
  concerning a tracked user or a lead. Private messages, sends, skips, stage changes, opt-outs and
  bans are read from where they already live when a timeline is asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

from ..messaging.window_store import TimeWindow
from .store import identity_query, username_key


class TrackedTaken(Exception):
    pass


#: Tracked users, most recently seen first.
SEEN_ORDER = Keyset(("seen_sort", "_id"), descending=True)


class TrackedUserStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["tracked_users"]
        #: Bumped by every write through this store (insert, update, delete): what lets a cache of
        #: this process (crm's consumer's set of tracked ids) tell a change without a query.
        self.version = 0

    async def find_one(self, user_id: int | None, username: str | None) -> dict[str, Any] | None:
        query = identity_query(user_id, username)
        return await self.c.find_one(query) if query else None

    async def insert(self, doc: dict[str, Any]) -> None:
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            raise TrackedTaken(doc["_id"]) from None
        finally:
            self.version += 1  # after the write: a reader that saw the old version reads again

    async def update(self, tracked_id: str, set_: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            await self.c.update_one({"_id": tracked_id}, {"$set": dict(set_)})
        except DuplicateKeyError:
            raise TrackedTaken(tracked_id) from None
        finally:
            self.version += 1
        return await self.c.find_one({"_id": tracked_id})

    async def delete(self, tracked_id: str) -> bool:
        try:
            return (await self.c.delete_one({"_id": tracked_id})).deleted_count == 1
        finally:
            self.version += 1

    async def active_user_ids(self) -> set[int]:
        """The user ids of every active tracked user (a few thousand at most: tracking is by hand)."""
        docs = await self.c.find({"status": "active"}, {"user_id": 1}).to_list()
        return {d["user_id"] for d in docs if isinstance(d.get("user_id"), int)}

    async def active_by_user(self, user_id: int) -> dict[str, Any] | None:
        return await self.c.find_one({"user_id": user_id, "status": "active"})

    async def by_username(self, username: str) -> dict[str, Any] | None:
        return await self.c.find_one({"username_key": username_key(username)})

    async def seen(
        self,
        tracked_id: str,
        chat_key: str | None,
        at: datetime,
        fill: Mapping[str, Any],
        message_key: str | None = None,
    ) -> None:
        """Count one message of the user; with `message_key`, a message already counted (an event
        delivered again) is not counted twice (the last 200 keys are remembered)."""
        query: dict[str, Any] = {"_id": tracked_id}
        update: dict[str, Any] = {"$inc": {"message_count": 1}, "$max": {"last_seen_at": at, "seen_sort": at}}
        if chat_key is not None:
            update["$addToSet"] = {"groups": chat_key}
        if message_key is not None:
            query["counted"] = {"$ne": message_key}
            update["$push"] = {"counted": {"$each": [message_key], "$slice": -200}}
        if fill:
            update["$set"] = dict(fill)
        await self.c.update_one(query, update)

    async def page(
        self, query: Mapping[str, Any], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Most recently seen first (`seen_sort`: last seen, or tracked-since when never seen), read
        as time windows (`tgm_runtime.windowed`)."""
        return await read_newest(self.c, SEEN_ORDER, query, cursor, limit)

    async def count(self, query: Mapping[str, Any]) -> int:
        """get-tracked-users' `total`, counted once until this process writes (`counts.py`)."""
        return await cached_count(self.c, query)


def new_tracked_id() -> str:
    return "u" + uuid.uuid4().hex[:20]


class ActivityStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["activity"]

    async def add(self, doc: dict[str, Any]) -> bool:
        """Store one item; False when already stored (a redelivered event)."""
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def of(
        self,
        user_id: int | None,
        lead_id: str | None,
        *,
        kinds: Sequence[str] | None,
        since: datetime | None,
        before: datetime | None,
        at: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        query = _of(user_id, lead_id, kinds)
        if query is None:
            return []
        dates: dict[str, Any] = {}
        if at is not None:
            dates = {"$eq": at}
        else:
            if since is not None:
                dates["$gte"] = since
            if before is not None:
                dates["$lt"] = before
        if dates:
            query = {"$and": [query, {"at": dates}]}
        return await self.c.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list()

    async def in_window(
        self, window: TimeWindow, user_id: int | None, lead_id: str | None, kinds: Iterable[str] | None
    ) -> list[dict[str, Any]]:
        """A user's or lead's items (of `kinds`, or all) in a timeline's window."""
        query = _of(user_id, lead_id, sorted(kinds) if kinds is not None else None)
        return [] if query is None else await window.read(self.c, "at", query)

    async def forget(self, user_id: int | None, username: str | None) -> int:
        query = identity_query(user_id, username)
        if query is None:
            return 0
        return (await self.c.delete_many(query)).deleted_count


INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "tracked_users": [
        ([("user_id", ASCENDING)], {"name": "user_unique", "unique": True, "sparse": True}),
        ([("username_key", ASCENDING)], {"name": "username_unique", "unique": True, "sparse": True}),
        ([("seen_sort", DESCENDING), ("_id", DESCENDING)], {"name": "seen"}),
    ],
    "activity": [
        ([("user_id", ASCENDING), ("at", DESCENDING)], {"name": "user_at", "sparse": True}),
        ([("lead_id", ASCENDING), ("at", DESCENDING)], {"name": "lead_at", "sparse": True}),
    ],
}


def _of(user_id: int | None, lead_id: str | None, kinds: Sequence[str] | None) -> dict[str, Any] | None:
    """Items of the user or the lead (either one), of `kinds` when given; None when neither is known."""
    ors: list[dict[str, Any]] = []
    if user_id is not None:
        ors.append({"user_id": user_id})
    if lead_id is not None:
        ors.append({"lead_id": lead_id})
    if not ors:
        return None
    query: dict[str, Any] = ors[0] if len(ors) == 1 else {"$or": ors}
    if kinds is not None:
        query = {"$and": [query, {"kind": {"$in": list(kinds)}}]}
    return query
