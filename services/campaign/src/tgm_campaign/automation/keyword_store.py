"""The `keyword_sets` collection and the `automation_meta` version doc replicas rebuild their matcher by.

A set is one document with its keywords embedded (`store.py` lists the shape). Writes that replace
the keyword list (save, add-keyword, remove-keyword) are compare-and-set on `rev`.

Match counters live in their own small documents, `keyword_counts` {_id "<set>|<keyword id>" (or
"<set>|" for the set's total), set_id, count, last_matched_at}: one matched message is one unordered
bulk of upserts ($inc, $max), ~1.6 ms on the embedded database, where an $inc with arrayFilters
inside a set document of 2,000 keywords cost 36 ms alone and 127 ms under load (bench/automation).
They are read by `_id` range (`<set>|` .. `<set>|\uffff`, the `_id` index: no migration needed) and
added to the counts a set document may still embed from before (`match_count`, `total_matches`,
kept by saves), so the figures stay exact whatever races: a save never touches them.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "keyword_sets": [
        ([("name_key", ASCENDING)], {"unique": True, "name": "name_unique"}),
        ([("is_active", ASCENDING)], {"name": "active"}),
    ],
}

META_ID = "keyword_sets"
#: Message keys a counter remembers having counted: a redelivery comes within minutes, and a group
#: or keyword sees far fewer than this many matches in that time.
COUNTED_KEPT = 64


#: `match_counts` of more sets than this reads every counter instead of one range per set.
OR_RANGES_MAX = 32


class SetNameTaken(Exception):
    pass


def new_set_id() -> str:
    return "ks_" + uuid.uuid4().hex[:16]


def new_keyword_id() -> str:
    return "kw_" + uuid.uuid4().hex[:16]


def name_key(name: str) -> str:
    return name.strip().casefold()


class KeywordSetStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["keyword_sets"]
        self.meta = db["automation_meta"]
        self.counters = db["keyword_counts"]

    async def create(self, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        doc = {
            "_id": new_set_id(),
            **fields,
            "name_key": name_key(fields["name"]),
            "total_matches": 0,
            "last_matched_at": None,
            "created_at": now,
            "updated_at": now,
            "rev": 0,
        }
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            raise SetNameTaken(fields["name"]) from None
        return doc

    async def replace(
        self, set_id: str, rev: int, fields: Mapping[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """Set `fields` if the set is still at `rev`; None when it moved (or is gone): read and retry."""
        update: dict[str, Any] = {**fields, "updated_at": now}
        if "name" in fields:
            update["name_key"] = name_key(fields["name"])
        try:
            return await self.c.find_one_and_update(
                {"_id": set_id, "rev": rev},
                {"$set": update, "$inc": {"rev": 1}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise SetNameTaken(fields["name"]) from None

    async def get(self, set_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": set_id})

    async def delete(self, set_id: str) -> bool:
        return (await self.c.delete_one({"_id": set_id})).deleted_count == 1

    async def find(
        self, *, active_only: bool = False, search: str | None = None, ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if active_only:
            query["is_active"] = True
        if ids is not None:
            query["_id"] = {"$in": list(ids)}
        if search:
            rx = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"name": rx}, {"keywords.keyword": rx}, {"description": rx}]
        return await self.c.find(query).sort([("name_key", ASCENDING)]).to_list()

    async def active(self) -> list[dict[str, Any]]:
        """Every active set, for the matcher (counters left out: they are not matched on)."""
        return await self.c.find({"is_active": True}, {"total_matches": 0, "last_matched_at": 0}).to_list()

    async def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        docs = await self.c.find({"_id": {"$in": list(ids)}}, {"_id": 1}).to_list()
        return {d["_id"] for d in docs}

    async def count(self, set_id: str, keyword_ids: Sequence[str | None], at: datetime, message: str) -> None:
        """One message matched the set: its total +1, and each keyword +1 per occurrence in
        `keyword_ids` (None: a hit without a keyword id, e.g. a legacy one; counted on the set only).
        Idempotent per `message` (its key): each counter keeps the newest `COUNTED_KEPT` message keys
        it counted and skips one it has, so a run killed mid-count and redelivered counts once."""
        ops = [
            UpdateOne(
                {"_id": f"{set_id}|{kid}", "counted": {"$ne": message}},
                {
                    "$inc": {"count": n},
                    "$max": {"last_matched_at": at},
                    "$setOnInsert": {"set_id": set_id},
                    "$push": {"counted": {"$each": [message], "$slice": -COUNTED_KEPT}},
                },
                upsert=True,
            )
            for kid, n in [("", 1), *Counter(k for k in keyword_ids if k).items()]
        ]
        await once_each(self.counters, ops)

    async def match_counts(self, set_ids: Sequence[str]) -> dict[str, dict[str, tuple[int, datetime | None]]]:
        """set id -> {keyword id ("" for the set's total) -> (count, last matched at)} of the counter
        documents (the counts embedded in set documents come on top)."""
        out: dict[str, dict[str, tuple[int, datetime | None]]] = {s: {} for s in set_ids}
        if not set_ids:
            return out
        ranges = [{"_id": {"$gte": f"{s}|", "$lt": f"{s}|\uffff"}} for s in dict.fromkeys(set_ids)]
        # Many sets (a whole list): every counter, filtered here. An `$or` of one range per set made
        # the database test each counter against every range (get-keyword-sets of 10,000 sets
        # timed out, bench/lists).
        query = ranges[0] if len(ranges) == 1 else {"$or": ranges} if len(ranges) <= OR_RANGES_MAX else {}
        for d in await self.counters.find(query, {"counted": 0}).to_list():
            set_id, _, kid = str(d["_id"]).partition("|")
            if set_id in out:
                out[set_id][kid] = (int(d.get("count", 0)), d.get("last_matched_at"))
        return out

    async def forget_counts(self, set_id: str) -> None:
        """A deleted set's counters."""
        await self.counters.delete_many({"_id": {"$gte": f"{set_id}|", "$lt": f"{set_id}|\uffff"}})

    # --- the version replicas compare to rebuild their matcher ----------------------------------

    async def bump_version(self) -> int:
        doc = await self.meta.find_one_and_update(
            {"_id": META_ID}, {"$inc": {"version": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return int(doc["version"]) if doc else 0

    async def version(self) -> int:
        doc = await self.meta.find_one({"_id": META_ID})
        return int(doc.get("version", 0)) if doc else 0

    async def counts(self) -> tuple[int, int, int]:
        """(sets, active sets, keywords) for the system status."""
        total = await self.c.count_documents({})
        active = await self.c.count_documents({"is_active": True})
        cursor = await self.c.aggregate(
            [
                {"$project": {"n": {"$size": {"$ifNull": ["$keywords", []]}}}},
                {"$group": {"_id": None, "n": {"$sum": "$n"}}},
            ]
        )
        rows = await cursor.to_list()
        return total, active, int(rows[0]["n"]) if rows else 0


async def once_each(collection: Any, ops: Sequence[UpdateOne]) -> None:
    """Apply idempotent upserts (filter: "not counted yet"). An op whose document exists and has
    counted it fails its upsert with a duplicate key: the "already done" answer. So does one that
    lost a race to create the document, so those are tried once more, when the document exists and
    a duplicate key can only mean "already done"."""
    pending = list(ops)
    for _ in range(2):
        try:
            await collection.bulk_write(pending, ordered=False)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(e.get("code") != 11000 for e in errors):
                raise
            pending = [pending[e["index"]] for e in errors]
