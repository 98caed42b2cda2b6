"""The `groups` collection: monitored groups (`store.py` lists the shape).

`ref_key` is the canonical form of the chat reference the operator gave (`id:<n>`, `@<lower-case
username>`, `+<invite hash>`) and is unique: the same chat given twice the same way is a CONFLICT.
Once resolved, `chat_id` is known too; a second group resolving to the same chat id is refused by the
service (an index on `chat_id` already exists from migration 2, non-unique, for messaging's reads).
`username` is stored lower-case (Telegram usernames are case-insensitive) so the inbound lookup is
one indexed equality on `chat_id` or `username`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .keyword_store import COUNTED_KEPT

#: collection -> [(keys, options)], created by migration 3 (`chat_id` is indexed by migration 2).
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "groups": [
        ([("ref_key", ASCENDING)], {"unique": True, "sparse": True, "name": "ref_unique"}),
        ([("username", ASCENDING)], {"sparse": True, "name": "username"}),
        ([("keyword_set_ids", ASCENDING)], {"name": "keyword_sets"}),
        ([("created_at", ASCENDING)], {"name": "created"}),
    ],
}


async def ids_per_set(collection: Any, set_ids: Sequence[str], *, by_id: bool) -> dict[str, list[str]]:
    """set id -> ids of the documents of `collection` (groups, rules) whose `keyword_set_ids` name
    it, in one query for a list of sets; in `_id` order (`by_id`) or as the database returns them."""
    out: dict[str, list[str]] = {s: [] for s in set_ids}
    if not set_ids:
        return out
    docs = await collection.find(
        {"keyword_set_ids": {"$in": list(set_ids)}}, {"_id": 1, "keyword_set_ids": 1}
    ).to_list()
    for d in sorted(docs, key=lambda d: str(d["_id"])) if by_id else docs:
        for s in d.get("keyword_set_ids") or []:
            if s in out:
                out[s].append(d["_id"])
    return out


class GroupTaken(Exception):
    pass


def new_group_id() -> str:
    return "grp_" + uuid.uuid4().hex[:16]


class MonitoredGroupStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["groups"]

    async def create(self, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        doc = {
            "_id": new_group_id(),
            **fields,
            "is_active": True,
            "paused": False,
            "pause_reason": None,
            "status": "pending",
            "status_detail": None,
            "member_account_ids": [],
            "member_count": None,
            "match_count": 0,
            "last_message_at": None,
            "last_match_at": None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            raise GroupTaken(fields["ref_key"]) from None
        return doc

    async def get(self, group_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": group_id})

    async def delete(self, group_id: str) -> dict[str, Any] | None:
        return await self.c.find_one_and_delete({"_id": group_id})

    async def update(self, group_id: str, fields: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        return await self.c.find_one_and_update(
            {"_id": group_id}, {"$set": {**fields, "updated_at": now}}, return_document=ReturnDocument.AFTER
        )

    async def add_set(self, group_id: str, set_id: str, now: datetime) -> dict[str, Any] | None:
        return await self.c.find_one_and_update(
            {"_id": group_id},
            {"$addToSet": {"keyword_set_ids": set_id}, "$set": {"updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def pull_set(self, group_id: str, set_id: str, now: datetime) -> dict[str, Any] | None:
        return await self.c.find_one_and_update(
            {"_id": group_id},
            {"$pull": {"keyword_set_ids": set_id}, "$set": {"updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def using_set(self, set_id: str) -> list[str]:
        """Ids of the groups bound to a keyword set."""
        return [d["_id"] for d in await self.c.find({"keyword_set_ids": set_id}, {"_id": 1}).to_list()]

    async def bindings(self, set_ids: Sequence[str]) -> dict[str, list[str]]:
        """set id -> ids of the groups bound to it (one query for a page of sets)."""
        return await ids_per_set(self.c, set_ids, by_id=True)

    async def detach_set(self, set_id: str, now: datetime) -> list[str]:
        """Unbind a keyword set from every group; the ids of the groups it was bound to."""
        ids = await self.using_set(set_id)
        if ids:
            await self.c.update_many(
                {"_id": {"$in": ids}}, {"$pull": {"keyword_set_ids": set_id}, "$set": {"updated_at": now}}
            )
        return ids

    async def by_chat(self, chat_id: int, username: str | None) -> dict[str, Any] | None:
        """The group of a chat: by resolved id, else by the username of a not yet resolved group."""
        if username:
            query: dict[str, Any] = {"$or": [{"chat_id": chat_id}, {"username": username.lower()}]}
        else:
            query = {"chat_id": chat_id}
        docs = await self.c.find(query).limit(2).to_list()
        # a resolved id wins over a username match (the username may have moved to another chat)
        return next((d for d in docs if d.get("chat_id") == chat_id), docs[0] if docs else None)

    async def with_chat_id(self, chat_id: int, exclude: str) -> dict[str, Any] | None:
        return await self.c.find_one({"chat_id": chat_id, "_id": {"$ne": exclude}}, {"_id": 1})

    async def learn_chat_id(self, group_id: str, chat_id: int, now: datetime) -> bool:
        """Set the chat id of a group known only by username (first message seen); False if set."""
        r = await self.c.update_one(
            {"_id": group_id, "chat_id": None}, {"$set": {"chat_id": chat_id, "updated_at": now}}
        )
        return r.modified_count == 1

    async def seen(self, group_id: str, at: datetime, matched: str | None) -> None:
        """A message of the group; `matched` the key of a matched one, counted once (the group keeps
        the newest `COUNTED_KEPT` keys it counted, so a redelivered run does not count it again)."""
        if matched is None:
            await self.c.update_one({"_id": group_id}, {"$max": {"last_message_at": at}})
            return
        await self.c.update_one(
            {"_id": group_id, "counted": {"$ne": matched}},
            {
                "$max": {"last_message_at": at, "last_match_at": at},
                "$inc": {"match_count": 1},
                "$push": {"counted": {"$each": [matched], "$slice": -COUNTED_KEPT}},
            },
        )

    async def find(
        self,
        *,
        active_only: bool = False,
        keyword_set_id: str | None = None,
        statuses: Sequence[str] | None = None,
        search: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if active_only:
            query["is_active"] = True
        if keyword_set_id:
            query["keyword_set_ids"] = keyword_set_id
        if statuses:
            query["status"] = {"$in": list(statuses)}
        if ids is not None:
            query["_id"] = {"$in": list(ids)}
        if search:
            rx = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"title": rx}, {"username": rx}, {"url": rx}]
        return await self.c.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).to_list()

    async def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {d["_id"] for d in await self.c.find({"_id": {"$in": list(ids)}}, {"_id": 1}).to_list()}

    async def counts(self) -> tuple[int, int]:
        """(groups, active and not paused) for the system status."""
        total = await self.c.count_documents({})
        active = await self.c.count_documents({"is_active": True, "paused": False})
        return total, active

    # --- what collaboration reads of the groups (appended by it) ----------------------------------

    async def resolved_by_username(self, username: str) -> dict[str, Any] | None:
        """A group by its username, only once its chat id is known: `{chat_id, title, username}`."""
        return await self.c.find_one(
            {"username": username.lstrip("@").lower(), "chat_id": {"$ne": None}},
            {"chat_id": 1, "title": 1, "username": 1},
        )
