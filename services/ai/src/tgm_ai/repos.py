"""MongoDB repositories of the ai service (its own database, through PyMongo's async client).

Collections: `knowledge` (FAQ, text and document-chunk items), `documents`, `knowledge_meta` (the
revision counter replicas compare to know their in-memory index is current), `faq_candidates`,
`memories`, `strategies`, `strategy_assignments`, `ai_settings`, `usage`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase


def now() -> datetime:
    """UTC now at millisecond precision: what MongoDB stores, so values read back compare equal."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


class KnowledgeRepo:
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


class MemoryRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["memories"]

    @staticmethod
    def key(account_id: str, user_id: str) -> str:
        return f"{account_id}\x1f{user_id}"

    async def get(self, account_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": self.key(account_id, user_id)})

    async def put(self, doc: dict[str, Any]) -> None:
        doc["_id"] = self.key(doc["account_id"], doc["user_id"])
        await self.col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def delete(self, account_id: str, user_id: str | None) -> int:
        q: dict[str, Any] = {"account_id": account_id}
        if user_id is not None:
            q["user_id"] = user_id
        res = await self.col.delete_many(q)
        return res.deleted_count

    async def count(self) -> int:
        return await self.col.count_documents({})


class StrategyRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["strategies"]
        self.assign = db["strategy_assignments"]

    async def all(self) -> list[dict[str, Any]]:
        return [d async for d in self.col.find({}).sort("created_at", 1)]

    async def get(self, strategy_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": strategy_id})

    async def default(self) -> dict[str, Any] | None:
        return await self.col.find_one({"is_default": True})

    async def by_name(self, name: str) -> dict[str, Any] | None:
        return await self.col.find_one({"name": name})

    async def put(self, doc: dict[str, Any]) -> None:
        if doc.get("is_default"):
            await self.col.update_many({"_id": {"$ne": doc["_id"]}}, {"$set": {"is_default": False}})
        await self.col.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def assignment(self, account_id: str) -> str | None:
        doc = await self.assign.find_one({"_id": account_id})
        return doc["strategy_id"] if doc else None

    async def assignments(self, account_ids: list[str]) -> dict[str, str]:
        return {d["_id"]: d["strategy_id"] async for d in self.assign.find({"_id": {"$in": account_ids}})}

    async def accounts_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async for d in self.assign.find({}).sort("_id", 1):
            out.setdefault(d["strategy_id"], []).append(d["_id"])
        return out

    async def apply(self, strategy_id: str | None, account_ids: list[str]) -> None:
        if strategy_id is None:
            await self.assign.delete_many({"_id": {"$in": account_ids}})
            return
        ts = now()
        for a in account_ids:
            await self.assign.replace_one(
                {"_id": a}, {"_id": a, "strategy_id": strategy_id, "updated_at": ts}, upsert=True
            )

    async def count(self) -> int:
        return await self.col.count_documents({})


class SettingsRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["ai_settings"]

    async def get(self) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": "settings"})

    async def put(self, doc: dict[str, Any], expected_version: int | None) -> bool:
        """Write if the stored version is `expected_version` (None = unconditionally)."""
        doc["_id"] = "settings"
        if expected_version is None:
            await self.col.replace_one({"_id": "settings"}, doc, upsert=True)
            return True
        if expected_version == 0:
            current = await self.get()
            if current is not None and int(current.get("version", 0)) != 0:
                return False
            await self.col.replace_one({"_id": "settings"}, doc, upsert=True)
            return True
        res = await self.col.replace_one({"_id": "settings", "version": expected_version}, doc)
        return res.matched_count == 1


class UsageRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["usage"]

    async def record(
        self,
        day: date,
        provider: str,
        model: str,
        *,
        ok: bool,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
    ) -> None:
        key = f"{day.isoformat()}|{provider}|{model}"
        await self.col.update_one(
            {"_id": key},
            {
                "$setOnInsert": {"day": day.isoformat(), "provider": provider, "model": model},
                "$inc": {
                    "calls": 1,
                    "errors": 0 if ok else 1,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "latency_ms_total": latency_ms,
                },
                "$max": {"latency_ms_max": latency_ms},
            },
            upsert=True,
        )

    async def rows(
        self, since: date, until: date, provider: str | None, model: str | None
    ) -> list[dict[str, Any]]:
        q: dict[str, Any] = {"day": {"$gte": since.isoformat(), "$lte": until.isoformat()}}
        if provider:
            q["provider"] = provider
        if model:
            q["model"] = model
        return [d async for d in self.col.find(q).sort([("day", 1), ("provider", 1), ("model", 1)])]
