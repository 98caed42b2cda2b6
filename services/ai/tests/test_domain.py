"""Pure domain logic: tokenization, chunking, BM25, fusion, FAQ thresholds, analysis, templates, memory."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import numpy as np
import pytest
from tgm_ai.domain import analysis as A
from tgm_ai.domain import templates as T
from tgm_ai.domain.chunking import chunk_text
from tgm_ai.domain.index import Bm25, Entry, KnowledgeIndex, rrf
from tgm_ai.domain.text import detect_language, fold, sentences, shorten, tokenize
from tgm_ai.knowledge.documents import DocumentError, RawDocument, decode_upload, detect_kind, extract
from tgm_ai.memory.service import facts_from

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]


def test_tokenize_folds_scripts_stems_and_drops_stop_words():
    assert tokenize("請問運費怎麼算？") == tokenize("请问运费怎么算?")
    toks = tokenize("Shipping prices for 2 items")
    assert {"ship", "price", "item", "2"} <= set(toks) and "for" not in toks
    assert "运费" in tokenize("運費") and "的" not in tokenize("我的運費")
    assert fold("ＡＢＣ１") == "abc1"


def test_language_detection():
    assert detect_language("請問運費怎麼算") == "zh-TW"
    assert detect_language("请问运费怎么算") == "zh-CN"
    assert detect_language("How much is it?") == "en"
    assert detect_language("1234", default="en") == "en"
    assert detect_language("我想買 VPN plan") == "zh-TW"


def test_sentences_and_shorten():
    assert sentences("One. Two! 三。四？\nFive") == ["One.", "Two!", "三。", "四？", "Five"]
    assert shorten("word " * 100, 30).endswith("…") and len(shorten("word " * 100, 30)) <= 30


def test_chunking_overlaps_and_keeps_positions():
    text = ". ".join(f"Sentence {i} has some words" for i in range(100))
    chunks = chunk_text(text, size=120, overlap=30)
    assert len(chunks) > 10
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlap
        assert b.start > a.start
    for c in chunks:
        assert text[c.start : c.end].strip() == c.text
        assert len(c.text) <= 120
    assert chunks[-1].end == len(text)
    paged = chunk_text("a" * 50 + "b" * 50 + "c" * 50, size=40, overlap=0, page_starts=[0, 50, 100])
    assert [c.page for c in paged] == [1, 1, 2, 2, 3, 3]  # chunks never straddle a page
    assert [c.text[0] for c in paged] == ["a", "a", "b", "b", "c", "c"] and paged[2].start == 50
    with pytest.raises(ValueError):
        chunk_text("x", size=100, overlap=100)


def test_bm25_ranks_rarer_matches_higher_and_supports_removal():
    bm = Bm25()
    bm.add("a", Counter(tokenize("refund policy for annual plans")))
    bm.add("b", Counter(tokenize("annual report of the company")))
    bm.add("c", Counter(tokenize("shipping policy")))
    s = bm.scores(tokenize("refund policy"))
    assert max(s, key=s.get) == "a" and "b" not in s
    bm.remove("a")
    s = bm.scores(tokenize("refund policy"))
    assert set(s) == {"c"} and len(bm) == 2
    bm.remove_many(["b", "c"])
    assert bm.scores(["policy"]) == {} and bm.total_length == 0


def test_rrf_fuses_rankings():
    fused = rrf([["a", "b", "c"], ["c", "a"]], k=60)
    assert max(fused, key=fused.get) == "a" and fused["c"] > fused["b"]


def _index() -> KnowledgeIndex:
    ix = KnowledgeIndex()
    ix.add(
        Entry(
            "f1", "s", "faq", "運費怎麼算？\n滿千免運", question="運費怎麼算？", meta={"answer": "滿千免運"}
        )
    )
    ix.add(
        Entry(
            "f2",
            "s",
            "faq",
            "How do I reset my password?\nUse the link",
            question="How do I reset my password?",
        )
    )
    ix.add(
        Entry(
            "f3", "s", "faq", "How do I change my email?\nSettings page", question="How do I change my email?"
        )
    )
    ix.add(Entry("t1", "s", "text", "Our office is in Taipei."))
    ix.add(Entry("o1", "other", "faq", "運費怎麼算？\nfree", question="運費怎麼算？"))
    return ix


def test_faq_match_best_suggestions_fallback_and_scope():
    ix = _index()
    best, sugg, fallback, _ = ix.faq_match("运费怎么算", scopes=["s"], best_threshold=0.6, sugg_threshold=0.3)
    assert best.entry.id == "f1" and not fallback
    best, sugg, fallback, m = ix.faq_match(
        "reset password email", scopes=["s"], best_threshold=0.9, sugg_threshold=0.2
    )
    assert best is None and not fallback and next(s.entry.id for s in sugg) == "f2" and m["f2"] > m["f3"]
    best, sugg, fallback, _ = ix.faq_match(
        "unrelated words entirely", scopes=["s"], best_threshold=0.6, sugg_threshold=0.3
    )
    assert best is None and sugg == [] and fallback


def test_hybrid_search_uses_dense_when_vectors_exist():
    ix = _index()
    mode, hits = ix.search("office location", scopes=["s"], limit=3)
    assert mode == "bm25" and hits[0].entry.id == "t1"
    for i, e in enumerate(list(ix.entries)):
        v = np.zeros(8)
        v[i] = 1.0
        ix.set_vector(e, v)
    q = np.zeros(8)
    q[1] = 1.0  # closest to f2 by vector only
    mode, hits = ix.search("office", scopes=["s"], limit=3, query_vector=q)
    assert mode == "hybrid" and {h.entry.id for h in hits} >= {"t1", "f2"}
    mode, hits = ix.search("anything", scopes=["s"], limit=1, mode="dense", query_vector=q)
    assert mode == "dense" and hits[0].entry.id == "f2"
    assert ix.search("office", scopes=["s"], mode="dense")[1] == []


def test_sentiment_intent_and_stage():
    assert A.sentiment("This is great, thanks!")[0] == "positive"
    assert A.sentiment("not good at all")[0] == "negative"
    assert A.sentiment("服務很好，謝謝")[0] == "positive"
    assert A.sentiment("我不滿意")[0] == "negative"
    assert A.intent("How much is the premium plan?")[0] == "pricing"
    assert A.intent("我要退訂，別再發了")[0] == "unsubscribe"
    assert A.intent("你好")[0] == "greeting"
    a = A.analyze([("assistant", "Hi"), ("user", "I already paid, order placed!")])
    assert a.stage == "closed_won"
    a = A.analyze([("user", "Too expensive, maybe later")])
    assert "too expensive" in a.objections and a.stage == "follow_up"
    assert A.analyze([("user", "ok, noted")]).stage == "replied"


def test_templates_are_deterministic_under_a_seed_and_varied_without():
    def run(seed: int | None) -> list[str]:
        rng = random.Random(seed) if seed is not None else random.Random()
        return T.welcome(T.Batch("en", "friendly", 3, 200, rng), group="G", topic="tea", user=None)

    assert run(1) == run(1) and run(1) != run(2)
    names = T.group_names(
        T.Batch("zh-CN", "friendly", 25, 20, random.Random(3)), keywords=["咖啡"], topic=None
    )
    assert len(set(names)) == 25 and all(len(n) <= 20 for n in names) and "俱乐部" in "".join(names)


def test_facts_from_messages():
    assert facts_from("Hi, my name is Alice and I live in Lisbon.") == {"name": "Alice", "city": "Lisbon"}
    assert facts_from("我叫小明，我住在台北。") == {"name": "小明", "city": "台北"}
    assert facts_from("write to bob@example.org") == {"email": "bob@example.org"}


def test_document_kinds_and_errors():
    assert detect_kind(RawDocument(b"%PDF-1.4", None, None, "upload")) == "pdf"
    assert detect_kind(RawDocument(b"<html><body>x</body></html>", None, None, "upload")) == "html"
    assert detect_kind(RawDocument(b"# t", "a.md", None, "upload")) == "markdown"
    with pytest.raises(DocumentError):
        detect_kind(RawDocument(b"x", "a.xlsx", None, "upload"))
    with pytest.raises(DocumentError, match="base64"):
        decode_upload("%%%", "a.txt", None)
    assert decode_upload("data:text/plain;base64,aGk=", None, None).mime_type == "text/plain"
    assert extract(RawDocument("中文內容".encode("big5"), "a.txt", None, "upload")).text == "中文內容"
    with pytest.raises(DocumentError, match="binary"):
        extract(RawDocument(b"\x00\x01\x02" * 10, "a.bin", None, "upload"))
    with pytest.raises(DocumentError, match="no text"):
        extract(RawDocument(b"   ", "a.txt", None, "upload"))
