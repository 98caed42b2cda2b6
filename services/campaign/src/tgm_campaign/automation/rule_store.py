"""The `trigger_rules` collection: one document per rule, the `TriggerRuleSpec` fields in snake_case
(actions and conditions as dicts) plus `_id` "tr_…", the counters `trigger_count`, `success_count`,
`failure_count`, `last_triggered_at`, `created_at`, `updated_at`, and two short lists of the firing
keys already counted (`counted_fired`, `counted_done`).

Counters are exact under redelivery and racing replicas: each count is one conditional update on
the rule document that adds the firing key to a list and increments only when the key was not in it
yet (the lists keep the last `COUNTED_KEEP` keys, far more than can be in flight at once). The
inbound path counts a firing once, when it is done (`count_firing`: triggered and its outcome in
one write, off the path to the reply); `count_fired`/`count_done` count the two apart. A save
replaces the spec fields only, never the counters.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from .group_store import ids_per_set

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "trigger_rules": [
        ([("is_active", ASCENDING), ("priority", DESCENDING), ("created_at", ASCENDING)], {"name": "active"}),
        ([("keyword_set_ids", ASCENDING)], {"name": "keyword_sets"}),
        ([("source_group_ids", ASCENDING)], {"name": "source_groups"}),
    ],
}

COUNTED_KEEP = 500
COUNTERS = ("trigger_count", "success_count", "failure_count", "last_triggered_at")
HIDDEN = ("counted_fired", "counted_done")


def new_rule_id() -> str:
    return "tr_" + uuid.uuid4().hex[:16]


ORDER = [("priority", DESCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]


class TriggerRuleStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["trigger_rules"]

    async def create(self, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        doc = {
            "_id": new_rule_id(),
            **fields,
            "trigger_count": 0,
            "success_count": 0,
            "failure_count": 0,
            "last_triggered_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.c.insert_one(doc)
        return doc

    async def replace(self, rule_id: str, fields: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        """Replace a rule's definition (counters and creation kept); None when it does not exist."""
        return await self.c.find_one_and_update(
            {"_id": rule_id},
            {"$set": {**fields, "updated_at": now}},
            projection={k: 0 for k in HIDDEN},
            return_document=ReturnDocument.AFTER,
        )

    async def get(self, rule_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": rule_id}, {k: 0 for k in HIDDEN})

    async def delete(self, rule_id: str) -> bool:
        return (await self.c.delete_one({"_id": rule_id})).deleted_count == 1

    async def set_active(self, rule_id: str, active: bool | None, now: datetime) -> dict[str, Any] | None:
        """Set (or flip, when None) `is_active`; None when the rule does not exist."""
        update: Any = (
            {"$set": {"is_active": active, "updated_at": now}}
            if active is not None
            else [{"$set": {"is_active": {"$not": ["$is_active"]}, "updated_at": now}}]
        )
        return await self.c.find_one_and_update(
            {"_id": rule_id},
            update,
            projection={k: 0 for k in HIDDEN},
            return_document=ReturnDocument.AFTER,
        )

    async def find(
        self, *, active_only: bool = False, keyword_set_id: str | None = None, group_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Rules in evaluation order (priority desc, then oldest first)."""
        query: dict[str, Any] = {}
        if active_only:
            query["is_active"] = True
        if keyword_set_id is not None:
            query["keyword_set_ids"] = keyword_set_id
        if group_id is not None:
            query["$or"] = [{"source_type": "all"}, {"source_group_ids": group_id}]
        return await self.c.find(query, {k: 0 for k in HIDDEN}).sort(ORDER).to_list()

    async def using_set(self, set_id: str) -> list[str]:
        """Ids of the rules that use a keyword set."""
        return [d["_id"] for d in await self.c.find({"keyword_set_ids": set_id}, {"_id": 1}).to_list()]

    async def bindings(self, set_ids: Sequence[str]) -> dict[str, list[str]]:
        """set id -> ids of the rules that use it, as `using_set` lists them (one query for a list of
        sets, not one per set: get-keyword-sets of 1,000 sets took 1.1 s, `bench/lists`)."""
        return await ids_per_set(self.c, set_ids, by_id=False)

    async def detach_set(self, set_id: str, now: datetime) -> list[str]:
        """Take a deleted keyword set out of every rule; rules left with no set are deactivated.
        Returns the ids of the rules changed."""
        ids = await self.using_set(set_id)
        if not ids:
            return []
        await self.c.update_many(
            {"_id": {"$in": ids}}, {"$pull": {"keyword_set_ids": set_id}, "$set": {"updated_at": now}}
        )
        await self.c.update_many(
            {"_id": {"$in": ids}, "keyword_set_ids": {"$size": 0}}, {"$set": {"is_active": False}}
        )
        return ids

    async def detach_group(self, group_id: str, now: datetime) -> list[str]:
        """Take a removed monitored group out of every rule's sources; a `specific` rule left with no
        group is deactivated. Returns the ids of the rules changed."""
        docs = await self.c.find({"source_group_ids": group_id}, {"_id": 1}).to_list()
        ids = [d["_id"] for d in docs]
        if not ids:
            return []
        await self.c.update_many(
            {"_id": {"$in": ids}}, {"$pull": {"source_group_ids": group_id}, "$set": {"updated_at": now}}
        )
        await self.c.update_many(
            {"_id": {"$in": ids}, "source_type": "specific", "source_group_ids": {"$size": 0}},
            {"$set": {"is_active": False}},
        )
        return ids

    async def count(self, active_only: bool = False) -> int:
        return await self.c.count_documents({"is_active": True} if active_only else {})

    # --- counters (idempotent per firing key) ------------------------------------------------------

    async def count_fired(self, rule_id: str, firing_key: str, at: datetime) -> bool:
        """+1 `trigger_count`, `last_triggered_at` = at, once per firing key; True if counted now."""
        result = await self.c.update_one(
            {"_id": rule_id, "counted_fired": {"$ne": firing_key}},
            {
                "$inc": {"trigger_count": 1},
                "$max": {"last_triggered_at": at},
                "$push": {"counted_fired": {"$each": [firing_key], "$slice": -COUNTED_KEEP}},
            },
        )
        return result.modified_count == 1

    async def count_firing(self, rule_id: str, firing_key: str, at: datetime, success: bool) -> bool:
        """A finished firing counted in one write: +1 `trigger_count`, `last_triggered_at` = at, +1
        `success_count` or `failure_count`, once per firing key; True if counted now. A firing whose
        trigger was counted on its own (`count_fired`, by an earlier version) gets only its outcome."""
        result = await self.c.update_one(
            {"_id": rule_id, "counted_done": {"$ne": firing_key}, "counted_fired": {"$ne": firing_key}},
            {
                "$inc": {"trigger_count": 1, "success_count" if success else "failure_count": 1},
                "$max": {"last_triggered_at": at},
                "$push": {"counted_done": {"$each": [firing_key], "$slice": -COUNTED_KEEP}},
            },
        )
        if result.modified_count == 1:
            return True
        return await self.count_done(rule_id, firing_key, success)

    async def count_done(self, rule_id: str, firing_key: str, success: bool) -> bool:
        """+1 `success_count` or `failure_count`, once per firing key; True if counted now."""
        result = await self.c.update_one(
            {"_id": rule_id, "counted_done": {"$ne": firing_key}},
            {
                "$inc": {"success_count" if success else "failure_count": 1},
                "$push": {"counted_done": {"$each": [firing_key], "$slice": -COUNTED_KEEP}},
            },
        )
        return result.modified_count == 1
