"""Retrieval that answers paraphrases (issue 12, finding 10): every scope unless scopes are given,
concepts that bridge a customer's words and the stored question's, question-to-question matching."""

from __future__ import annotations

import pytest
from tgm_ai.domain.index import Entry, KnowledgeIndex, analyze
from tgm_ai.domain.lexicon import concepts
from tgm_ai.domain.text import fold
from tgm_contracts.commands import ai as C

from .conftest import ok

pytestmark = pytest.mark.timeout(60)


@pytest.mark.component
async def test_search_without_scopes_searches_every_scope(client):
    await ok(
        client,
        C.AddKnowledge,
        {"scope": "group:vip", "question": "Do you offer refunds?", "answer": "Yes, within 14 days."},
    )
    await ok(client, C.AddKnowledge, {"scope": "default", "content": "Our shop opens at 9 am."})
    res = await ok(client, C.SearchKnowledge, {"query": "do you offer refunds"})
    assert res["hits"][0]["item"]["scope"] == "group:vip"
    assert res["faq"]["best"]["item"]["question"] == "Do you offer refunds?"
    res = await ok(client, C.SearchKnowledge, {"query": "do you offer refunds", "scopes": ["default"]})
    assert all(h["item"]["scope"] == "default" for h in res["hits"]) and res["faq"]["best"] is None


def test_concepts_fold_scripts_and_languages():
    # Traditional and simplified writing name the same concept; English names its own.
    assert "~refund:zh" in concepts(fold("退款多久會入帳？"))
    assert "~refund:zh" in concepts(fold("钱什么时候退回"))
    assert concepts(fold("Can I get my money back?")) == ["~refund"]
    # English phrases match whole words with any ending, not inside other words.
    assert "~deliver" in concepts(fold("When is it delivered?"))
    assert "~data" not in concepts(fold("a big box"))  # "gb" is not found inside "big box"
    assert concepts(fold("what's the weather tomorrow")) == []
    assert analyze("退款")[-1] == "~refund:zh"


def _index(*faqs: tuple[str, str, str]) -> KnowledgeIndex:
    index = KnowledgeIndex()
    for i, q, a in faqs:
        index.add(Entry(i, "default", "faq", f"{q}\n{a}", question=q, meta={"answer": a}))
    return index


def test_a_paraphrase_sharing_no_word_with_the_question_finds_it():
    index = _index(
        ("refund", "退款多久會入帳？", "收到退貨後 3 個工作天內退款。"),
        ("ship", "訂單寄到台灣需要幾天？", "台灣本島 2–3 個工作天送達。"),
        ("pay", "支持哪些付款方式？", "信用卡、支付寶和銀行轉帳。"),
    )
    _, hits = index.search("我的钱什么时候会退回来", limit=3)
    assert hits[0].entry.id == "refund"
    _, hits = index.search("东西大概几天能收到", limit=3)
    assert hits[0].entry.id == "ship"


def test_the_question_field_outranks_an_answer_that_repeats_the_words():
    index = _index(
        ("a", "How do I reset my password?", "Tap the link we e-mail you."),
        ("b", "Can I change my e-mail?", "Yes; you will need your password to reset the e-mail address."),
    )
    _, hits = index.search("reset password", limit=2)
    assert [h.entry.id for h in hits] == ["a", "b"]
    index.remove(["a"])
    assert [h.entry.id for h in index.search("reset password", limit=2)[1]] == ["b"]
    assert not len(index.questions.postings.get("reset", {}))
