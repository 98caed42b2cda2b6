"""The knowledge collections (own database, PyMongo's async client): `knowledge` (FAQ, text and
document-chunk items), `documents`, `knowledge_meta` (the revision counter replicas compare to know
their in-memory index is current) and `faq_candidates`.

*Decision (full clear, issue 13):* items and documents live in one **generation** of collections,
named by the `rev` document of `knowledge_meta` (`generation`: "" is `knowledge`/`documents`, `g` is
`knowledge_gen_<g>`/`documents_gen_<g>`). `clear-knowledge` of everything does not delete document by
document (the embedded database server costs ~0.25–0.5 ms per deleted chunk, seconds for 9,000): it
makes an empty generation with the same indexes and names it in the `rev` document in one write, which
also bumps the revision. Items and documents leave together, so a crash leaves the old generation or
the new one, never half of each; every replica reads the generation with the revision (`revision()`,
`bump()`), which it checks before serving. The retired generation is listed under `retired` and
dropped in the background (`drop_retired`, also at start after a crash; it drops what exists of
every generation ever swapped out, so a collection re-created by a late write goes too). A replica writing with a
generation it has not re-read yet writes into the retired one, consistently (a document with its
chunks), as if its write came before the clear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from pymongo import IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import new_id, now

#: The collections that move together to a new generation on a full clear.
GENERATIONAL = ("knowledge", "documents")
#: How many swaps `generations` remembers (`drop_retired`); each clear of the knowledge base is one.
GENERATIONS_KEPT = 32


class KnowledgeStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.meta = db["knowledge_meta"]
        self.candidates = db["faq_candidates"]
        #: The generation of `knowledge`/`documents` in use, as last read (None: not read yet).
        self.generation: str | None = None

    @staticmethod
    def collection_name(base: str, generation: str) -> str:
        return f"{base}_gen_{generation}" if generation else base

    @property
    def items(self) -> AsyncCollection[Any]:
        return self.db[self.collection_name("knowledge", self.generation or "")]

    @property
    def documents(self) -> AsyncCollection[Any]:
        return self.db[self.collection_name("documents", self.generation or "")]

    async def known_generation(self) -> None:
        if self.generation is None:
            await self.revision()

    # --- revision ----------------------------------------------------------------------------------

    def _read_rev(self, doc: dict[str, Any] | None) -> int:
        self.generation = str((doc or {}).get("generation") or "")
        return int(doc["value"]) if doc else 0

    async def revision(self) -> int:
        return self._read_rev(await self.meta.find_one({"_id": "rev"}))

    async def bump(self) -> int:
        doc = await self.meta.find_one_and_update(
            {"_id": "rev"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return self._read_rev(doc)

    # --- full clear: a new generation --------------------------------------------------------------

    async def new_generation(self) -> None:
        """Put every item and document out of sight in one write (an empty generation with the same
        indexes becomes current, the revision is bumped). The old generation is listed under
        `retired` for `drop_retired`."""
        await self.revision()
        generation = new_id("g")
        for base in GENERATIONAL:
            current = self.db[self.collection_name(base, self.generation or "")]
            indexes = [
                IndexModel(list(spec["key"]), name=name)
                for name, spec in (await current.index_information()).items()
                if name != "_id_"
            ]
            fresh = self.db[self.collection_name(base, generation)]
            await self.db.create_collection(fresh.name)
            if indexes:
                await fresh.create_indexes(indexes)
        before = await self.meta.find_one_and_update(
            {"_id": "rev"},
            {
                "$inc": {"value": 1},
                "$set": {"generation": generation},
                "$push": {"generations": {"$each": [generation], "$slice": -GENERATIONS_KEPT}},
            },
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        old = str((before or {}).get("generation") or "")
        self.generation = generation
        await self.meta.update_one(
            {"_id": "rev"},
            {"$addToSet": {"retired": {"$each": [self.collection_name(b, old) for b in GENERATIONAL]}}},
        )

    @staticmethod
    def generation_of(name: str) -> str | None:
        """The generation a collection name belongs to ("" for `knowledge`/`documents`), or None for
        any other collection (`knowledge_meta` is none)."""
        for base in GENERATIONAL:
            if name == base:
                return ""
            if name.startswith(f"{base}_gen_"):
                return name[len(base) + 5 :]
        return None

    async def drop_retired(self) -> list[str]:
        """Drop the collections of every retired generation that exist; the names dropped.

        A generation is retired once another has been made current: the swap records each generation
        it makes current in `generations` in the same write, so every generation named there (and the
        first one, "") but not current is retired for good, while a generation being prepared by a
        clear that has not swapped yet is named nowhere and never touched. The collections are found
        by listing rather than from the `retired` list alone: a replica that wrote with a generation it
        had not re-read yet (module docstring) may have re-created one already dropped, and a crash
        mid-drop leaves names behind. The `retired` names read are crossed off afterwards.

        `generations` keeps the last `GENERATIONS_KEPT` swaps: a straggler would have to miss that
        many clears to re-create a collection this no longer recognises."""
        doc = await self.meta.find_one({"_id": "rev"}) or {}
        current = str(doc.get("generation") or "")
        listed = list(doc.get("retired", []))
        retired = {"", *map(str, doc.get("generations", []))}
        retired |= {g for g in map(self.generation_of, listed) if g is not None}
        retired.discard(current)
        dropped = []
        for name in sorted(await self.db.list_collection_names()):
            if self.generation_of(name) in retired:
                await self.db.drop_collection(name)
                dropped.append(name)
        if listed:
            await self.meta.update_one({"_id": "rev"}, {"$pullAll": {"retired": listed}})
        return dropped

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
        await self.known_generation()
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
        await self.known_generation()
        return await self.documents.count_documents(query)

    async def documents_by_state(self, match: dict[str, Any]) -> dict[str, int]:
        pipeline = [{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        return {d["_id"]: d["n"] async for d in await self.documents.aggregate(pipeline)}

    async def delete_documents(self, query: dict[str, Any]) -> int:
        res = await self.documents.delete_many(query)
        return res.deleted_count

    async def fail_stale(self, before: datetime) -> int:
        """Documents left `processing` by a replica that died: mark them failed."""
        await self.known_generation()
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
