"""Knowledge items: add (with duplicates skipped per scope, and FAQ candidates accepted), remove,
clear, and the statistics of `get-knowledge-stats`.

Every change is written to the database, applied to this replica's index and recorded as a new
revision under the index cache's lock, then announced as `knowledge-changed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from tgm_contracts import Event
from tgm_contracts.commands.ai import (
    AddKnowledge,
    AddKnowledgeRequest,
    AddKnowledgeResult,
    ClearKnowledgeRequest,
    GetKnowledgeStats,
    GetKnowledgeStatsRequest,
    KnowledgeInput,
    KnowledgeStats,
    RemoveKnowledgeRequest,
    ScopeStats,
)
from tgm_contracts.events_ai import KnowledgeChanged
from tgm_runtime import NotFound
from tgm_runtime.routes import answers

from ..domain.index import KnowledgeIndex
from ..domain.text import fold
from ..ids import new_id, now
from .index_cache import IndexCache
from .store import KnowledgeStore
from .views import entry_text, item_view

Emit = Callable[[Event], Awaitable[bool]]
Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]


def dedupe_key(item: KnowledgeInput) -> str:
    """The normalised question (FAQ) or content that makes two items the same."""
    basis = item.question if item.type == "faq" else item.content
    return " ".join(fold(basis or "").split())[:500]


@dataclass
class KnowledgeItems:
    store: KnowledgeStore
    cache: IndexCache
    emit: Emit
    spawn: Spawn

    async def changed(
        self, scope: str | None, action: str, count: int, document_id: str | None = None
    ) -> None:
        await self.emit(KnowledgeChanged(scope=scope, action=action, count=count, document_id=document_id))

    # --- adding ------------------------------------------------------------------------------------

    @answers(AddKnowledge)
    async def add(self, req: AddKnowledgeRequest) -> AddKnowledgeResult:
        async with self.cache.lock:
            await self.cache.ensure_locked()
            return await self._add(req)

    async def _add(self, req: AddKnowledgeRequest) -> AddKnowledgeResult:
        inputs = req.inputs()
        accepted: list[str] = []
        scope = req.scope
        if req.candidate_ids is not None:
            cands = await self.store.get_candidates(req.candidate_ids)
            found = {c["_id"] for c in cands}
            missing = [c for c in req.candidate_ids if c not in found]
            if missing:
                raise NotFound(f"unknown FAQ candidates: {', '.join(missing[:10])}")
            for c in cands:
                inputs.append(
                    KnowledgeInput(
                        type="faq", question=c["question"], answer=c["answer"], source="learn-from-history"
                    )
                )
                accepted.append(c["_id"])
            scopes = {c["scope"] for c in cands}
            scope = scopes.pop() if len(scopes) == 1 else req.scope
        keys = [dedupe_key(i) for i in inputs]
        existing = await self.store.find_duplicates(scope, keys)
        ts = now()
        docs: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item, key in zip(inputs, keys, strict=True):
            if key in existing or key in seen:
                continue
            seen.add(key)
            docs.append(
                {
                    "_id": new_id("kn"),
                    "scope": scope,
                    "type": item.type,
                    "title": item.title,
                    "question": item.question if item.type == "faq" else None,
                    "answer": item.answer if item.type == "faq" else None,
                    "content": item.content if item.type == "text" else None,
                    "tags": item.tags,
                    "source": item.source,
                    "dedupe": key,
                    "created_at": ts,
                    "updated_at": ts,
                }
            )
        vectors = await self.cache.embed([entry_text(d) for d in docs])
        if vectors:
            for d, v in zip(docs, vectors, strict=True):
                d["vector"], d["vector_model"] = v, self.cache.embedders.model
        await self.store.insert_many(docs)
        self.cache.add(docs)
        if accepted:
            await self.store.mark_candidates(accepted, "accepted")
        if docs:
            await self.cache.changed()
            await self.changed(scope, "added", len(docs))
        return AddKnowledgeResult(added=[item_view(d) for d in docs], duplicates=len(inputs) - len(docs))

    # --- removing ----------------------------------------------------------------------------------

    async def remove(self, req: RemoveKnowledgeRequest) -> int:
        async with self.cache.lock:
            await self.cache.ensure_locked()
            return await self._remove(req)

    async def _remove(self, req: RemoveKnowledgeRequest) -> int:
        index = self.cache.index
        if req.document_id is not None:
            doc = await self.store.get_document(req.document_id)
            if doc is None:
                raise NotFound(f"document {req.document_id} not found")
            n = await self.store.delete_where({"document_id": req.document_id})
            await self.store.delete_documents({"_id": req.document_id})
            index.remove_where(lambda e: e.document_id == req.document_id)
            await self.cache.changed()
            await self.changed(doc["scope"], "document-removed", n, req.document_id)
            return n + 1
        ids = list(dict.fromkeys(req.ids or []))
        found = await self.store.get_many(ids)
        missing = sorted(set(ids) - {d["_id"] for d in found})
        if missing:
            raise NotFound(f"unknown knowledge ids: {', '.join(missing[:10])}")
        n = await self.store.delete_ids(ids)
        index.remove(ids)
        await self.cache.changed()
        for scope, count in Counter(d["scope"] for d in found).items():
            await self.changed(scope, "removed", count)
        return n

    async def clear(self, req: ClearKnowledgeRequest) -> int:
        async with self.cache.lock:
            await self.cache.ensure_locked()
            return await self._clear(req)

    async def _clear(self, req: ClearKnowledgeRequest) -> int:
        if req.scope is None and req.type is None:
            return await self._clear_all()
        # A scoped clear deletes through the (scope, type) and (scope, created_at) indexes: about
        # 0.25 ms a chunk on the embedded database server (bench/rag/clear.py), within the deadline.
        q: dict[str, Any] = {}
        if req.scope is not None:
            q["scope"] = req.scope
        if req.type is not None:
            q["type"] = req.type
        n = await self.store.delete_where(q)
        if req.type in (None, "document"):
            dq = {"scope": req.scope} if req.scope is not None else {}
            n += await self.store.delete_documents(dq)
        self.cache.index.remove_where(
            lambda e: (req.scope is None or e.scope == req.scope) and (req.type is None or e.type == req.type)
        )
        await self.cache.changed()
        await self.changed(req.scope, "cleared", n)
        return n

    async def _clear_all(self) -> int:
        """Everything: a new, empty generation of the collections in one write (store.py says why),
        this replica's index replaced by an empty one, the old generation dropped in the background.
        The items counted are the index's (current: the caller holds the lock after `ensure_locked`),
        as counting the collection costs a scan of it."""
        n = len(self.cache.index.entries) + await self.store.count_documents({})
        await self.store.new_generation()
        self.cache.index = KnowledgeIndex()
        await self.cache.changed()
        self.spawn(self.store.drop_retired(), "ai-knowledge-drop-retired")
        await self.changed(None, "cleared", n)
        return n

    # --- stats -------------------------------------------------------------------------------------

    @answers(GetKnowledgeStats)
    async def stats(self, req: GetKnowledgeStatsRequest) -> KnowledgeStats:
        await self.cache.ensure_current()
        match: dict[str, Any] = {"scope": req.scope} if req.scope else {}
        rows = await self.store.count_by(match)
        by_scope: dict[str, ScopeStats] = {}
        by_type: Counter[str] = Counter()
        for r in rows:
            scope, typ, n = r["_id"]["scope"], r["_id"]["type"], r["n"]
            s = by_scope.setdefault(scope, ScopeStats(scope=scope))
            if typ == "faq":
                s.faq += n
            elif typ == "text":
                s.text += n
            else:
                s.document_chunks += n
            by_type[typ] += n
        doc_states = await self.store.documents_by_state(match)
        for d in await self.store.list_documents(match, limit=100000):
            by_scope.setdefault(d["scope"], ScopeStats(scope=d["scope"])).documents += 1
        scopes = {req.scope} if req.scope else None
        index = self.cache.index
        entries = [e for e in index.entries.values() if scopes is None or e.scope in scopes]
        return KnowledgeStats(
            total_items=sum(by_type.values()),
            by_type={k: by_type.get(k, 0) for k in ("faq", "text", "document")},
            scopes=sorted(by_scope.values(), key=lambda s: s.scope),
            documents=sum(doc_states.values()),
            documents_by_state=doc_states,
            vocabulary=index.vocabulary(scopes),
            dense_vectors=sum(1 for e in entries if e.vector is not None),
            embedding_model=self.cache.embedders.model,
            pending_candidates=await self.store.count_candidates({"status": "pending", **match}),
            last_updated_at=await self.store.last_updated(match),
        )
