"""bench/automation: the keyword matcher against a naive per-keyword loop, in the same run.

Workload (`corpus.py`, seeded): 10,000 keywords in 20 sets, mixed Chinese/English — 90 % contains,
5 % exact, 3 % regex, 2 % fuzzy — and a stream of mixed-language group messages (8 % carry a
keyword, some in traditional characters or full-width, 2 % look like asks, long pastes now and then).

- matcher: `tgm_campaign.automation.matcher.Matcher` built once from the set documents (the build
  time and the process's RSS growth are printed), `match(text)` over the stream.
- naive: the text lowered once per message, then for each keyword `kw in text` (contains),
  `text.strip() == kw` (exact), a precompiled `re.search` (regex) and rapidfuzz `partial_ratio >=
  threshold` (fuzzy) — the loop a first implementation writes. It does no folding at all (no NFKC,
  no traditional -> simplified, no word boundaries), so it does less work per keyword than the
  matcher does per message: the ratio is conservative.

Prints messages/s for both, the ratio (the issue asks >= 20x at 10,000 keywords), and how many
messages each found a hit in (they differ because the matcher folds and respects word boundaries).

    .venv/bin/python bench/automation/run.py [--keywords 10000] [--messages 20000] [--out bench/automation/last-run.txt]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import sys
import time
from pathlib import Path

import psutil
from rapidfuzz import fuzz

sys.path.insert(0, str(Path(__file__).parent))

import corpus
from tgm_campaign.automation.matcher import Matcher


def naive_loop(keywords: list[dict], messages: list[str]) -> tuple[float, int]:
    compiled = []
    for k in keywords:
        kind = k["match_type"]
        if kind == "regex":
            flags = 0 if k["case_sensitive"] else re.IGNORECASE
            compiled.append((kind, re.compile(k["keyword"], flags), k["case_sensitive"], 0.0))
        else:
            kw = k["keyword"] if k["case_sensitive"] else k["keyword"].lower()
            compiled.append((kind, kw, k["case_sensitive"], k["threshold"] * 100))
    hit_messages = 0
    t0 = time.perf_counter()
    for text in messages:
        low = text.lower()
        stripped = low.strip()
        hit = False
        for kind, kw, cs, thr in compiled:
            t = text if cs else low
            if kind == "contains":
                found = kw in t
            elif kind == "exact":
                found = (text.strip() if cs else stripped) == kw
            elif kind == "regex":
                found = kw.search(text) is not None
            else:
                found = fuzz.partial_ratio(kw, t, score_cutoff=thr) >= thr
            hit = hit or found
        hit_messages += hit
    return time.perf_counter() - t0, hit_messages


def matcher_loop(matcher: Matcher, messages: list[str]) -> tuple[float, int, int]:
    hit_messages = hits = 0
    t0 = time.perf_counter()
    for text in messages:
        h = matcher.match(text)
        hit_messages += bool(h)
        hits += len(h)
    return time.perf_counter() - t0, hit_messages, hits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keywords", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument(
        "--naive-messages", type=int, default=2_000, help="the naive loop runs on the stream's first N"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    work = corpus.make(args.keywords, args.messages, args.seed)
    kinds: dict[str, int] = {}
    for k in work.keywords:
        kinds[k["match_type"]] = kinds.get(k["match_type"], 0) + 1
    avg_len = sum(len(m) for m in work.messages) / len(work.messages)

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    t = time.perf_counter()
    matcher = Matcher.build(work.sets)
    build_s = time.perf_counter() - t
    gc.collect()
    rss_mb = (proc.memory_info().rss - rss0) / 2**20

    matcher_loop(matcher, work.messages[:500])  # warm the fold tables (first sight of each character)
    m_secs, m_hit_msgs, m_hits = matcher_loop(matcher, work.messages)
    naive_msgs = work.messages[: args.naive_messages]
    n_secs, n_hit_msgs = naive_loop(work.keywords, naive_msgs)
    m_rate = len(work.messages) / m_secs
    n_rate = len(naive_msgs) / n_secs
    # the matcher's hit count on the naive loop's slice, for comparison
    _, m_hit_slice, _ = matcher_loop(matcher, naive_msgs)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"bench/automation: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average {load}",
        f"keywords {len(work.keywords):,} in {len(work.sets)} sets: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())),
        f"messages {len(work.messages):,} (avg {avg_len:.0f} chars, mixed Chinese/English)",
        f"matcher build {build_s * 1000:,.0f} ms, RSS +{rss_mb:.1f} MiB, keywords compiled "
        f"{matcher.keyword_count:,}, rejected {len(matcher.rejected)}",
        "",
        f"{'path':<34}{'messages/s':>12}{'us/message':>12}{'messages hit':>16}",
        f"{'matcher (one automaton)':<34}{m_rate:>12,.0f}{1e6 / m_rate:>12,.1f}"
        f"{m_hit_msgs:>10,} of {len(work.messages):,}",
        f"{'naive per-keyword loop':<34}{n_rate:>12,.0f}{1e6 / n_rate:>12,.1f}"
        f"{n_hit_msgs:>10,} of {len(naive_msgs):,}",
        "",
        f"ratio: matcher {m_rate / n_rate:,.1f}x the naive loop (target >= 20x); on the naive loop's "
        f"{len(naive_msgs):,} messages the matcher hit {m_hit_slice:,}, {m_hits:,} hits in all; "
        f"regex timeouts {matcher.timeouts}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if m_rate / n_rate >= 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
