"""The keyword matcher (`tgm_campaign.automation.matcher`): every match type, folding, excludes, set
filtering, offsets on the original text, refused regexes, and a 10k-keyword build."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from tgm_campaign.automation.matcher import Hit, Matcher, check_pattern, fold

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


def kset(
    sid: str,
    *keywords: str | dict[str, Any],
    mode: str = "contains",
    threshold: float = 0.85,
    exclude: list[str] | None = None,
    active: bool = True,
) -> dict[str, Any]:
    kws = []
    for n, k in enumerate(keywords):
        doc: dict[str, Any] = {"keyword": k} if isinstance(k, str) else dict(k)
        doc.setdefault("id", f"{sid}_k{n}")
        doc.setdefault("match_type", None)
        doc.setdefault("case_sensitive", False)
        kws.append(doc)
    return {
        "_id": sid,
        "name": sid,
        "match_mode": mode,
        "fuzzy_threshold": threshold,
        "keywords": kws,
        "exclude_keywords": exclude or [],
        "is_active": active,
    }


def words(hits: list[Hit]) -> list[str]:
    return [h.keyword for h in hits]


def test_contains_hits_at_first_occurrence_with_original_offsets() -> None:
    m = Matcher.build([kset("s", "price", "价格")])
    text = "Price? the price, 价格 and 价格"
    hits = m.match(text)
    assert [(h.keyword, h.start, h.end) for h in hits] == [("price", 0, 5), ("价格", 18, 20)]
    assert all(h.match_type == "contains" and h.set_id == "s" and h.score is None for h in hits)
    assert hits[0].keyword_id == "s_k0"
    assert text[hits[1].start : hits[1].end] == "价格"


def test_latin_contains_respects_word_boundaries_cjk_does_not() -> None:
    m = Matcher.build([kset("s", "ai", "usdt", "代理")])
    assert m.match("he said it again") == []
    assert words(m.match("ask the AI!")) == ["ai"]
    assert words(m.match("收usdt换人民币")) == ["usdt"]  # Han next to Latin is a boundary
    assert m.match("usdtx rate") == []
    assert words(m.match("我们招总代理商")) == ["代理"]  # CJK: plain substring


def test_exact_is_the_whole_trimmed_casefolded_message() -> None:
    m = Matcher.build([kset("s", "hello world", "你好", mode="exact")])
    assert m.match("hello world!") == []
    assert m.match("say hello world") == []
    hits = m.match("  HELLO   World \n")
    assert [(h.keyword, h.start, h.end, h.match_type) for h in hits] == [("hello world", 2, 15, "exact")]
    assert words(m.match("你好")) == ["你好"]
    assert m.match("你好吗") == []


def test_case_sensitive_keywords() -> None:
    m = Matcher.build(
        [
            kset(
                "s",
                {"keyword": "USDT", "case_sensitive": True},
                {"keyword": "Hi", "match_type": "exact", "case_sensitive": True},
                {"keyword": "VPN", "match_type": "regex", "case_sensitive": True},
                {"keyword": "vpn", "match_type": "regex"},
            )
        ]
    )
    assert words(m.match("buy usdt now")) == []
    assert words(m.match("buy USDT now")) == ["USDT"]
    assert words(m.match("buy ＵＳＤＴ now")) == ["USDT"]  # full-width folds to the same case
    assert words(m.match("hi")) == []
    assert words(m.match("Hi")) == ["Hi"]
    assert words(m.match("a vpn")) == ["vpn"]
    assert words(m.match("a VPN")) == ["VPN", "vpn"]


def test_regex_match_offsets_and_prefilter_alternatives() -> None:
    m = Matcher.build([kset("s", r"(买|卖)\s*usdt", r"\d{11}", r"价格.*多少", mode="regex")])
    text = "我想 買 USDT，电话13800138000，價格是多少"
    hits = m.match(text)
    got = {h.keyword: text[h.start : h.end] for h in hits}
    assert got == {r"(买|卖)\s*usdt": "買 USDT", r"\d{11}": "13800138000", r"价格.*多少": "價格是多少"}
    assert [h.start for h in hits] == sorted(h.start for h in hits)
    assert m.match("nothing here") == []


def test_regex_on_full_width_digits_and_pattern_folding() -> None:
    m = Matcher.build([kset("s", r"\d{3}元", r"報價", mode="regex")])
    text = "只要１２３元，报价单"
    hits = m.match(text)
    assert {text[h.start : h.end] for h in hits} == {"１２３元", "报价"}


def test_fuzzy_word_windows_and_cjk_windows_with_scores() -> None:
    m = Matcher.build(
        [
            kset("s", "hello world", "telegram", mode="fuzzy", threshold=0.8),
            kset("zh", "代理價格", mode="fuzzy", threshold=0.7),  # one of 4 Han differs: Indel 0.75
        ]
    )
    text = "guys helo wrld, Telegarm group, 想问代理价钱"
    hits = m.match(text)
    by = {h.keyword: h for h in hits}
    assert text[by["hello world"].start : by["hello world"].end] == "helo wrld"
    assert text[by["telegram"].start : by["telegram"].end] == "Telegarm"
    assert "代理价" in text[by["代理價格"].start : by["代理價格"].end]
    assert by["代理價格"].score == 0.75
    assert all(h.match_type == "fuzzy" and h.score is not None and 0.7 <= h.score <= 1 for h in hits)
    # below the threshold: nothing
    strict = Matcher.build([kset("s", "telegram", mode="fuzzy", threshold=0.95)])
    assert strict.match("Telegarm group") == []
    assert [h.score for h in strict.match("telegram group")] == [1.0]
    assert strict.match("tg") == []


def test_fuzzy_case_sensitive_and_twins_across_sets() -> None:
    m = Matcher.build(
        [
            kset("a", {"keyword": "WhatsApp", "match_type": "fuzzy", "case_sensitive": True}, threshold=0.8),
            kset("b", {"keyword": "whatsapp", "match_type": "fuzzy"}, threshold=0.8),
            kset("c", {"keyword": "whatsapp", "match_type": "fuzzy"}, threshold=0.8),
        ]
    )
    text = "add me on WhatApp pls"
    hits = m.match(text)
    assert [(h.set_id, text[h.start : h.end]) for h in hits] == [
        ("a", "WhatApp"),
        ("b", "WhatApp"),
        ("c", "WhatApp"),
    ]
    assert [h.set_id for h in m.match("add me on whatapp pls")] == ["b", "c"]  # case differs for "a"
    assert [h.set_id for h in m.match("add me on whatapp pls", set_ids=["c"])] == ["c"]


def _mutate(rng: random.Random, kw: str, alphabet: str) -> str:
    chars = list(kw)
    for _ in range(rng.randint(0, 2)):
        op, pos = rng.randint(0, 2), rng.randrange(len(chars))
        if op == 0:
            chars[pos] = rng.choice(alphabet)
        elif op == 1 and len(chars) > 1:
            del chars[pos]
        else:
            chars.insert(pos, rng.choice(alphabet))
    return "".join(chars)


def test_fuzzy_prefilter_never_loses_a_match_the_scorer_accepts() -> None:
    """The pigeonhole prefilter (pieces in the automaton) against the scorer run on every message."""
    from rapidfuzz import fuzz

    rng = random.Random(7)
    for _ in range(300):  # character windows (a keyword with Han)
        kw = rng.choice("价格代理") + "".join(rng.choice("abcd价格代理") for _ in range(rng.randint(2, 8)))
        text = "价" + _mutate(rng, kw, "abcd价格代理") + "格"
        thr = rng.choice([0.6, 0.75, 0.85])
        m = Matcher.build([kset("s", {"keyword": kw, "match_type": "fuzzy"}, threshold=thr)])
        kf, tf = fold(kw)[0], fold(text)[0]
        score = fuzz.partial_ratio(kf, tf) if len(tf) >= len(kf) else fuzz.ratio(kf, tf)
        assert bool(m.match(text)) == (score >= thr * 100), (kw, text, thr)
    for _ in range(300):  # word windows (Latin words)
        kw = " ".join(
            "".join(rng.choice("abcde") for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(1, 3))
        )
        text = "xx " + _mutate(rng, kw, "abcde ") + " yy"
        thr = rng.choice([0.6, 0.75, 0.85])
        m = Matcher.build([kset("s", {"keyword": kw, "match_type": "fuzzy"}, threshold=thr)])
        toks, k = text.split(), len(kw.split())
        windows = [
            " ".join(toks[i : i + w]) for w in (k - 1, k, k + 1) if w >= 1 for i in range(len(toks) - w + 1)
        ]
        score = max(fuzz.ratio(kw, w) for w in windows)
        assert bool(m.match(text)) == (score >= thr * 100), (kw, text, thr)


def test_exclude_keywords_suppress_every_hit_of_their_set_only() -> None:
    m = Matcher.build(
        [
            kset("a", "usdt", {"keyword": r"\d+u", "match_type": "regex"}, exclude=["广告", "SPAM"]),
            kset("b", "usdt"),
        ]
    )
    assert [h.set_id for h in m.match("buy usdt 100u")] == ["a", "a", "b"]
    assert [h.set_id for h in m.match("buy usdt 100u 廣告")] == ["b"]  # traditional exclude folds too
    assert [h.set_id for h in m.match("spam: usdt")] == ["b"]


def test_set_filtering_order_and_inactive_sets() -> None:
    m = Matcher.build(
        [
            kset("b", "world", "hello"),
            kset("a", "hello"),
            kset("off", "hello", active=False),
        ]
    )
    hits = m.match("hello world")
    assert [(h.set_id, h.keyword) for h in hits] == [("b", "hello"), ("b", "world"), ("a", "hello")]
    assert [h.set_id for h in m.match("hello world", set_ids=["a"])] == ["a"]
    assert m.match("hello world", set_ids=["off", "missing"]) == []
    assert m.match("hello world", set_ids=[]) == []
    assert m.match("") == []


def test_cjk_folding_traditional_full_width_and_mixed_language() -> None:
    m = Matcher.build([kset("s", "价格", "點擊", "iphone15", "Ｗｅｃｈａｔ")])
    text = "請問價格？点击链接 ｉＰｈｏｎｅ１５ 加 wechat"
    hits = m.match(text)
    assert [text[h.start : h.end] for h in hits] == ["價格", "点击", "ｉＰｈｏｎｅ１５", "wechat"]


def test_offsets_survive_folds_that_change_length() -> None:
    m = Matcher.build([kset("s", "strasse", "株", {"keyword": "fine", "match_type": "fuzzy"})])
    text = "㈱ die Straße ﬁne"
    hits = m.match(text)
    spans = {h.keyword: text[h.start : h.end] for h in hits}
    assert spans["strasse"] == "Straße"
    assert spans["株"] == "㈱"
    assert spans["fine"] == "ﬁne"


def test_check_pattern_refuses_bad_and_catastrophic_regexes() -> None:
    for ok in [r"\d+(,\d+)*", r"(\d{3}-)+\d{4}", r"价格.*多少", r"(?i)vpn\b", r"(foo|bar)+", r"[a-z]+@\w+"]:
        check_pattern(ok)
    for bad in ["[", "(", "a{2,1}", "", "(?P<x>a)(?P<x>b)"]:
        with pytest.raises(ValueError, match="regular expression"):
            check_pattern(bad)
    for evil in [r"(a+)+$", r"(\w+\s?)+$", r"(.*a){8}", r"(a|aa)+b", r"(x{1,5})*y", r"((ab)*)+c"]:
        with pytest.raises(ValueError, match="exponential"):
            check_pattern(evil)


def test_refused_stored_regexes_are_left_out_not_fatal_and_match_time_is_bounded() -> None:
    m = Matcher.build([kset("s", r"(a+)+$", "[", r"ok\d", mode="regex")])
    assert [r[1] for r in m.rejected] == [r"(a+)+$", "["]
    assert words(m.match("ok1 " + "a" * 5000 + "!")) == [r"ok\d"]
    # a polynomial pattern the analysis lets through is cut off by the timeout, not left hanging
    slow = Matcher.build([kset("s", r"a*a*a*a*a*a*a*b", mode="regex")], regex_timeout=0.01)
    t = time.perf_counter()
    assert slow.match("a" * 3000) == []
    assert time.perf_counter() - t < 1.0


def test_malformed_documents_are_skipped() -> None:
    docs: list[Any] = [
        "nope",
        {"_id": 5, "keywords": [{"keyword": "x"}]},
        {
            "_id": "s",
            "match_mode": "weird",
            "fuzzy_threshold": "NaN",
            "keywords": ["x", {"keyword": " "}, {}],
        },
        kset("t", "ok", exclude=["", 3]),  # type: ignore[list-item]
    ]
    m = Matcher.build(docs)
    assert words(m.match("ok x")) == ["ok"]
    assert sorted(r[2] for r in m.rejected) == [
        "empty keyword",
        "empty keyword",
        "unknown match type 'weird'",
    ]
    assert m.set_ids == ["s", "t"]


def test_ten_thousand_keywords_build_and_match() -> None:
    rng = random.Random(1)
    han = "价格代理出售收购兑换汇率渠道支付宝微信账号会员包月注册飞机群推广"
    sets = []
    planted: list[str] = []
    for s in range(20):
        kws: list[dict[str, Any]] = []
        for n in range(500):
            if n % 2:
                kw = "".join(rng.choice(han) for _ in range(rng.randint(2, 5))) + str(s * 1000 + n)
            else:
                kw = f"kw{s}x{n}"
            kws.append({"keyword": kw})
            if n == 250:
                planted.append(kw)
        sets.append(kset(f"s{s}", *kws))
    t = time.perf_counter()
    m = Matcher.build(sets)
    built = time.perf_counter() - t
    assert m.keyword_count == 10_000
    assert built < 10
    text = f"hello {planted[3]} and {planted[17]}, nothing else 价格"
    hits = m.match(text)
    assert [(h.set_id, h.keyword) for h in hits] == [("s3", planted[3]), ("s17", planted[17])]
    t = time.perf_counter()
    for _ in range(1000):
        m.match("一条普通的消息 with some English words 没有关键词 12345")
    assert time.perf_counter() - t < 5
