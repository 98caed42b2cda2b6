"""Rule-based conversation analysis: intent, sentiment (lexicon, zh + en, with negation), language,
a funnel stage suggestion, buying signals, objections, questions and an extractive summary.

It is what the `local` provider answers with, and what the service uses to decide hand-offs even
when a remote model writes the text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import rjieba

from .text import detect_language, fold, sentences, shorten, tokenize

# Lexicons are folded (lower case, simplified) like the text they are compared with.
POSITIVE = {
    "good": 1.0,
    "great": 1.5,
    "excellent": 2.0,
    "awesome": 1.5,
    "love": 1.5,
    "like": 0.5,
    "nice": 1.0,
    "thanks": 1.0,
    "thank": 1.0,
    "perfect": 2.0,
    "happy": 1.5,
    "helpful": 1.0,
    "cool": 0.8,
    "amazing": 1.8,
    "satisfied": 1.5,
    "interested": 1.0,
    "wonderful": 1.8,
    "recommend": 1.0,
    "fast": 0.5,
    "cheap": 0.5,
    "好": 0.6,
    "很好": 1.2,
    "不错": 1.2,
    "满意": 1.5,
    "喜欢": 1.5,
    "谢谢": 1.0,
    "感谢": 1.2,
    "棒": 1.5,
    "优秀": 1.5,
    "开心": 1.5,
    "方便": 0.8,
    "推荐": 1.0,
    "完美": 2.0,
    "有兴趣": 1.0,
    "感兴趣": 1.2,
    "赞": 1.5,
    "划算": 1.2,
    "便宜": 0.6,
    "快": 0.4,
    "好用": 1.2,
    "太好了": 1.8,
    "厉害": 1.2,
}
NEGATIVE = {
    "bad": 1.0,
    "terrible": 2.0,
    "awful": 2.0,
    "hate": 2.0,
    "angry": 1.8,
    "worst": 2.0,
    "slow": 0.8,
    "expensive": 0.8,
    "scam": 2.0,
    "fraud": 2.0,
    "refund": 0.8,
    "broken": 1.5,
    "disappointed": 1.8,
    "problem": 0.8,
    "issue": 0.6,
    "complaint": 1.5,
    "useless": 1.8,
    "poor": 1.2,
    "annoying": 1.5,
    "spam": 1.5,
    "never": 0.5,
    "wrong": 1.0,
    "late": 0.8,
    "cancel": 0.8,
    "unhappy": 1.5,
    "rude": 1.5,
    "差": 1.2,
    "很差": 1.8,
    "不好": 1.2,
    "失望": 1.8,
    "生气": 1.8,
    "骗子": 2.0,
    "诈骗": 2.0,
    "退款": 0.8,
    "投诉": 1.5,
    "垃圾": 2.0,
    "太贵": 1.2,
    "贵": 0.6,
    "慢": 0.8,
    "坏": 1.2,
    "烂": 1.8,
    "讨厌": 1.8,
    "问题": 0.5,
    "麻烦": 0.8,
    "不满": 1.5,
    "骚扰": 1.8,
    "没用": 1.5,
    "糟糕": 1.8,
    "气死": 2.0,
}
NEGATORS = {
    "not",
    "no",
    "never",
    "don't",
    "dont",
    "isn't",
    "wasn't",
    "不",
    "没",
    "没有",
    "别",
    "不是",
    "并不",
}

INTENTS: dict[str, tuple[str, ...]] = {
    "unsubscribe": (
        "stop",
        "unsubscribe",
        "opt out",
        "remove me",
        "don't contact",
        "退订",
        "取消订阅",
        "不要再发",
        "别再发",
        "停止发送",
        "拉黑",
    ),
    "complaint": (
        "complain",
        "complaint",
        "scam",
        "fraud",
        "refund",
        "angry",
        "terrible",
        "worst",
        "投诉",
        "骗",
        "退款",
        "差评",
        "生气",
        "垃圾",
        "不满",
    ),
    "purchase": (
        "buy",
        "order",
        "purchase",
        "sign up",
        "subscribe",
        "checkout",
        "pay",
        "payment",
        "want to get",
        "下单",
        "购买",
        "买",
        "订购",
        "付款",
        "支付",
        "怎么买",
        "报名",
        "我要",
        "成交",
        "开通",
    ),
    "pricing": (
        "price",
        "cost",
        "how much",
        "fee",
        "discount",
        "cheap",
        "expensive",
        "quote",
        "plan",
        "价格",
        "多少钱",
        "费用",
        "优惠",
        "折扣",
        "报价",
        "便宜",
        "贵",
        "收费",
        "价钱",
        "套餐",
    ),
    "support": (
        "help",
        "problem",
        "issue",
        "error",
        "doesn't work",
        "not working",
        "broken",
        "can't",
        "cannot",
        "帮助",
        "问题",
        "错误",
        "不能",
        "无法",
        "故障",
        "坏了",
        "怎么办",
        "登录不了",
    ),
    "greeting": (
        "hello",
        "hi",
        "hey",
        "good morning",
        "good evening",
        "你好",
        "您好",
        "哈喽",
        "嗨",
        "早上好",
        "晚上好",
        "在吗",
    ),
    "information": (
        "what",
        "how",
        "when",
        "where",
        "which",
        "info",
        "details",
        "tell me",
        "explain",
        "什么",
        "怎么",
        "如何",
        "哪里",
        "什么时候",
        "介绍",
        "详情",
        "了解",
        "资料",
        "请问",
    ),
    "smalltalk": ("haha", "lol", "weather", "weekend", "哈哈", "天气", "周末", "吃饭"),
}
_INTENT_PRIORITY = [
    "unsubscribe",
    "complaint",
    "purchase",
    "pricing",
    "support",
    "information",
    "greeting",
    "smalltalk",
]

BUYING_SIGNALS = (
    "how much",
    "price",
    "buy",
    "order",
    "discount",
    "when can",
    "delivery",
    "trial",
    "pay",
    "invoice",
    "contract",
    "多少钱",
    "价格",
    "购买",
    "下单",
    "优惠",
    "试用",
    "发货",
    "付款",
    "合同",
    "发票",
    "什么时候能",
    "怎么买",
    "报价",
)
OBJECTIONS = (
    "too expensive",
    "expensive",
    "not sure",
    "think about it",
    "later",
    "no time",
    "no budget",
    "competitor",
    "cheaper",
    "not now",
    "maybe",
    "太贵",
    "贵了",
    "再考虑",
    "考虑一下",
    "以后再说",
    "没时间",
    "没预算",
    "别家",
    "更便宜",
    "不确定",
    "不需要",
    "下次",
)
#: A question (on folded text): a question mark, a leading English question word or a Chinese question word.
QUESTION = re.compile(
    r"[?？]|^(what|how|when|where|which|who|why|can|could|do|does|is|are)\b|吗|呢|什么|怎么|如何|多少|几"
)


@dataclass
class Analysis:
    intent: str
    intent_confidence: float
    sentiment: str
    sentiment_score: float
    language: str
    stage: str
    stage_reason: str
    summary: str
    keywords: list[str]
    buying_signals: list[str] = field(default_factory=list)
    objections: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    handoff_recommended: bool = False


def _contains(folded: str, phrase: str) -> bool:
    if phrase.isascii():
        return re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", folded) is not None
    return phrase in folded


def _pieces(folded: str) -> list[str]:
    """Words in order: English words, jieba words for Chinese, and `!` marks."""
    out: list[str] = []
    for m in re.finditer(r"[a-z']+|[\u4e00-\u9fff]+|[!！]", folded):
        w = m.group()
        out.extend([w] if w.isascii() or w in "!！" else rjieba.cut(w))
    return out


def _lexicon_value(word: str) -> tuple[float, bool]:
    """(value, negated inside the word) of one word; 不满意 is 满意 negated."""
    val = POSITIVE.get(word, 0.0) - NEGATIVE.get(word, 0.0)
    if val:
        return val, False
    for neg in ("不", "没", "没有"):
        rest = word[len(neg) :]
        if word.startswith(neg) and rest:
            inner = POSITIVE.get(rest, 0.0) - NEGATIVE.get(rest, 0.0)
            if inner:
                return inner, True
    return 0.0, False


def sentiment(text: str) -> tuple[str, float]:
    """Lexicon score in [-1, 1]; a negator flips the sentiment word right after it."""
    words = _pieces(fold(text))
    raw = 0.0
    hits = 0
    for i, w in enumerate(words):
        val, negated = _lexicon_value(w)
        if not val:
            continue
        prev = words[i - 1] if i else ""
        prev2 = words[i - 2] if i > 1 else ""
        if (
            negated
            or prev in NEGATORS
            or (prev in ("very", "so", "too", "很", "太", "非常") and prev2 in NEGATORS)
        ):
            val = -val * 0.8
        raw += val
        hits += 1
    excl = sum(1 for w in words if w in "!！")
    if raw and excl:
        raw *= 1 + min(excl, 3) * 0.1
    score = max(-1.0, min(1.0, raw / (1.5 + 0.5 * hits))) if hits else 0.0
    label = "positive" if score > 0.15 else "negative" if score < -0.15 else "neutral"
    return label, round(score, 3)


def intent(text: str) -> tuple[str, float]:
    folded = fold(text)
    scores: Counter[str] = Counter()
    for name, phrases in INTENTS.items():
        for p in phrases:
            if _contains(folded, p):
                scores[name] += 1 + (len(p) > 3)
    if not scores:
        return ("information", 0.4) if QUESTION.search(folded) else ("other", 0.3)
    best = max(_INTENT_PRIORITY, key=lambda n: (scores[n], -_INTENT_PRIORITY.index(n)))
    # Strong intents win over weaker ones they co-occur with (an angry refund request is a complaint).
    for n in _INTENT_PRIORITY[:3]:
        if scores[n]:
            best = n
            break
    total = sum(scores.values())
    conf = min(0.95, 0.5 + 0.45 * scores[best] / total * min(1.0, scores[best] / 2))
    return best, round(conf, 3)


def found(text: str, phrases: tuple[str, ...]) -> list[str]:
    folded = fold(text)
    return sorted({p for p in phrases if _contains(folded, p)})


def keywords(texts: list[str], limit: int = 8) -> list[str]:
    counts: Counter[str] = Counter()
    for t in texts:
        for tok in set(tokenize(t)):
            if len(tok) > 1 and not tok.isdigit() and tok not in ("much", "many"):
                counts[tok] += 1
    # Prefer whole words over the bigrams added for recall: drop a bigram inside a kept longer word.
    ranked = [w for w, _ in counts.most_common(limit * 3)]
    kept: list[str] = []
    for w in ranked:
        if any(w != k and w in k for k in kept):
            continue
        kept = [k for k in kept if not (k in w and k != w and counts[k] <= counts[w])]
        kept.append(w)
        if len(kept) >= limit:
            break
    return kept


def suggest_stage(
    turns: list[tuple[str, str]], intent_name: str, sent: str, buying: list[str]
) -> tuple[str, str]:
    """Funnel stage from who spoke and what the user signalled. `turns` are (role, text)."""
    user_turns = [t for r, t in turns if r == "user"]
    ours = [t for r, t in turns if r == "assistant"]
    if intent_name == "unsubscribe":
        return "closed_lost", "the user asked to stop being contacted"
    all_user = " ".join(user_turns)
    won = found(
        all_user,
        (
            "paid",
            "payment done",
            "transferred",
            "order placed",
            "已付款",
            "已下单",
            "付好了",
            "转账了",
            "已经买",
            "成交",
        ),
    )
    if won:
        return "closed_won", f"the user confirmed a purchase ({', '.join(won)})"
    if not user_turns:
        return ("contacted", "we wrote and the user has not answered") if ours else ("new", "no messages yet")
    if intent_name == "purchase" or len(buying) >= 2:
        return "follow_up", "the user shows buying intent: follow up with an offer"
    if intent_name == "complaint" or sent == "negative":
        return "follow_up", "the user is unhappy: follow up personally"
    return "replied", "the user replied"


def summarize(turns: list[tuple[str, str]], max_chars: int = 300) -> str:
    """The user's most informative sentences, in order, cut to `max_chars`."""
    user_sents = [s for r, t in turns if r == "user" for s in sentences(t)]
    if not user_sents:
        user_sents = [s for _, t in turns for s in sentences(t)]
    if not user_sents:
        return ""
    df: Counter[str] = Counter()
    toks = [set(tokenize(s)) for s in user_sents]
    for ts in toks:
        df.update(ts)
    scored = [
        (sum(df[t] for t in ts) / (1 + len(ts) ** 0.5) + (1.5 if QUESTION.search(fold(s)) else 0), i)
        for i, (s, ts) in enumerate(zip(user_sents, toks, strict=True))
    ]
    picked = sorted(i for _, i in sorted(scored, reverse=True)[:3])
    lang = detect_language(" ".join(user_sents))
    sep = "" if lang.startswith("zh") else " "
    return shorten(sep.join(user_sents[i] for i in picked), max_chars)


