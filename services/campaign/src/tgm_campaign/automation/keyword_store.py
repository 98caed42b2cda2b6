"""The `keyword_sets` collection and the `automation_meta` version doc replicas rebuild their matcher by.

A set is one document with its keywords embedded (`store.py` lists the shape). Writes that replace
the keyword list (save, add-keyword, remove-keyword) are compare-and-set on `rev`; the match counters
(`count`) bump `rev` too, so a save that read the counts before a match was counted retries instead
of writing the old count back: the counters stay exact under any interleaving.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "keyword_sets": [
        ([("name_key", ASCENDING)], {"unique": True, "name": "name_unique"}),
        ([("is_active", ASCENDING)], {"name": "active"}),
    ],
}

META_ID = "keyword_sets"


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

    async def count(self, set_id: str, keyword_ids: Sequence[str | None], at: datetime) -> None:
        """One message matched the set: `total_matches` +1, and each keyword +1 per occurrence in
        `keyword_ids` (None: a hit without a keyword id, e.g. a legacy one; counted on the set only)."""
        inc: dict[str, Any] = {"total_matches": 1, "rev": 1}
        latest: dict[str, Any] = {"last_matched_at": at}
        filters: list[dict[str, Any]] = []
        for i, (kid, n) in enumerate(Counter(k for k in keyword_ids if k).items()):
            inc[f"keywords.$[k{i}].match_count"] = n
            latest[f"keywords.$[k{i}].last_matched_at"] = at
            filters.append({f"k{i}.id": kid})
        await self.c.update_one({"_id": set_id}, {"$inc": inc, "$max": latest}, array_filters=filters or None)

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
