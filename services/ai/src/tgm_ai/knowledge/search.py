"""Searching the knowledge: hybrid search with citations (`search-knowledge`, `rag-search`), FAQ
matching after DmFlow (best answer, suggestions, fallback), and retrieval for generation."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tgm_contracts.commands.ai import (
    KnowledgeSearchResult,
    RagHit,
    RagSearch,
    RagSearchRequest,
    RagSearchResult,
    SearchKnowledge,
    SearchKnowledgeRequest,
)
from tgm_contracts.models.ai import FaqMatch, KnowledgeHit
from tgm_runtime.routes import answers

from ..domain.index import Scored
from ..providers.service import ProviderService
from .index_cache import IndexCache
from .store import KnowledgeStore
from .views import citation_of, item_of_entry, item_view, passage_text


def _faq_hit(s: Scored) -> KnowledgeHit:
    return KnowledgeHit(
        item=item_of_entry(s.entry), score=s.score, match=s.score, citation=citation_of(s.entry, s.score)
    )


@dataclass
class KnowledgeSearch:
    store: KnowledgeStore
    cache: IndexCache
    providers: ProviderService  # RetrievalSettings (thresholds, rrf_k, top_k) are in the AI settings

    async def faq(
        self,
        query: str,
        scopes: list[str] | None,
        best: float | None = None,
        sugg: float | None = None,
        query_vector: list[float] | None = None,
    ) -> FaqMatch:
        rs = await self.providers.retrieval()
        best_t = best if best is not None else rs.best_threshold
        sugg_t = sugg if sugg is not None else rs.sugg_threshold
        b, suggestions, fallback, _ = self.cache.index.faq_match(
            query, scopes=scopes, best_threshold=best_t, sugg_threshold=sugg_t, query_vector=query_vector
        )
        return FaqMatch(
            best=_faq_hit(b) if b else None,
            suggestions=[_faq_hit(s) for s in suggestions],
            fallback=fallback,
            best_threshold=best_t,
            sugg_threshold=sugg_t,
        )

    @answers(SearchKnowledge)
    async def search_knowledge(self, req: SearchKnowledgeRequest) -> KnowledgeSearchResult:
        """Every scope unless `scopes` names some (issue 12, finding 10)."""
        t0 = time.perf_counter()
        await self.cache.ensure_current()
        qv = await self.cache.query_vector(req.query)
        types = [req.type] if req.type else (None if req.include_docs else ["faq", "text"])
        rs = await self.providers.retrieval()
        _, scored = self.cache.index.search(
            req.query, scopes=req.scopes, types=types, limit=req.limit, query_vector=qv, rrf_k=rs.rrf_k
        )
        faq = await self.faq(req.query, req.scopes, req.best_threshold, req.sugg_threshold, qv)
        matches = {h.item.id: h.match for h in ([faq.best] if faq.best else []) + faq.suggestions}
        hits = []
        docs = {d["_id"]: d for d in await self.store.get_many([s.entry.id for s in scored])}
        for s in scored:
            d = docs.get(s.entry.id)
            item = item_view(d) if d else item_of_entry(s.entry)
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
        return KnowledgeSearchResult(
            query=req.query, hits=hits, faq=faq, took_ms=round((time.perf_counter() - t0) * 1000, 3)
        )

    @answers(RagSearch)
    async def rag_search(self, req: RagSearchRequest) -> RagSearchResult:
        t0 = time.perf_counter()
        await self.cache.ensure_current()
        qv = await self.cache.query_vector(req.query) if req.mode != "bm25" else None
        rs = await self.providers.retrieval()
        mode, scored = self.cache.index.search(
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
            RagHit(
                knowledge_id=s.entry.id,
                type=s.entry.type,
                text=passage_text(s.entry),
                score=round(s.score, 6),
                bm25_score=s.bm25,
                dense_score=s.dense,
                citation=citation_of(s.entry, s.score),
            )
            for s in scored
            if s.score >= req.min_score
        ]
        return RagSearchResult(
            query=req.query, mode=mode, hits=hits, took_ms=round((time.perf_counter() - t0) * 1000, 3)
        )

    async def retrieve(
        self, query: str, scopes: list[str], limit: int
    ) -> tuple[FaqMatch, list[Scored], bool]:
        """For generation: FAQ outcome, top passages, and whether dense vectors took part."""
        await self.cache.ensure_current()
        qv = await self.cache.query_vector(query)
        rs = await self.providers.retrieval()
        faq = await self.faq(query, scopes, query_vector=qv)
        mode, scored = self.cache.index.search(
            query, scopes=scopes, limit=limit, query_vector=qv, rrf_k=rs.rrf_k
        )
        return faq, scored, mode == "hybrid"
