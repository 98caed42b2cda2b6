"""Tokenization (Chinese word segmentation + English words), language detection, sentence splitting.

Chinese text is segmented with jieba (the Rust port `rjieba`) in search mode, which also emits the
shorter words inside long compounds, and each CJK run adds its character bigrams so that a
paraphrase which segments differently still shares terms. Traditional characters are folded to
simplified for indexing, so a question typed in either script finds the same knowledge.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import rjieba
from hanziconv import charmap as _charmap

# Traditional -> simplified, character by character (hanziconv's table of 2,704 pairs). Indexing and
# matching only: stored text keeps its original script.
_T2S = {
    t: s for t, s in zip(_charmap.traditional_charmap, _charmap.simplified_charmap, strict=True) if t != s
}
_T2S_TABLE = str.maketrans(_T2S)
_TRAD_ONLY = frozenset(_T2S)
_SIMP_ONLY = frozenset(_T2S.values()) - frozenset(_T2S)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_SENT_SPLIT = re.compile(r"(?<=[.!?。！？；;])\s*|\n+")

EN_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "want",
        "need",
        "know",
        "get",
        "got",
        "any",
        "some",
        "about",
        "also",
        "am",
        "all",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "i'm",
        "it's",
        "please",
        "hi",
        "hello",
        "hey",
    ]
)
ZH_STOP = frozenset(
    [
        "的",
        "了",
        "呢",
        "吗",
        "嗎",
        "吧",
        "啊",
        "呀",
        "是",
        "我",
        "你",
        "您",
        "他",
        "她",
        "它",
        "们",
        "們",
        "在",
        "有",
        "和",
        "与",
        "與",
        "就",
        "都",
        "也",
        "要",
        "会",
        "會",
        "想",
        "请",
        "請",
        "这",
        "這",
        "那",
        "个",
        "個",
        "一",
        "下",
        "么",
        "麼",
        "怎么",
        "怎麼",
        "什么",
        "什麼",
        "还",
        "還",
        "可以",
        "能",
        "吗",
        "嗎",
        "哦",
        "喔",
        "啦",
        "嘛",
        "之",
        "而",
        "及",
        "或",
        "把",
        "被",
        "让",
        "讓",
        "给",
        "給",
    ]
)


def fold(text: str) -> str:
    """Normalise for matching: NFKC (full-width -> ASCII), lower case, traditional -> simplified."""
    return unicodedata.normalize("NFKC", text).lower().translate(_T2S_TABLE)


def _stem(word: str) -> str:
    # A light English stemmer: enough to match "prices"/"price", "shipping"/"ship", "refunded"/"refund".
    for suffix, min_len in (("ies", 5), ("ing", 6), ("ed", 5), ("es", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= min_len:
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if suffix in ("ing", "ed") and len(base) > 2 and base[-1] == base[-2]:
                return base[:-1]  # shipping -> shipp -> ship
            if suffix == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
                return base + "e"
            return base
    return word


ZH_STOP = ZH_STOP | {"请问", "請問", "一下", "一些", "有没有", "有沒有", "可不可以", "是不是"}
_ZH_STOP_CHARS = frozenset(
    "的了呢吗吧啊呀是我你您他她它们在有和与就都也要会想请这那个一下么还能哦喔啦嘛之而及或把被让给"
)


@lru_cache(maxsize=65536)
def _cjk_tokens(run: str) -> tuple[str, ...]:
    """jieba search-mode words, character bigrams inside stretches of content words, and content
    characters: a paraphrase that segments differently still shares terms."""
    words = list(rjieba.cut(run))
    out = [w for w in rjieba.cut_for_search(run) if w not in ZH_STOP]
    spans: list[str] = []
    cur = ""
    for w in words:
        if w in ZH_STOP:
            if cur:
                spans.append(cur)
            cur = ""
        else:
            cur += w
    if cur:
        spans.append(cur)
    seen = set(out)
    for span in spans:
        for i in range(len(span) - 1):
            bg = span[i : i + 2]
            if bg not in seen:
                seen.add(bg)
                out.append(bg)
        for ch in span:
            if ch not in seen and ch not in _ZH_STOP_CHARS:
                seen.add(ch)
                out.append(ch)
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """Index terms of a text: stemmed English words and numbers, Chinese words and bigrams."""
    folded = fold(text)
    out: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(folded):
        _latin(folded[pos : m.start()], out)
        out.extend(_cjk_tokens(m.group()))
        pos = m.end()
    _latin(folded[pos:], out)
    return out


def _latin(text: str, out: list[str]) -> None:
    for w in _WORD.findall(text):
        w = w.replace("’", "'")
        if w in EN_STOP or (len(w) == 1 and not w.isdigit()):
            continue
        out.append(_stem(w))


def detect_language(text: str, default: str = "en") -> str:
    """`zh-TW`, `zh-CN` or `en` (other Latin-script text is reported as `en`)."""
    cjk = len(_CJK_RUN.findall(text)) and sum(len(r) for r in _CJK_RUN.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    if not cjk and not latin:
        return default
    if cjk and cjk * 2 >= latin * 0.5:
        trad = sum(1 for ch in text if ch in _TRAD_ONLY)
        simp = sum(1 for ch in text if ch in _SIMP_ONLY)
        return "zh-CN" if simp > trad else "zh-TW"
    return "en"


def is_chinese(lang: str) -> bool:
    return lang.startswith("zh")


def sentences(text: str) -> list[str]:
    """Split into sentences (Chinese and Western punctuation, line breaks); drops empty pieces."""
    return [s.strip() for s in _SENT_SPLIT.split(text) if s and s.strip()]


def shorten(text: str, limit: int) -> str:
    """Cut to `limit` characters at a word or sentence boundary when one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    for sep in ("。", ". ", "！", "? ", "，", ", ", " "):
        i = cut.rfind(sep)
        if i >= limit * 0.6:
            return cut[: i + len(sep.strip())].rstrip() + "…"
    return cut + "…"
