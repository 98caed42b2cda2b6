"""The retrieval engine: BM25 over sparse term counts, an optional dense index, reciprocal-rank fusion,
and DmFlow-style FAQ matching (best answer / suggestions / fallback).

Everything here is in memory and synchronous; repositories load entries into it and keep it in step.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .text import tokenize


@dataclass(slots=True)
class Entry:
    """One searchable unit: a FAQ, a text item or a document chunk."""

    id: str
    scope: str
    type: str  # faq | text | document
    text: str  # what BM25 indexes (question + answer for FAQs)
    question: str | None = None
    document_id: str | None = None
    terms: Counter[str] = field(default_factory=Counter)
    question_terms: Counter[str] | None = None
    vector: np.ndarray | None = None  # L2-normalised
    meta: dict = field(default_factory=dict)


@dataclass(slots=True)
class Scored:
    entry: Entry
    score: float
    bm25: float | None = None
    dense: float | None = None
    bm25_rank: int | None = None
    dense_rank: int | None = None


class Bm25:
    """Okapi BM25 with an inverted index; documents can be added and removed at any time."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[str, int]] = {}
        self.lengths: dict[str, int] = {}
        self.total_length = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, doc_id: str, terms: Counter[str]) -> None:
        if doc_id in self.lengths:
            self.remove(doc_id)
        for t, tf in terms.items():
            self.postings.setdefault(t, {})[doc_id] = tf
        n = sum(terms.values())
        self.lengths[doc_id] = n
        self.total_length += n

    def remove(self, doc_id: str) -> None:
        n = self.lengths.pop(doc_id, None)
        if n is None:
            return
        self.total_length -= n
        empty = []
        for t, plist in self.postings.items():
            if plist.pop(doc_id, None) is not None and not plist:
                empty.append(t)
        for t in empty:
            del self.postings[t]

    def remove_many(self, doc_ids: Iterable[str]) -> None:
        gone = {d for d in doc_ids if d in self.lengths}
        if not gone:
            return
        for d in gone:
            self.total_length -= self.lengths.pop(d)
        for t in list(self.postings):
            plist = self.postings[t]
            for d in gone.intersection(plist):
                del plist[d]
            if not plist:
                del self.postings[t]

    def idf(self, term: str) -> float:
        n = len(self.lengths)
        df = len(self.postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(
        self, query_terms: Iterable[str], allowed: Callable[[str], bool] | None = None
    ) -> dict[str, float]:
        n = len(self.lengths)
        if not n:
            return {}
        avgdl = self.total_length / n or 1.0
        k1, b = self.k1, self.b
        out: dict[str, float] = {}
        for term, qtf in Counter(query_terms).items():
            plist = self.postings.get(term)
            if not plist:
                continue
            idf = self.idf(term) * (1 + 0.5 * (qtf - 1))  # repeated query terms count a little more
            for doc_id, tf in plist.items():
                if allowed is not None and not allowed(doc_id):
                    continue
                dl = self.lengths[doc_id]
                out[doc_id] = out.get(doc_id, 0.0) + idf * tf * (k1 + 1) / (
                    tf + k1 * (1 - b + b * dl / avgdl)
                )
        return out


def normalize(vec: Iterable[float]) -> np.ndarray:
    v = np.asarray(list(vec) if not isinstance(vec, np.ndarray) else vec, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def rrf(rankings: list[list[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal-rank fusion: sum of 1/(k + rank) over every ranking a document appears in."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


class KnowledgeIndex:
    """All entries of all scopes; searches filter by scope, type and document."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.bm25 = Bm25()
        self._matrix: np.ndarray | None = None
        self._matrix_ids: list[str] = []
        self._dense_dim: int | None = None

    # --- maintenance -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry) -> None:
        if not entry.terms:
            entry.terms = Counter(tokenize(entry.text))
        if entry.type == "faq" and entry.question and entry.question_terms is None:
            entry.question_terms = Counter(tokenize(entry.question))
        self.entries[entry.id] = entry
        self.bm25.add(entry.id, entry.terms)
        if entry.vector is not None:
            self._matrix = None

    def remove(self, ids: Iterable[str]) -> int:
        ids = [i for i in ids if i in self.entries]
        for i in ids:
            e = self.entries.pop(i)
            if e.vector is not None:
                self._matrix = None
        self.bm25.remove_many(ids)
        return len(ids)

    def remove_where(self, pred: Callable[[Entry], bool]) -> int:
        return self.remove([e.id for e in self.entries.values() if pred(e)])

    def set_vector(self, entry_id: str, vector: Iterable[float] | None) -> None:
        e = self.entries.get(entry_id)
        if e is None:
            return
        e.vector = normalize(vector) if vector is not None else None
        self._matrix = None

    def clear_vectors(self) -> None:
        for e in self.entries.values():
            e.vector = None
        self._matrix = None

    def vocabulary(self, scopes: set[str] | None = None) -> int:
        if scopes is None:
            return len(self.bm25.postings)
        terms: set[str] = set()
        for e in self.entries.values():
            if e.scope in scopes:
                terms.update(e.terms)
        return len(terms)

    def dense_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.vector is not None)

    # --- search ------------------------------------------------------------------------------------

    def _filter(
        self, scopes: Iterable[str] | None, types: Iterable[str] | None, document_id: str | None
    ) -> Callable[[str], bool]:
        scope_set = set(scopes) if scopes is not None else None
        type_set = set(types) if types is not None else None
        entries = self.entries

        def allowed(doc_id: str) -> bool:
            e = entries.get(doc_id)
            if e is None:
                return False
            if scope_set is not None and e.scope not in scope_set:
                return False
            if type_set is not None and e.type not in type_set:
                return False
            return document_id is None or e.document_id == document_id

        return allowed

    def _dense_scores(self, query_vec: np.ndarray, allowed: Callable[[str], bool]) -> dict[str, float]:
        if self._matrix is None:
            ids = [e.id for e in self.entries.values() if e.vector is not None]
            pairs = [(i, v) for i in ids if (v := self.entries[i].vector) is not None]
            if len({v.shape[0] for _, v in pairs}) > 1:  # mixed models: keep the query's dimension only
                pairs = [(i, v) for i, v in pairs if v.shape[0] == query_vec.shape[0]]
            ids = [i for i, _ in pairs]
            vecs = [v for _, v in pairs]
            self._matrix_ids = ids
            self._matrix = np.vstack(vecs).astype(np.float32) if vecs else np.zeros((0, query_vec.shape[0]))
        if not len(self._matrix_ids) or self._matrix.shape[1] != query_vec.shape[0]:
            return {}
        sims = self._matrix @ query_vec
        return {i: float(s) for i, s in zip(self._matrix_ids, sims, strict=True) if allowed(i)}

    def search(
        self,
        query: str,
        *,
        scopes: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
        document_id: str | None = None,
        limit: int = 5,
        mode: str = "hybrid",
        query_vector: Iterable[float] | None = None,
        rrf_k: int = 60,
        depth: int = 50,
    ) -> tuple[str, list[Scored]]:
        """Return (mode used, hits best first). `hybrid` without vectors degrades to `bm25`."""
        allowed = self._filter(scopes, types, document_id)
        qv = normalize(query_vector) if query_vector is not None else None
        if mode in ("hybrid", "dense") and (qv is None or not self.dense_count()):
            if mode == "dense":
                return "dense", []
            mode = "bm25"
        bm: dict[str, float] = {}
        dn: dict[str, float] = {}
        if mode in ("bm25", "hybrid"):
            bm = self.bm25.scores(tokenize(query), allowed)
        if mode in ("dense", "hybrid") and qv is not None:
            dn = self._dense_scores(qv, allowed)
        bm_rank = sorted(bm, key=lambda i: (-bm[i], i))[:depth]
        dn_rank = sorted(dn, key=lambda i: (-dn[i], i))[:depth]
        if mode == "bm25":
            fused = {i: bm[i] for i in bm_rank}
        elif mode == "dense":
            fused = {i: dn[i] for i in dn_rank}
        else:
            fused = rrf([bm_rank, dn_rank], k=rrf_k)
        bpos = {i: r for r, i in enumerate(bm_rank, 1)}
        dpos = {i: r for r, i in enumerate(dn_rank, 1)}
        order = sorted(fused, key=lambda i: (-fused[i], i))[:limit]
        return mode, [
            Scored(self.entries[i], fused[i], bm.get(i), dn.get(i), bpos.get(i), dpos.get(i)) for i in order
        ]

    # --- similarity --------------------------------------------------------------------------------

    def lexical_similarity(self, a: Counter[str] | Iterable[str], b: Counter[str] | Iterable[str]) -> float:
        """IDF-weighted cosine of two term bags, in [0, 1]."""
        ca = a if isinstance(a, Counter) else Counter(a)
        cb = b if isinstance(b, Counter) else Counter(b)
        if not ca or not cb:
            return 0.0
        # idf + 1: a term shared by many entries still counts (small knowledge bases have noisy idf)
        w = {t: self.bm25.idf(t) + 1.0 for t in set(ca) | set(cb)}
        dot = sum(w[t] ** 2 for t in set(ca) & set(cb))
        na = math.sqrt(sum(w[t] ** 2 for t in ca))
        nb = math.sqrt(sum(w[t] ** 2 for t in cb))
        return dot / (na * nb) if na and nb else 0.0

    def coverage(self, query_terms: Iterable[str], text_terms: Iterable[str]) -> float:
        """Share of the query's IDF weight that the text contains, in [0, 1]."""
        q = set(query_terms)
        if not q:
            return 0.0
        have = set(text_terms)
        total = sum(self.bm25.idf(t) for t in q)
        got = sum(self.bm25.idf(t) for t in q & have)
        return got / total if total else 0.0

    def faq_match(
        self,
        query: str,
        *,
        scopes: Iterable[str] | None,
        best_threshold: float,
        sugg_threshold: float,
        query_vector: Iterable[float] | None = None,
        limit: int = 5,
    ) -> tuple[Scored | None, list[Scored], bool, dict[str, float]]:
        """DmFlow's rule: the best FAQ whose similarity reaches `best_threshold` is the answer; others
        reaching `sugg_threshold` are suggestions; nothing reaching `sugg_threshold` is a fallback.

        Similarity is the IDF-weighted cosine of the query and the FAQ's question, raised to the dense
        cosine of their vectors when both have one. Returns (best, suggestions, fallback, match by id).
        """
        qterms = Counter(tokenize(query))
        qv = normalize(query_vector) if query_vector is not None else None
        allowed = self._filter(scopes, ("faq",), None)
        # Candidates: FAQs sharing a term with the query (BM25), plus dense neighbours.
        cand = set(self.bm25.scores(qterms.elements(), allowed))
        if qv is not None:
            dn = self._dense_scores(qv, allowed)
            cand.update(sorted(dn, key=lambda i: -dn[i])[: limit * 4])
        matches: dict[str, float] = {}
        for i in cand:
            e = self.entries[i]
            sim = self.lexical_similarity(qterms, e.question_terms or e.terms)
            if qv is not None and e.vector is not None and e.vector.shape == qv.shape:
                sim = max(sim, float(e.vector @ qv))
            matches[i] = round(min(1.0, max(0.0, sim)), 4)
        ranked = sorted(matches, key=lambda i: (-matches[i], i))
        best = None
        if ranked and matches[ranked[0]] >= best_threshold:
            best = Scored(self.entries[ranked[0]], matches[ranked[0]])
            ranked = ranked[1:]
        suggestions = [Scored(self.entries[i], matches[i]) for i in ranked if matches[i] >= sugg_threshold][
            :limit
        ]
        fallback = best is None and not suggestions
        return best, suggestions, fallback, matches
