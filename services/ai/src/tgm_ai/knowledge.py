"""Knowledge use cases: add/remove/clear items, documents (read, chunk, index with progress), hybrid
search with citations, FAQ matching, stats, and FAQ candidates learned from history.

The in-memory `KnowledgeIndex` mirrors the `knowledge` collection. Every change bumps a revision in
the database; a replica whose revision differs reloads before it searches, so replicas stay in step
without talking to each other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tgm_contracts.commands import ai as C
from tgm_contracts.models.ai import Citation, DocumentStatus, FaqMatch, KnowledgeHit, KnowledgeItem

from . import documents as D
from .domain.chunking import chunk_text
from .domain.index import Entry, KnowledgeIndex, Scored
from .domain.text import fold, shorten, tokenize
from .repos import KnowledgeRepo, new_id, now

log = logging.getLogger("tgm.ai.knowledge")

Publish = Callable[[Any], Awaitable[None]]


class KnowledgeError(Exception):
    """Bad input a caller can fix (mapped to VALIDATION_ERROR by the handlers)."""


class NotFoundError(Exception):
    pass


class EmbedderSource:
    """Returns the embedder in force (or None) and its model name; set by the settings service."""

    def __init__(self) -> None:
        self.embedder: Any = None

    @property
    def model(self) -> str | None:
        return getattr(self.embedder, "model", None) if self.embedder else None


def _dedupe_key(item: C.KnowledgeInput) -> str:
    basis = item.question if item.type == "faq" else item.content
    return " ".join(fold(basis or "").split())[:500]


def _entry_text(doc: dict[str, Any]) -> str:
    if doc["type"] == "faq":
        return f"{doc.get('question') or ''}\n{doc.get('answer') or ''}"
    return "\n".join(x for x in (doc.get("title"), doc.get("content")) if x and doc["type"] == "text") or (
        doc.get("content") or ""
    )


def _entry(doc: dict[str, Any]) -> Entry:
    e = Entry(
        id=doc["_id"],
        scope=doc["scope"],
        type=doc["type"],
        text=_entry_text(doc),
        question=doc.get("question"),
        document_id=doc.get("document_id"),
        meta={
            k: doc.get(k)
            for k in ("title", "source", "chunk_index", "start", "end", "page", "answer", "content")
        },
    )
    return e


def item_view(doc: dict[str, Any]) -> KnowledgeItem:
    return KnowledgeItem(
        id=doc["_id"],
        scope=doc["scope"],
        type=doc["type"],
        title=doc.get("title"),
        question=doc.get("question"),
        answer=doc.get("answer"),
        content=doc.get("content"),
        tags=doc.get("tags") or [],
        source=doc.get("source"),
        document_id=doc.get("document_id"),
        chunk_index=doc.get("chunk_index"),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at"),
    )


def citation_of(e: Entry, score: float | None = None) -> Citation:
    m = e.meta
    snippet = m.get("answer") if e.type == "faq" else (m.get("content") or e.text)
    return Citation(
        knowledge_id=e.id,
        document_id=e.document_id,
        chunk_id=e.id if e.type == "document" else None,
        chunk_index=m.get("chunk_index"),
        start=m.get("start"),
        end=m.get("end"),
        page=m.get("page"),
        title=m.get("title") or (e.question if e.type == "faq" else None),
        source=m.get("source") or e.type,
        score=round(score, 6) if score is not None else None,
        snippet=shorten(snippet or "", 300) or None,
    )


def doc_status(d: dict[str, Any]) -> DocumentStatus:
    return DocumentStatus(
        document_id=d["_id"],
        scope=d["scope"],
        title=d.get("title"),
        filename=d.get("filename"),
        mime_type=d.get("mime_type"),
        source=d.get("source"),
        state=d["state"],
        progress=d.get("progress", 0.0),
        bytes=d.get("bytes", 0),
        pages=d.get("pages"),
        chars=d.get("chars", 0),
        chunks=d.get("chunks", 0),
        error=d.get("error"),
        created_at=d["created_at"],
        finished_at=d.get("finished_at"),
    )


class KnowledgeService:
    def __init__(
        self,
        repo: KnowledgeRepo,
        publish: Publish,
        embedders: EmbedderSource,
        retrieval: Callable[[], Awaitable[Any]],
        fetch: Callable[[str], Awaitable[D.RawDocument]] = D.fetch,
    ) -> None:
        self.repo = repo
        self.publish = publish
        self.embedders = embedders
        self.retrieval = retrieval  # -> RetrievalSettings (thresholds, chunking, rrf_k, top_k)
        self.fetch = fetch
        self.index = KnowledgeIndex()
        self._rev = -1
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- keeping the index current -----------------------------------------------------------------

    async def _load_locked(self) -> None:
        rev = await self.repo.revision()
        index = KnowledgeIndex()
        model = self.embedders.model
        async for doc in self.repo.all_items():
            e = _entry(doc)
            index.add(e)
            if doc.get("vector") and (model is None or doc.get("vector_model") == model):
                index.set_vector(e.id, doc["vector"])
        self.index = index
        self._rev = rev

    async def _ensure_locked(self) -> None:
        if await self.repo.revision() != self._rev:
            await self._load_locked()

    async def load(self) -> None:
        async with self._lock:
            await self._load_locked()

    async def ensure_current(self) -> None:
        """Reload when another replica changed the knowledge. Changes and reloads of this replica are
        serialised by one lock, so an in-flight change never lands in an index being replaced."""
        async with self._lock:
            await self._ensure_locked()

    async def _changed(self) -> None:
        rev = await self.repo.bump()
        # Our own change is already applied; anyone else's in between forces a reload.
        self._rev = rev if rev == self._rev + 1 else -1

    # --- adding ------------------------------------------------------------------------------------

    async def _embed(self, texts: list[str]) -> list[list[float]] | None:
        embedder = self.embedders.embedder
        if embedder is None or not texts:
            return None
        try:
            return await embedder.embed(texts)
        except Exception as exc:  # retrieval still works on BM25; the status shows missing vectors
            log.warning("embedding %d texts failed: %s", len(texts), exc)
            return None

    async def add(self, req: C.AddKnowledgeRequest) -> C.AddKnowledgeResult:
        async with self._lock:
            await self._ensure_locked()
            return await self._add(req)

    async def _add(self, req: C.AddKnowledgeRequest) -> C.AddKnowledgeResult:
        inputs = req.inputs()
        accepted: list[str] = []
        if req.candidate_ids is not None:
            cands = await self.repo.get_candidates(req.candidate_ids)
            found = {c["_id"] for c in cands}
            missing = [c for c in req.candidate_ids if c not in found]
            if missing:
                raise NotFoundError(f"unknown FAQ candidates: {', '.join(missing[:10])}")
            for c in cands:
                inputs.append(
                    C.KnowledgeInput(
                        type="faq", question=c["question"], answer=c["answer"], source="learn-from-history"
                    )
                )
                accepted.append(c["_id"])
        scope = req.scope
        if req.candidate_ids is not None:
            scopes = {c["scope"] for c in cands}
            scope = scopes.pop() if len(scopes) == 1 else req.scope
        keys = [_dedupe_key(i) for i in inputs]
        existing = await self.repo.find_duplicates(scope, keys)
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
        vectors = await self._embed([_entry_text(d) for d in docs])
        if vectors:
            for d, v in zip(docs, vectors, strict=True):
                d["vector"], d["vector_model"] = v, self.embedders.model
        await self.repo.insert_many(docs)
        for d in docs:
            self.index.add(_entry(d))
            if d.get("vector"):
                self.index.set_vector(d["_id"], d["vector"])
        if accepted:
            await self.repo.mark_candidates(accepted, "accepted")
        if docs:
            await self._changed()
            await self._event(scope, "added", len(docs))
        return C.AddKnowledgeResult(added=[item_view(d) for d in docs], duplicates=len(inputs) - len(docs))

    async def _event(
        self, scope: str | None, action: str, count: int, document_id: str | None = None
    ) -> None:
        from tgm_contracts.events_ai import KnowledgeChanged

        await self.publish(KnowledgeChanged(scope=scope, action=action, count=count, document_id=document_id))

    # --- removing ----------------------------------------------------------------------------------

    async def remove(self, req: C.RemoveKnowledgeRequest) -> int:
        async with self._lock:
            await self._ensure_locked()
            return await self._remove(req)

    async def _remove(self, req: C.RemoveKnowledgeRequest) -> int:
        if req.document_id is not None:
            doc = await self.repo.get_document(req.document_id)
            if doc is None:
                raise NotFoundError(f"document {req.document_id} not found")
            n = await self.repo.delete_where({"document_id": req.document_id})
            await self.repo.delete_documents({"_id": req.document_id})
            self.index.remove_where(lambda e: e.document_id == req.document_id)
            await self._changed()
            await self._event(doc["scope"], "document-removed", n, req.document_id)
            return n + 1
        ids = list(dict.fromkeys(req.ids or []))
        found = await self.repo.get_many(ids)
        missing = sorted(set(ids) - {d["_id"] for d in found})
        if missing:
            raise NotFoundError(f"unknown knowledge ids: {', '.join(missing[:10])}")
        n = await self.repo.delete_ids(ids)
        self.index.remove(ids)
        await self._changed()
        for scope, count in Counter(d["scope"] for d in found).items():
            await self._event(scope, "removed", count)
        return n

    async def clear(self, req: C.ClearKnowledgeRequest) -> int:
        async with self._lock:
            await self._ensure_locked()
            return await self._clear(req)

    async def _clear(self, req: C.ClearKnowledgeRequest) -> int:
        q: dict[str, Any] = {}
        if req.scope is not None:
            q["scope"] = req.scope
        if req.type is not None:
            q["type"] = req.type
        n = await self.repo.delete_where(q)
        if req.type in (None, "document"):
            dq = {"scope": req.scope} if req.scope is not None else {}
            n += await self.repo.delete_documents(dq)
        self.index.remove_where(
            lambda e: (req.scope is None or e.scope == req.scope) and (req.type is None or e.type == req.type)
        )
        await self._changed()
        await self._event(req.scope, "cleared", n)
        return n

    # --- searching ---------------------------------------------------------------------------------

    async def _query_vector(self, query: str) -> list[float] | None:
        if self.embedders.embedder is None or not self.index.dense_count():
            return None
        vecs = await self._embed([query])
        return vecs[0] if vecs else None

    async def faq(
        self,
        query: str,
        scopes: list[str],
        best: float | None = None,
        sugg: float | None = None,
        query_vector: list[float] | None = None,
    ) -> FaqMatch:
        rs = await self.retrieval()
        best_t = best if best is not None else rs.best_threshold
        sugg_t = sugg if sugg is not None else rs.sugg_threshold
        b, suggestions, fallback, _ = self.index.faq_match(
            query, scopes=scopes, best_threshold=best_t, sugg_threshold=sugg_t, query_vector=query_vector
        )
        return FaqMatch(
            best=self._faq_hit(b) if b else None,
            suggestions=[self._faq_hit(s) for s in suggestions],
            fallback=fallback,
            best_threshold=best_t,
            sugg_threshold=sugg_t,
        )

    def _faq_hit(self, s: Scored) -> KnowledgeHit:
        return KnowledgeHit(
            item=self._item(s.entry), score=s.score, match=s.score, citation=citation_of(s.entry, s.score)
        )

    def _item(self, e: Entry) -> KnowledgeItem:
        m = e.meta
        return KnowledgeItem(
            id=e.id,
            scope=e.scope,
            type=e.type,
            title=m.get("title"),
            question=e.question,
            answer=m.get("answer"),
            content=m.get("content"),
            source=m.get("source"),
            document_id=e.document_id,
            chunk_index=m.get("chunk_index"),
            created_at=now(),
        )

    async def search_knowledge(self, req: C.SearchKnowledgeRequest) -> C.KnowledgeSearchResult:
        t0 = time.perf_counter()
        await self.ensure_current()
        qv = await self._query_vector(req.query)
        types = [req.type] if req.type else (None if req.include_docs else ["faq", "text"])
        rs = await self.retrieval()
        _, scored = self.index.search(
            req.query, scopes=req.scopes, types=types, limit=req.limit, query_vector=qv, rrf_k=rs.rrf_k
        )
        faq = await self.faq(req.query, req.scopes, req.best_threshold, req.sugg_threshold, qv)
        matches = {h.item.id: h.match for h in ([faq.best] if faq.best else []) + faq.suggestions}
        hits = []
        docs = {d["_id"]: d for d in await self.repo.get_many([s.entry.id for s in scored])}
        for s in scored:
            d = docs.get(s.entry.id)
            item = item_view(d) if d else self._item(s.entry)
            hits.append(
                KnowledgeHit(
                    item=item,
                    score=round(s.score, 6),
                    bm25_score=s.bm25,
                    dense_score=s.dense,
                    match=matches.get(s.entry.id),
                    citation=citation_of(s.entry, s.score),
                )
            )
        return C.KnowledgeSearchResult(
            query=req.query, hits=hits, faq=faq, took_ms=round((time.perf_counter() - t0) * 1000, 3)
        )

    async def rag_search(self, req: C.RagSearchRequest) -> C.RagSearchResult:
        t0 = time.perf_counter()
        await self.ensure_current()
        qv = await self._query_vector(req.query) if req.mode != "bm25" else None
        rs = await self.retrieval()
        mode, scored = self.index.search(
            req.query,
            scopes=req.scopes,
            types=[req.knowledge_type] if req.knowledge_type else None,
            document_id=req.document_id,
            limit=req.limit,
            mode=req.mode,
            query_vector=qv,
            rrf_k=rs.rrf_k,
        )
        hits = [
            C.RagHit(
                knowledge_id=s.entry.id,
                type=s.entry.type,
                text=self.passage_text(s.entry),
                score=round(s.score, 6),
                bm25_score=s.bm25,
                dense_score=s.dense,
                citation=citation_of(s.entry, s.score),
            )
            for s in scored
            if s.score >= req.min_score
        ]
        return C.RagSearchResult(
            query=req.query, mode=mode, hits=hits, took_ms=round((time.perf_counter() - t0) * 1000, 3)
        )

    @staticmethod
    def passage_text(e: Entry) -> str:
        if e.type == "faq":
            return f"{e.question}\n{e.meta.get('answer') or ''}".strip()
        return e.meta.get("content") or e.text

    async def retrieve(
        self, query: str, scopes: list[str], limit: int
    ) -> tuple[FaqMatch, list[Scored], bool]:
        """For generation: FAQ outcome, top passages, and whether dense vectors took part."""
        await self.ensure_current()
        qv = await self._query_vector(query)
        rs = await self.retrieval()
        faq = await self.faq(query, scopes, query_vector=qv)
        mode, scored = self.index.search(query, scopes=scopes, limit=limit, query_vector=qv, rrf_k=rs.rrf_k)
        return faq, scored, mode == "hybrid"

    # --- stats -------------------------------------------------------------------------------------

    async def stats(self, req: C.GetKnowledgeStatsRequest) -> C.KnowledgeStats:
        await self.ensure_current()
        match: dict[str, Any] = {"scope": req.scope} if req.scope else {}
        rows = await self.repo.count_by(match)
        by_scope: dict[str, C.ScopeStats] = {}
        by_type: Counter[str] = Counter()
        for r in rows:
            scope, typ, n = r["_id"]["scope"], r["_id"]["type"], r["n"]
            s = by_scope.setdefault(scope, C.ScopeStats(scope=scope))
            if typ == "faq":
                s.faq += n
            elif typ == "text":
                s.text += n
            else:
                s.document_chunks += n
            by_type[typ] += n
        doc_states = await self.repo.documents_by_state(match)
        for d in await self.repo.list_documents(match, limit=100000):
            by_scope.setdefault(d["scope"], C.ScopeStats(scope=d["scope"])).documents += 1
        scopes = {req.scope} if req.scope else None
        entries = [e for e in self.index.entries.values() if scopes is None or e.scope in scopes]
        return C.KnowledgeStats(
            total_items=sum(by_type.values()),
            by_type={k: by_type.get(k, 0) for k in ("faq", "text", "document")},
            scopes=sorted(by_scope.values(), key=lambda s: s.scope),
            documents=sum(doc_states.values()),
            documents_by_state=doc_states,
            vocabulary=self.index.vocabulary(scopes),
            dense_vectors=sum(1 for e in entries if e.vector is not None),
            embedding_model=self.embedders.model,
            pending_candidates=await self.repo.count_candidates({"status": "pending", **match}),
            last_updated_at=await self.repo.last_updated(match),
        )

    # --- documents ---------------------------------------------------------------------------------

    async def add_document(self, req: C.RagAddDocumentRequest) -> DocumentStatus:
        rs = await self.retrieval()
        size = req.chunk_size or rs.chunk_size
        overlap = req.chunk_overlap if req.chunk_overlap is not None else min(rs.chunk_overlap, size // 2)
        if overlap >= size:
            raise KnowledgeError("chunkOverlap must be smaller than chunkSize")
        doc_id = new_id("doc")
        ts = now()
        try:
            if req.url is not None:
                raw = await self.fetch(req.url)
            elif req.content_base64 is not None:
                raw = D.decode_upload(req.content_base64, req.filename, req.mime_type)
            else:
                raw = D.RawDocument(
                    (req.text or "").encode(), req.filename or "text.txt", "text/plain", "text"
                )
            if req.filename:
                raw.filename = req.filename
            if req.mime_type:
                raw.mime_type = req.mime_type
        except D.DocumentError as exc:
            raise KnowledgeError(str(exc)) from None
        status: dict[str, Any] = {
            "_id": doc_id,
            "scope": req.scope,
            "title": req.title,
            "filename": raw.filename,
            "mime_type": raw.mime_type,
            "source": raw.source,
            "state": "processing",
            "progress": 0.0,
            "bytes": len(raw.data),
            "pages": None,
            "chars": 0,
            "chunks": 0,
            "error": None,
            "created_at": ts,
            "updated_at": ts,
            "tags": req.tags,
        }
        progress = _Progress(self, status)
        await progress.report("reading", 0.02, force=True)
        # Extraction first: a file that cannot be read is refused before anything is stored.
        try:
            extracted = await progress.run_in_thread("extracting", 0.02, 0.6, lambda cb: D.extract(raw, cb))
        except D.DocumentError as exc:
            await progress.report("failed", 1.0, error=str(exc), force=True, state="failed")
            raise KnowledgeError(f"cannot read the document: {exc}") from None
        status.update(
            pages=extracted.pages,
            chars=len(extracted.text),
            title=req.title or extracted.title or raw.filename,
            mime_type=raw.mime_type or extracted.kind,
        )
        chunks = chunk_text(extracted.text, size, overlap, extracted.page_starts or None)
        if not chunks:
            await progress.report("failed", 1.0, error="no text", force=True, state="failed")
            raise KnowledgeError("cannot read the document: no text could be extracted")
        await self.repo.insert_document(dict(status))
        if req.wait:
            await self._index_document(status, chunks, progress)
        else:
            task = asyncio.create_task(self._index_document(status, chunks, progress))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return doc_status(status)

    async def _index_document(self, status: dict[str, Any], chunks: list[Any], progress: _Progress) -> None:
        doc_id = status["_id"]
        try:
            await progress.report("chunking", 0.62, force=True)
            ts = now()
            docs = [
                {
                    "_id": f"{doc_id}:{c.index}",
                    "scope": status["scope"],
                    "type": "document",
                    "title": status["title"],
                    "content": c.text,
                    "source": status["source"]
                    if status["source"] not in ("upload", "text")
                    else status["filename"],
                    "document_id": doc_id,
                    "chunk_index": c.index,
                    "start": c.start,
                    "end": c.end,
                    "page": c.page,
                    "tags": status.get("tags") or [],
                    "created_at": ts,
                    "updated_at": ts,
                }
                for c in chunks
            ]
            if self.embedders.embedder is not None:
                for i in range(0, len(docs), 64):
                    batch = docs[i : i + 64]
                    vecs = await self._embed([d["content"] for d in batch])
                    for d, v in zip(batch, vecs or [], strict=False):
                        d["vector"], d["vector_model"] = v, self.embedders.model
                    await progress.report("embedding", 0.62 + 0.18 * min(1.0, (i + 64) / len(docs)))
            batch_size = 200
            for i in range(0, len(docs), batch_size):
                batch = docs[i : i + batch_size]
                async with self._lock:  # batch by batch, so searches interleave with a big document
                    await self.repo.insert_many(batch)
                    for d in batch:
                        self.index.add(_entry(d))
                        if d.get("vector"):
                            self.index.set_vector(d["_id"], d["vector"])
                await progress.report("indexing", 0.8 + 0.19 * min(1.0, (i + batch_size) / len(docs)))
                await asyncio.sleep(0)  # let other handlers run while a big document indexes
            status.update(chunks=len(docs), finished_at=now())
            async with self._lock:
                await self._changed()
            await progress.report("done", 1.0, force=True, state="ready")
            await self._event(status["scope"], "document-added", len(docs), doc_id)
        except Exception as exc:
            log.exception("indexing document %s failed", doc_id)
            await self.repo.delete_where({"document_id": doc_id})
            self.index.remove_where(lambda e: e.document_id == doc_id)
            await progress.report(
                "failed", 1.0, error=f"indexing failed ({type(exc).__name__})", force=True, state="failed"
            )
            raise

    async def status(self, req: C.RagGetStatusRequest, embedding_provider: str) -> C.RagStatus:
        await self.ensure_current()
        q: dict[str, Any] = {}
        if req.document_id:
            q["_id"] = req.document_id
        if req.scope:
            q["scope"] = req.scope
        if req.state:
            q["state"] = req.state
        docs = await self.repo.list_documents(q, req.limit)
        if req.document_id and not docs:
            raise NotFoundError(f"document {req.document_id} not found")
        total_chunks = await self.repo.count(
            {"type": "document", **({"scope": req.scope} if req.scope else {})}
        )
        return C.RagStatus(
            documents=[doc_status(d) for d in docs],
            total_documents=await self.repo.count_documents({"scope": req.scope} if req.scope else {}),
            total_chunks=total_chunks,
            embedding_provider=embedding_provider,
            embedding_model=self.embedders.model,
            dense_ready=self.embedders.embedder is not None and self.index.dense_count() > 0,
        )

    async def fail_stale(self) -> None:
        await self.repo.fail_stale(now() - timedelta(minutes=10))

    async def reembed(self) -> int:
        """Give every item a vector from the embedder in force (after the embedding provider changed)."""
        await self.ensure_current()
        if self.embedders.embedder is None:
            self.index.clear_vectors()
            return 0
        ids = [e.id for e in self.index.entries.values()]
        done = 0
        for i in range(0, len(ids), 64):
            batch = [self.index.entries[x] for x in ids[i : i + 64] if x in self.index.entries]
            vecs = await self._embed([self.passage_text(e) for e in batch])
            if not vecs:
                break
            await self.repo.set_vectors(
                {e.id: v for e, v in zip(batch, vecs, strict=True)}, self.embedders.model
            )
            for e, v in zip(batch, vecs, strict=True):
                self.index.set_vector(e.id, v)
            done += len(batch)
        return done

    async def learn(self, req: C.LearnFromHistoryRequest) -> C.LearnFromHistoryResult:
        """Questions users asked with the answers they got, grouped by similarity: FAQ candidates for review."""
        from .domain.analysis import _QUESTION, intent
        from .domain.index import Bm25

        await self.ensure_current()
        pairs: list[tuple[str, str]] = []
        for conv in req.conversations:
            turns = [(t.role, t.content.strip()) for t in conv.messages if t.role != "system"]
            for i, (role, text) in enumerate(turns):
                if role != "user":
                    continue
                if not (
                    _QUESTION.search(fold(text)) or intent(text)[0] in ("pricing", "purchase", "support")
                ):
                    continue
                replies: list[str] = []
                for r2, t2 in turns[i + 1 :]:
                    if r2 != "assistant":
                        break
                    replies.append(t2)
                if replies:
                    pairs.append((text, " ".join(replies)))
        qterms = [Counter(tokenize(q)) for q, _ in pairs]
        bm = Bm25()
        for i, t in enumerate(qterms):
            bm.add(str(i), t)
        sim_index = KnowledgeIndex()
        sim_index.bm25 = bm
        clusters: list[list[int]] = []
        for i, t in enumerate(qterms):
            if not t:
                continue
            best, best_sim = None, 0.0
            for c in clusters:
                sim = sim_index.lexical_similarity(t, qterms[c[0]])
                if sim > best_sim:
                    best, best_sim = c, sim
            if best is not None and best_sim >= 0.5:
                best.append(i)
            else:
                clusters.append([i])
        rs = await self.retrieval()
        ts = now()
        docs: list[dict[str, Any]] = []
        for c in sorted(clusters, key=len, reverse=True):
            if len(c) < req.min_occurrences:
                continue
            phrasings = Counter(" ".join(pairs[i][0].split()) for i in c)
            question = min(phrasings, key=lambda q: (-phrasings[q], len(q)))
            answers = Counter(" ".join(pairs[i][1].split()) for i in c)
            answer = max(answers, key=lambda a: (answers[a], len(a)))
            consistent = answers[answer] / len(c)
            b, _, _, _ = self.index.faq_match(
                question,
                scopes=[req.scope],
                best_threshold=rs.best_threshold,
                sugg_threshold=rs.sugg_threshold,
            )
            docs.append(
                {
                    "_id": new_id("cand"),
                    "scope": req.scope,
                    "question": question,
                    "answer": shorten(answer, 4000),
                    "occurrences": len(c),
                    "confidence": round(min(0.95, 0.35 + 0.1 * (len(c) - 1) + 0.3 * consistent), 3),
                    "examples": [q for q in phrasings if q != question][:5],
                    "status": "pending",
                    "already_known": b is not None,
                    "created_at": ts,
                }
            )
            if len(docs) >= req.max_candidates:
                break
        await self.repo.insert_candidates(docs)
        return C.LearnFromHistoryResult(
            candidates=[C.FaqCandidate.model_validate({**d, "id": d["_id"]}) for d in docs],
            conversations=len(req.conversations),
            question_turns=len(pairs),
        )

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()


class _Progress:
    """Document status in the database plus `rag-document-progress` events, throttled."""

    def __init__(self, svc: KnowledgeService, status: dict[str, Any]) -> None:
        self.svc = svc
        self.status = status
        self._last_t = 0.0
        self._last_p = -1.0
        self.stored = False

    async def report(
        self,
        stage: str,
        fraction: float,
        *,
        force: bool = False,
        error: str | None = None,
        state: str | None = None,
    ) -> None:
        from tgm_contracts.events_ai import RagDocumentProgress

        t = time.monotonic()
        if not force and t - self._last_t < 0.5 and fraction - self._last_p < 0.1:
            return
        self._last_t, self._last_p = t, fraction
        self.status.update(progress=round(min(1.0, fraction), 3), updated_at_stage=stage, updated_at=now())
        if state:
            self.status["state"] = state
        if error:
            self.status["error"] = error
        if state in ("ready", "failed"):
            self.status["finished_at"] = self.status.get("finished_at") or now()
        if await self.svc.repo.get_document(self.status["_id"]) is not None:
            await self.svc.repo.update_document(
                self.status["_id"], {k: v for k, v in self.status.items() if k != "_id"}
            )
        try:
            await self.svc.publish(
                RagDocumentProgress(
                    document_id=self.status["_id"],
                    scope=self.status["scope"],
                    state=self.status["state"],
                    progress=self.status["progress"],
                    stage=stage,
                    chunks=self.status.get("chunks", 0),
                    error=error,
                )
            )
        except Exception as exc:  # progress is informative; never fail indexing for it
            log.debug("progress event not published: %s", exc)

    async def run_in_thread(
        self, stage: str, start: float, end: float, fn: Callable[[Callable[[float], None]], Any]
    ) -> Any:
        latest = [0.0]
        task = asyncio.create_task(asyncio.to_thread(fn, lambda f: latest.__setitem__(0, f)))
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            await self.report(stage, start + (end - start) * latest[0])
        return task.result()
