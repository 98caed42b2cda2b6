"""The knowledge collections (own database, PyMongo's async client): `knowledge` (FAQ, text and
document-chunk items), `documents`, `knowledge_meta` (the revision counter replicas compare to know
their in-memory index is current) and `faq_candidates`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import now


class KnowledgeStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.items = db["knowledge"]
        self.documents = db["documents"]
        self.meta = db["knowledge_meta"]
        self.candidates = db["faq_candidates"]

    # --- revision ----------------------------------------------------------------------------------

    async def revision(self) -> int:
        doc = await self.meta.find_one({"_id": "rev"})
        return int(doc["value"]) if doc else 0

    async def bump(self) -> int:
        doc = await self.meta.find_one_and_update(
            {"_id": "rev"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return int(doc["value"]) if doc else 0

    # --- items -------------------------------------------------------------------------------------

    async def insert_many(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.items.insert_many(docs, ordered=False)

    async def all_items(self, batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
        async for d in self.items.find({}, batch_size=batch):
            yield d

    async def get_many(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        return [d async for d in self.items.find({"_id": {"$in": list(ids)}})]

    async def find_duplicates(self, scope: str, keys: list[str]) -> set[str]:
        """Existing `dedupe` keys (normalised question or content) in a scope."""
        if not keys:
            return set()
        cur = self.items.find({"scope": scope, "dedupe": {"$in": keys}}, {"dedupe": 1})
        return {d["dedupe"] async for d in cur}

    async def delete_ids(self, ids: list[str]) -> int:
        res = await self.items.delete_many({"_id": {"$in": ids}})
        return res.deleted_count

    async def delete_where(self, query: dict[str, Any]) -> int:
        res = await self.items.delete_many(query)
        return res.deleted_count

    async def ids_where(self, query: dict[str, Any]) -> list[str]:
        return [d["_id"] async for d in self.items.find(query, {"_id": 1})]

    async def set_vectors(self, vectors: dict[str, list[float]], model: str | None) -> None:
        for item_id, vec in vectors.items():
            await self.items.update_one({"_id": item_id}, {"$set": {"vector": vec, "vector_model": model}})

    async def clear_vectors(self) -> None:
        await self.items.update_many(
            {"vector": {"$exists": True}}, {"$unset": {"vector": "", "vector_model": ""}}
        )

    async def count_by(self, match: dict[str, Any]) -> list[dict[str, Any]]:
        pipeline = [
            {"$match": match},
            {"$group": {"_id": {"scope": "$scope", "type": "$type"}, "n": {"$sum": 1}}},
        ]
        return [d async for d in await self.items.aggregate(pipeline)]

    async def count(self, query: dict[str, Any]) -> int:
        return await self.items.count_documents(query)

    async def last_updated(self, match: dict[str, Any]) -> datetime | None:
        doc = await self.items.find_one(match, sort=[("created_at", -1)], projection={"created_at": 1})
        return doc["created_at"] if doc else None

    # --- documents ---------------------------------------------------------------------------------

    async def insert_document(self, doc: dict[str, Any]) -> None:
        await self.documents.insert_one(doc)

    async def update_document(self, doc_id: str, changes: dict[str, Any]) -> None:
        await self.documents.update_one({"_id": doc_id}, {"$set": changes})

    async def get_document(self, doc_id: str) -> dict[str, Any] | None:
        return await self.documents.find_one({"_id": doc_id})

    async def list_documents(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        cur = self.documents.find(query).sort("created_at", -1).limit(limit)
        return [d async for d in cur]

    async def count_documents(self, query: dict[str, Any]) -> int:
        return await self.documents.count_documents(query)

    async def documents_by_state(self, match: dict[str, Any]) -> dict[str, int]:
        pipeline = [{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        return {d["_id"]: d["n"] async for d in await self.documents.aggregate(pipeline)}

    async def delete_documents(self, query: dict[str, Any]) -> int:
        res = await self.documents.delete_many(query)
        return res.deleted_count

    async def fail_stale(self, before: datetime) -> int:
        """Documents left `processing` by a replica that died: mark them failed."""
        res = await self.documents.update_many(
            {"state": {"$in": ["pending", "processing"]}, "updated_at": {"$lt": before}},
            {"$set": {"state": "failed", "error": "indexing was interrupted; add the document again"}},
        )
        return res.modified_count

    # --- FAQ candidates ----------------------------------------------------------------------------

    async def insert_candidates(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.candidates.insert_many(docs)

    async def get_candidates(self, ids: list[str]) -> list[dict[str, Any]]:
        return [d async for d in self.candidates.find({"_id": {"$in": ids}})]

    async def mark_candidates(self, ids: list[str], status: str) -> None:
        await self.candidates.update_many(
            {"_id": {"$in": ids}}, {"$set": {"status": status, "updated_at": now()}}
        )

    async def count_candidates(self, query: dict[str, Any]) -> int:
        return await self.candidates.count_documents(query)
