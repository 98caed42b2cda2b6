"""The base of every repository of tg-session: one collection of the service's own database and
its common queries. Each domain's `store.py` holds its repositories; use cases go through them.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts.base import utcnow
from tgm_runtime.counts import cached_count
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

Doc = dict[str, Any]


def put_ops(q: Doc, field: str, ops: Doc) -> None:
    """Adds to a query `field`'s operators (`$gte`, `$in`, ...) whose value is given (truthy), if any is."""
    given = {op: v for op, v in ops.items() if v}
    if given:
        q[field] = given


class Repo:
    name: str

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.col = db[self.name]

    async def get(self, ident: str) -> Doc | None:
        return await self.col.find_one({"_id": ident})

    async def insert(self, doc: Doc) -> Doc:
        await self.col.insert_one(doc)
        return doc

    async def set(self, ident: str, fields: Doc, unset: list[str] | None = None) -> Doc | None:
        update: Doc = {"$set": {**fields, "updated_at": utcnow()}}
        if unset:
            update["$unset"] = {k: "" for k in unset}
        return await self.col.find_one_and_update(
            {"_id": ident}, update, return_document=ReturnDocument.AFTER
        )

    async def delete(self, ident: str) -> bool:
        return (await self.col.delete_one({"_id": ident})).deleted_count > 0

    async def find(
        self,
        query: Doc,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Doc | None = None,
    ) -> list[Doc]:
        """No offset: a page is a keyset query (`tgm_runtime.cursor.Keyset`), which reads no skipped rows."""
        cursor = self.col.find(query, projection)
        if sort:
            cursor = cursor.sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        return await cursor.to_list(None)

    async def newest_page(
        self, order: Keyset, query: Doc, cursor: str | None, limit: int
    ) -> tuple[list[Doc], str | None]:
        """A keyset page newest first by a time field (`order` = (time, _id) descending), read as
        time windows (`tgm_runtime.windowed`: the embedded database then reads only the page)."""
        return await read_newest(self.col, order, query, cursor, limit)

    async def count(self, query: Doc) -> int:
        """A list's `total`: counted once until this process writes the collection (`counts.py`)."""
        return await cached_count(self.col, query)


class LockedRepo(Repo):
    """Records one step at a time works on (a login in progress), across replicas."""

    async def lock(self, ident: str, seconds: float) -> Doc | None:
        now = utcnow()
        from datetime import timedelta

        return await self.col.find_one_and_update(
            {"_id": ident, "$or": [{"lock_until": None}, {"lock_until": {"$lt": now}}]},
            {"$set": {"lock_until": now + timedelta(seconds=seconds)}},
            return_document=ReturnDocument.AFTER,
        )

    async def unlock(self, ident: str) -> None:
        await self.col.update_one({"_id": ident}, {"$set": {"lock_until": None}})
