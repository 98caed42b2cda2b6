"""The `leads` collection: one document per Telegram user the fleet works, `_id` the lead id, fields
as `LeadView` (snake_case) plus `username_key` (lower-case, for lookups and uniqueness) and
`stage_history` (every stage change with who and why, the first entry being the stage it was
created in). This store is the one writer of that shape: the CRM commands and the queue (a delivery
moves a `new` lead to `contacted`; a ban marks its leads) both go through it.

A user has one lead: `user_id`, `username_key` and `phone` are each unique (sparse indexes, so a
field is omitted, never stored as null)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_contracts.models.campaign import LeadStage, LeadView, StageChange
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

IDENTITY = ("user_id", "username_key", "phone")
"""Unique per lead; omitted from the document when unknown."""

HISTORY_FIELDS = ("from_stage", "to_stage", "at", "by", "reason")


class LeadTaken(Exception):
    """Another lead already has this user id, username or phone."""


class StaleLead(Exception):
    """The lead changed since the caller read it (`expectedUpdatedAt`)."""


def new_lead_id() -> str:
    return "l" + uuid.uuid4().hex[:20]


def username_key(username: str | None) -> str | None:
    return username.lstrip("@").lower() if username else None


def lead_view(doc: Mapping[str, Any]) -> LeadView:
    return LeadView.model_validate(
        {
            "id": doc["_id"],
            **{k: v for k, v in doc.items() if k in LeadView.model_fields and k != "id" and v is not None},
            "created_at": doc["created_at"],
            "updated_at": doc["updated_at"],
        }
    )


def stage_history(doc: Mapping[str, Any]) -> list[StageChange]:
    return [
        StageChange.model_validate({k: h.get(k) for k in HISTORY_FIELDS})
        for h in doc.get("stage_history") or []
    ]


def stages_reached(doc: Mapping[str, Any]) -> set[str]:
    """Every stage the lead has been in (its history and where it is now)."""
    seen = {h["to_stage"] for h in doc.get("stage_history") or [] if h.get("to_stage")}
    seen |= {h["from_stage"] for h in doc.get("stage_history") or [] if h.get("from_stage")}
    seen.add(doc.get("stage") or LeadStage.NEW.value)
    return seen


def identity_query(
    user_id: int | None = None, username: str | None = None, phone: str | None = None
) -> dict[str, Any] | None:
    ors: list[dict[str, Any]] = []
    if user_id is not None:
        ors.append({"user_id": user_id})
    if username:
        ors.append({"username_key": username_key(username)})
    if phone:
        ors.append({"phone": phone})
    if not ors:
        return None
    return ors[0] if len(ors) == 1 else {"$or": ors}


class LeadStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["leads"]

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, lead_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": lead_id})

    async def many(self, lead_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(lead_ids))
        if not ids:
            return {}
        return {d["_id"]: d async for d in self.c.find({"_id": {"$in": ids}})}

    async def by_identity(
        self, user_id: int | None = None, username: str | None = None, phone: str | None = None
    ) -> dict[str, Any] | None:
        query = identity_query(user_id, username, phone)
        return await self.c.find_one(query) if query else None

    async def ids_by_identity(self, people: Sequence[tuple[int | None, str | None]]) -> list[str | None]:
        """The lead id of each (user id, username), as `by_identity` finds it, for a page of people in
        two indexed `$in` reads (one `$or` find per person scanned the leads on the embedded database:
        get-tracked-users ~250 ms a page at 10,000, bench/lists). When a user id and a username name
        two different leads, the user id's wins."""
        uids = list(dict.fromkeys(u for u, _ in people if u is not None))
        keys = list(dict.fromkeys(k for _, n in people if (k := username_key(n))))
        by_uid: dict[int, str] = {}
        by_key: dict[str, str] = {}
        if uids:
            async for d in self.c.find({"user_id": {"$in": uids}}, {"user_id": 1}):
                by_uid.setdefault(d["user_id"], d["_id"])
        if keys:
            async for d in self.c.find({"username_key": {"$in": keys}}, {"username_key": 1}):
                by_key.setdefault(d["username_key"], d["_id"])
        return [
            (by_uid.get(u) if u is not None else None) or by_key.get(username_key(n) or "") for u, n in people
        ]

    async def by_users(self, user_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        return {d["user_id"]: d async for d in self.c.find({"user_id": {"$in": ids}})}

    async def in_stages(self, stages: list[str]) -> list[int]:
        return [
            d["user_id"]
            async for d in self.c.find({"stage": {"$in": stages}}, {"user_id": 1})
            if d.get("user_id")
        ]

    async def page(
        self, query: Mapping[str, Any], order: Keyset, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of leads in `order` (without their stage history) and the next page's cursor;
        newest first by creation (the default) read as time windows (`tgm_runtime.windowed`)."""
        if order.fields[0] == "created_at":
            return await read_newest(self.c, order, query, cursor, limit, {"stage_history": 0})
        docs = (
            await self.c.find(order.where(query, cursor), {"stage_history": 0})
            .sort(order.sort())
            .limit(limit + 1)
            .to_list()
        )
        return order.page(docs, limit)

    async def count(self, query: Mapping[str, Any]) -> int:
        """A list's `total` (leads, funnel): counted once until this process writes leads (`counts.py`)."""
        return await cached_count(self.c, query)

    async def scan(self, query: Mapping[str, Any], projection: Mapping[str, int]) -> list[dict[str, Any]]:
        return await self.c.find(dict(query), dict(projection)).to_list()

    # --- writing -----------------------------------------------------------------------------------

    async def insert(self, doc: dict[str, Any]) -> None:
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            raise LeadTaken(doc["_id"]) from None

    async def patch(
        self,
        lead_id: str,
        set_: Mapping[str, Any],
        unset: Sequence[str] = (),
        *,
        expected_updated_at: datetime | None = None,
        expected_stage: str | None = None,
        push_history: Mapping[str, Any] | None = None,
    ) -> bool:
        """One conditional update by id; False when the condition (stage, updated_at) did not hold."""
        query: dict[str, Any] = {"_id": lead_id}
        if expected_updated_at is not None:
            query["updated_at"] = expected_updated_at
        if expected_stage is not None:
            query["stage"] = expected_stage
        update: dict[str, Any] = {"$set": dict(set_)}
        if unset:
            update["$unset"] = {f: "" for f in unset}
        if push_history is not None:
            update["$push"] = {"stage_history": dict(push_history)}
        try:
            result = await self.c.update_one(query, update)
        except DuplicateKeyError:
            raise LeadTaken(lead_id) from None
        return result.matched_count == 1

    async def delete(self, lead_id: str) -> bool:
        return (await self.c.delete_one({"_id": lead_id})).deleted_count == 1

    # --- what the queue changes --------------------------------------------------------------------

    async def contacted(self, lead_id: str, now: datetime) -> bool:
        """`new` -> `contacted` after a delivery; True if the stage changed."""
        result = await self.c.update_one(
            {"_id": lead_id, "stage": "new"},
            {
                "$set": {
                    "stage": "contacted",
                    "stage_changed_at": now,
                    "last_contacted_at": now,
                    "updated_at": now,
                },
                "$inc": {"message_count": 1},
                "$push": {
                    "stage_history": {
                        "from_stage": "new",
                        "to_stage": "contacted",
                        "at": now,
                        "by": "system",
                        "reason": "message delivered",
                    }
                },
            },
        )
        if result.modified_count:
            return True
        await self.c.update_one(
            {"_id": lead_id}, {"$set": {"last_contacted_at": now}, "$inc": {"message_count": 1}}
        )
        return False

    async def mark_blacklisted(
        self, user_id: int | None, username: str | None, value: bool, now: datetime
    ) -> None:
        ors: list[dict[str, Any]] = []
        if user_id is not None:
            ors.append({"user_id": user_id})
        if username:
            ors.append({"username_key": username_key(username)})
            # leads written before `username_key` existed
            ors.append({"username": {"$regex": f"^@?{re.escape(username.lstrip('@'))}$", "$options": "i"}})
        if ors:
            await self.c.update_many({"$or": ors}, {"$set": {"blacklisted": value, "updated_at": now}})

    # --- what automation's campaigns read of the leads (appended by them) -----------------------

    async def scan_after(
        self, query: Mapping[str, Any], projection: Mapping[str, int], after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Leads matching `query` in id order, after the id `after`, `limit` at a time."""
        q: dict[str, Any] = dict(query) if after is None else {"$and": [dict(query), {"_id": {"$gt": after}}]}
        return await self.c.find(q, dict(projection)).sort([("_id", ASCENDING)]).limit(limit).to_list()


INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("user_id", ASCENDING)], {"name": "user_unique", "unique": True, "sparse": True}),
    ([("username_key", ASCENDING)], {"name": "username_unique", "unique": True, "sparse": True}),
    ([("phone", ASCENDING)], {"name": "phone_unique", "unique": True, "sparse": True}),
    ([("stage", ASCENDING), ("stage_changed_at", ASCENDING)], {"name": "stage_since"}),
    ([("created_at", DESCENDING), ("_id", DESCENDING)], {"name": "created"}),
    ([("updated_at", DESCENDING), ("_id", DESCENDING)], {"name": "updated"}),
    ([("tags", ASCENDING)], {"name": "tags"}),
    ([("assigned_account_id", ASCENDING)], {"name": "account", "sparse": True}),
    ([("campaign_id", ASCENDING)], {"name": "campaign", "sparse": True}),
]
