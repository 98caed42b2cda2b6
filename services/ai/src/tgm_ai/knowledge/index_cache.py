"""The in-memory `KnowledgeIndex` of this replica, kept in step with the `knowledge` collection.

Every change bumps a revision in the database; a replica whose revision differs reloads before it
searches, so replicas stay in step without talking to each other. Changes and reloads of one replica
are serialised by one lock (`cache.lock`), so an in-flight change never lands in an index being
replaced. Vectors come from the embedder in force; a stored vector of another model is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from ..domain.index import Entry, KnowledgeIndex
from ..providers.embedders import EmbedderSource
from .store import KnowledgeStore
from .views import entry_of, passage_text

log = logging.getLogger("tgm.ai.knowledge")

#: Texts per embedding call.
EMBED_BATCH = 64


class IndexCache:
    def __init__(self, store: KnowledgeStore, embedders: EmbedderSource) -> None:
        self.store = store
        self.embedders = embedders
        self.index = KnowledgeIndex()
        self._rev = -1
        self.lock = asyncio.Lock()

    # --- keeping the index current -----------------------------------------------------------------

    async def _load_locked(self) -> None:
        rev = await self.store.revision()
        index = KnowledgeIndex()
        model = self.embedders.model
        async for doc in self.store.all_items():
            e = entry_of(doc)
            index.add(e)
            if doc.get("vector") and (model is None or doc.get("vector_model") == model):
                index.set_vector(e.id, doc["vector"])
        self.index = index
        self._rev = rev

    async def ensure_locked(self) -> None:
        """Reload if another replica changed the knowledge (the caller holds `lock`)."""
        if await self.store.revision() != self._rev:
            await self._load_locked()

    async def load(self) -> None:
        async with self.lock:
            await self._load_locked()

    async def ensure_current(self) -> None:
        """Reload when another replica changed the knowledge."""
        async with self.lock:
            await self.ensure_locked()

    async def changed(self) -> None:
        """Record a change of this replica (the caller holds `lock`)."""
        rev = await self.store.bump()
        # Our own change is already applied; anyone else's in between forces a reload.
        self._rev = rev if rev == self._rev + 1 else -1

    def add(self, docs: Iterable[dict[str, Any]]) -> None:
        """Index stored items, with their vectors if they have one."""
        for d in docs:
            self.index.add(entry_of(d))
            if d.get("vector"):
                self.index.set_vector(d["_id"], d["vector"])

    # --- vectors -----------------------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> list[list[float]] | None:
        embedder = self.embedders.embedder
        if embedder is None or not texts:
            return None
        try:
            return await embedder.embed(texts)
        except Exception as exc:  # retrieval still works on BM25; the status shows missing vectors
            log.warning("embedding %d texts failed: %s", len(texts), exc)
            return None

    async def query_vector(self, query: str) -> list[float] | None:
        if self.embedders.embedder is None or not self.index.dense_count():
            return None
        vecs = await self.embed([query])
        return vecs[0] if vecs else None

    async def embed_entries(self, ids: list[str]) -> int:
        """Give these entries vectors, stored and indexed batch by batch; how many got one (it stops
        at the first batch the embedder cannot do)."""
        done = 0
        for i in range(0, len(ids), EMBED_BATCH):
            batch = [self.index.entries[x] for x in ids[i : i + EMBED_BATCH] if x in self.index.entries]
            vecs = await self.embed([passage_text(e) for e in batch])
            if not vecs:
                break
            await self.store.set_vectors(
                {e.id: v for e, v in zip(batch, vecs, strict=True)}, self.embedders.model
            )
            for e, v in zip(batch, vecs, strict=True):
                self.index.set_vector(e.id, v)
            done += len(batch)
        return done

    async def reembed(self) -> int:
        """Give every item a vector from the embedder in force (after the embedding provider changed)."""
        await self.ensure_current()
        if self.embedders.embedder is None:
            self.index.clear_vectors()
            return 0
        done = await self.embed_entries(list(self.index.entries))
        log.info("re-embedded %d knowledge items", done)
        return done

    def document_entries(self, document_id: str) -> list[Entry]:
        return [e for e in self.index.entries.values() if e.document_id == document_id]