def analyze(turns: list[tuple[str, str]]) -> Analysis:
    user_text = " \n".join(t for r, t in turns if r == "user")
    basis = user_text or " \n".join(t for _, t in turns)
    last_user = next((t for r, t in reversed(turns) if r == "user"), basis)
    it, conf = intent(last_user)
    if it in ("other", "information", "greeting", "smalltalk"):
        # a strong intent earlier in the conversation still matters
        it2, conf2 = intent(basis)
        if it2 in ("unsubscribe", "complaint", "purchase", "pricing", "support"):
            it, conf = it2, round(conf2 * 0.9, 3)
    sent, score = sentiment(basis)
    lang = detect_language(basis)
    buying = found(basis, BUYING_SIGNALS)
    objections = found(basis, OBJECTIONS)
    questions = [s for r, t in turns if r == "user" for s in sentences(t) if QUESTION.search(fold(s))][:10]
    stage, reason = suggest_stage(turns, it, sent, buying)
    return Analysis(
        intent=it,
        intent_confidence=conf,
        sentiment=sent,
        sentiment_score=score,
        language=lang,
        stage=stage,
        stage_reason=reason,
        summary=summarize(turns),
        keywords=keywords([t for r, t in turns if r == "user"] or [basis]),
        buying_signals=buying,
        objections=objections,
        questions=questions,
        handoff_recommended=it == "complaint" or score <= -0.5,
    )
