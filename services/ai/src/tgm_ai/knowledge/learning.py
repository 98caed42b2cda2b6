"""`learn-from-history`: the questions users asked paired with the answers that followed, paraphrases
grouped by lexical similarity, stored as FAQ candidates (`pending`) for review; `add-knowledge
{candidateIds}` accepts them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from tgm_contracts.commands.ai import (
    FaqCandidate,
    LearnFromHistory,
    LearnFromHistoryRequest,
    LearnFromHistoryResult,
)
from tgm_runtime.routes import answers

from ..domain.analysis import QUESTION, intent
from ..domain.index import Bm25, KnowledgeIndex
from ..domain.text import fold, shorten, tokenize
from ..ids import new_id, now
from ..providers.service import ProviderService
from .index_cache import IndexCache
from .store import KnowledgeStore


@dataclass
class HistoryLearning:
    store: KnowledgeStore
    cache: IndexCache
    providers: ProviderService

    @answers(LearnFromHistory)
    async def learn(self, req: LearnFromHistoryRequest) -> LearnFromHistoryResult:
        """Questions users asked with the answers they got, grouped by similarity: FAQ candidates for review."""
        await self.cache.ensure_current()
        pairs: list[tuple[str, str]] = []
        for conv in req.conversations:
            turns = [(t.role, t.content.strip()) for t in conv.messages if t.role != "system"]
            for i, (role, text) in enumerate(turns):
                if role != "user":
                    continue
                if not (QUESTION.search(fold(text)) or intent(text)[0] in ("pricing", "purchase", "support")):
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
        rs = await self.providers.retrieval()
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
            b, _, _, _ = self.cache.index.faq_match(
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
        await self.store.insert_candidates(docs)
        return LearnFromHistoryResult(
            candidates=[FaqCandidate.model_validate({**d, "id": d["_id"]}) for d in docs],
            conversations=len(req.conversations),
            question_turns=len(pairs),
        )
