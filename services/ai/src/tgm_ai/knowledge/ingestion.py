"""Documents into knowledge: read (URL, base64, a file streamed to the gateway's uploads, or text), extract in a worker thread with
progress, chunk, embed, index batch by batch; `rag-get-status`; documents a dead replica left half done.

Extraction comes first: a file that cannot be read is refused (`VALIDATION_ERROR`) before anything is
stored. `wait: false` answers once the file is read and indexes in the background (`runtime.spawn`).
Large documents become searchable by BM25 as soon as they are `ready` and gain their vectors later.
Progress goes to the document's status and out as throttled `rag-document-progress` events.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from tgm_contracts import Event
from tgm_contracts.commands.ai import (
    RagAddDocument,
    RagAddDocumentRequest,
    RagGetStatus,
    RagGetStatusRequest,
    RagStatus,
)
from tgm_contracts.events_ai import RagDocumentProgress
from tgm_contracts.models.ai import DocumentStatus
from tgm_runtime import Invalid, NotFound
from tgm_runtime.routes import answers

from ..domain.chunking import Chunk, chunk_text
from ..ids import new_id, now
from ..providers.service import ProviderService
from . import documents
from .documents import DocumentError, RawDocument
from .index_cache import EMBED_BATCH, IndexCache
from .service import KnowledgeItems
from .store import KnowledgeStore
from .views import doc_status

log = logging.getLogger("tgm.ai.knowledge")

T = TypeVar("T")
Fetch = Callable[[str], Awaitable[RawDocument]]
#: `await read_upload(object_name, mime_type)`: a file streamed to the gateway's uploads (adapters.py).
ReadUpload = Callable[[str, str | None], Awaitable[RawDocument]]
Spawn = Callable[[Coroutine[Any, Any, None], str], object]
#: Documents with more chunks than this are indexed first and embedded in the background.
EMBED_LATER_CHUNKS = 256
#: Chunks inserted and indexed per lock hold, so searches interleave with a big document.
INDEX_BATCH = 200


@dataclass
class DocumentIngestion:
    store: KnowledgeStore
    cache: IndexCache
    items: KnowledgeItems
    providers: ProviderService
    fetch: Fetch
    spawn: Spawn
    read_upload: ReadUpload

    async def _read(self, req: RagAddDocumentRequest) -> RawDocument:
        try:
            if req.url is not None:
                raw = await self.fetch(req.url)
            elif req.content_base64 is not None:
                raw = documents.decode_upload(req.content_base64, req.filename, req.mime_type)
            elif req.upload is not None:
                raw = await self.read_upload(req.upload, req.mime_type)
            else:
                raw = RawDocument((req.text or "").encode(), req.filename or "text.txt", "text/plain", "text")
        except DocumentError as exc:
            raise Invalid(str(exc)) from None
        if req.filename:
            raw.filename = req.filename
        if req.mime_type:
            raw.mime_type = req.mime_type
        return raw

    @answers(RagAddDocument)
    async def add_document(self, req: RagAddDocumentRequest) -> DocumentStatus:
        rs = await self.providers.retrieval()
        size = req.chunk_size or rs.chunk_size
        overlap = req.chunk_overlap if req.chunk_overlap is not None else min(rs.chunk_overlap, size // 2)
        if overlap >= size:
            raise Invalid("chunkOverlap must be smaller than chunkSize")
        doc_id = new_id("doc")
        ts = now()
        raw = await self._read(req)
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
        progress = Progress(self.store, self.items.emit, status)
        await progress.report("reading", 0.02, force=True)
        # Extraction first: a file that cannot be read is refused before anything is stored.
        try:
            extracted = await progress.run_in_thread(
                "extracting", 0.02, 0.6, lambda cb: documents.extract(raw, cb)
            )
        except DocumentError as exc:
            await progress.report("failed", 1.0, error=str(exc), force=True, state="failed")
            raise Invalid(f"cannot read the document: {exc}") from None
        status.update(
            pages=extracted.pages,
            chars=len(extracted.text),
            title=req.title or extracted.title or raw.filename,
            mime_type=raw.mime_type or extracted.kind,
        )
        chunks = chunk_text(extracted.text, size, overlap, extracted.page_starts or None)
        if not chunks:
            await progress.report("failed", 1.0, error="no text", force=True, state="failed")
            raise Invalid("cannot read the document: no text could be extracted")
        await self.store.insert_document(dict(status))
        if req.wait:
            await self._index_document(status, chunks, progress)
        else:
            self.spawn(self._index_document(status, chunks, progress), f"ai-index-document-{doc_id}")
        return doc_status(status)

    async def _index_document(self, status: dict[str, Any], chunks: list[Chunk], progress: Progress) -> None:
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
            # Small documents get their vectors before they are searchable; large ones become
            # searchable by BM25 at once and gain vectors in the background (embedding is the slow part).
            embedding = self.cache.embedders.embedder is not None
            embed_later = embedding and len(docs) > EMBED_LATER_CHUNKS
            if embedding and not embed_later:
                for i in range(0, len(docs), EMBED_BATCH):
                    batch = docs[i : i + EMBED_BATCH]
                    vecs = await self.cache.embed([d["content"] for d in batch])
                    for d, v in zip(batch, vecs or [], strict=False):
                        d["vector"], d["vector_model"] = v, self.cache.embedders.model
                    await progress.report("embedding", 0.62 + 0.18 * min(1.0, (i + EMBED_BATCH) / len(docs)))
            for i in range(0, len(docs), INDEX_BATCH):
                batch = docs[i : i + INDEX_BATCH]
                async with self.cache.lock:  # batch by batch, so searches interleave with a big document
                    await self.store.insert_many(batch)
                    self.cache.add(batch)
                await progress.report("indexing", 0.8 + 0.19 * min(1.0, (i + INDEX_BATCH) / len(docs)))
                await asyncio.sleep(0)  # let other handlers run while a big document indexes
            status.update(chunks=len(docs), finished_at=now())
            async with self.cache.lock:
                await self.cache.changed()
            await progress.report("done", 1.0, force=True, state="ready")
            if embed_later:
                self.spawn(self._embed_document(doc_id), f"ai-embed-document-{doc_id}")
            await self.items.changed(status["scope"], "document-added", len(docs), doc_id)
        except Exception as exc:
            log.exception("indexing document %s failed", doc_id)
            await self.store.delete_where({"document_id": doc_id})
            self.cache.index.remove_where(lambda e: e.document_id == doc_id)
            await progress.report(
                "failed", 1.0, error=f"indexing failed ({type(exc).__name__})", force=True, state="failed"
            )
            raise

    async def _embed_document(self, doc_id: str) -> None:
        ids = [e.id for e in self.cache.document_entries(doc_id) if e.vector is None]
        try:
            await self.cache.embed_entries(ids)
        except Exception:
            log.exception("embedding document %s failed; it stays searchable by BM25", doc_id)

    @answers(RagGetStatus)
    async def status(self, req: RagGetStatusRequest) -> RagStatus:
        embedding_provider = (await self.providers.get()).embedding_provider
        await self.cache.ensure_current()
        q: dict[str, Any] = {}
        if req.document_id:
            q["_id"] = req.document_id
        if req.scope:
            q["scope"] = req.scope
        if req.state:
            q["state"] = req.state
        docs = await self.store.list_documents(q, req.limit)
        if req.document_id and not docs:
            raise NotFound(f"document {req.document_id} not found")
        total_chunks = await self.store.count(
            {"type": "document", **({"scope": req.scope} if req.scope else {})}
        )
        return RagStatus(
            documents=[doc_status(d) for d in docs],
            total_documents=await self.store.count_documents({"scope": req.scope} if req.scope else {}),
            total_chunks=total_chunks,
            embedding_provider=embedding_provider,
            embedding_model=self.cache.embedders.model,
            dense_ready=self.cache.embedders.embedder is not None and self.cache.index.dense_count() > 0,
        )

    async def fail_stale(self) -> None:
        """Documents left `processing` by a replica that died (at start: nothing indexes them any more)."""
        await self.store.fail_stale(now() - timedelta(minutes=10))


class Progress:
    """Document status in the database plus `rag-document-progress` events, throttled."""

    def __init__(
        self, store: KnowledgeStore, emit: Callable[[Event], Awaitable[bool]], status: dict[str, Any]
    ) -> None:
        self.store = store
        self.emit = emit
        self.status = status
        self._last_t = 0.0
        self._last_p = -1.0

    async def report(
        self,
        stage: str,
        fraction: float,
        *,
        force: bool = False,
        error: str | None = None,
        state: str | None = None,
    ) -> None:
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
        if await self.store.get_document(self.status["_id"]) is not None:
            await self.store.update_document(
                self.status["_id"], {k: v for k, v in self.status.items() if k != "_id"}
            )
        # Progress is informative: a lost event never fails indexing (emit logs and counts it).
        await self.emit(
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

    async def run_in_thread(
        self, stage: str, start: float, end: float, fn: Callable[[Callable[[float], None]], T]
    ) -> T:
        """`fn(progress)` in a worker thread, reporting the fraction it gives every half second.

        What `asyncio.to_thread` does (the executor, the caller's context), but as a future this call
        polls and awaits itself: no task outlives the call, and `fn`'s exception comes out as it is."""
        latest = [0.0]
        context = contextvars.copy_context()
        work = asyncio.get_running_loop().run_in_executor(
            None, context.run, fn, lambda f: latest.__setitem__(0, f)
        )
        while not work.done():
            await asyncio.wait({work}, timeout=0.5)
            await self.report(stage, start + (end - start) * latest[0])
        return work.result()
