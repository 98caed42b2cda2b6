"""A seeded, realistic workload for the automation bench: keyword sets as `keyword_sets` documents
(mixed Chinese/English, mostly literal, some regex and fuzzy) and a mixed-language group-chat stream
in which a share of messages carries a keyword (sometimes traditional, full-width or misspelt)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

HAN = (
    "价格代理出售收购兑换汇率渠道支付宝微信账号会员包月注册飞机群推广引流客服担保交易平台项目合作"
    "招商加盟批发零售优惠活动折扣返利佣金提现充值余额钱包数字货币矿机算力节点云服务器香港美国日本"
    "新加坡线路加速翻墙软件破解激活教程资源下载会员卡点卡礼品卡游戏装备代练陪玩直播带货电商跨境物流"
)
# traditional forms of some of the above (the stream writes them; keywords are simplified)
TRAD = {
    "价": "價",
    "格": "格",
    "汇": "匯",
    "渠": "渠",
    "账": "賬",
    "号": "號",
    "会": "會",
    "员": "員",
    "飞": "飛",
    "机": "機",
    "广": "廣",
    "担": "擔",
    "保": "保",
    "交": "交",
    "易": "易",
    "台": "臺",
    "项": "項",
    "买": "買",
    "卖": "賣",
    "钱": "錢",
    "优": "優",
    "惠": "惠",
    "动": "動",
    "扣": "扣",
    "现": "現",
    "值": "值",
    "余": "餘",
    "额": "額",
    "货": "貨",
    "币": "幣",
    "点": "點",
    "节": "節",
}
LATIN = [
    "usdt",
    "btc",
    "eth",
    "trx",
    "bnb",
    "sol",
    "ton",
    "vpn",
    "proxy",
    "socks5",
    "airdrop",
    "staking",
    "mining",
    "wallet",
    "exchange",
    "otc",
    "p2p",
    "telegram",
    "whatsapp",
    "wechat",
    "alipay",
    "paypal",
    "visa",
    "mastercard",
    "iphone",
    "android",
    "netflix",
    "spotify",
    "chatgpt",
    "premium",
    "account",
    "bulk",
    "cheap",
    "price",
    "discount",
    "promo",
    "crypto",
    "trading",
    "signal",
    "bot",
    "api",
    "server",
    "vps",
    "cloud",
    "hosting",
    "domain",
    "ssl",
    "seo",
    "traffic",
    "marketing",
    "agency",
    "followers",
    "likes",
    "views",
    "shop",
    "store",
    "deal",
    "offer",
]
LONG = [w for w in LATIN if len(w) >= 6]  # what operators make fuzzy: names people misspell
FILLER_ZH = [
    "大家好",
    "请问一下",
    "有没有人知道",
    "今天天气不错",
    "哈哈哈",
    "收到",
    "谢谢老板",
    "在吗",
    "这个怎么弄",
    "刚进群",
    "群主好",
    "晚上一起吃饭吗",
    "明天见",
    "我也是这么想的",
    "好的没问题",
    "周末有什么安排",
    "这个群好热闹",
    "刚下班",
    "早上好各位",
    "有空聊聊",
]
FILLER_EN = [
    "hi everyone",
    "good morning",
    "anyone here?",
    "thanks a lot",
    "see you tomorrow",
    "lol",
    "how is it going",
    "just joined the group",
    "nice to meet you all",
    "what time is the meeting",
    "I agree with that",
    "can someone help me",
    "the weather is great today",
    "brb",
    "ok sounds good",
]
ASKS = ["多少钱", "怎么买", "how much", "price?", "有吗", "哪里有", "求推荐", "where can I get", "dm me"]


@dataclass(frozen=True)
class Workload:
    sets: list[dict[str, Any]]
    keywords: list[dict[str, Any]]  # flat, with match_type resolved and "threshold"
    messages: list[str]


def _han_word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HAN) for _ in range(n))


def _keyword(rng: random.Random, i: int, kind: str) -> str:
    latin = rng.choice(LATIN)
    if kind == "regex":
        term = _han_word(rng, 2) if i % 2 else latin
        forms = [
            rf"{term}.{{0,8}}(价格|多少钱|how much|price)",
            rf"(买|卖|收|出)\s*{term}",
            rf"{term}\s*[:：]?\s*\d{{2,6}}",
            rf"\b{latin}\d{{1,3}}\b" if not i % 2 else rf"{term}(群|频道|channel)",
        ]
        if i % 40 == 0:  # a few with no literal a prefilter can use: they run on every message
            return r"1[3-9]\d{9}" if i % 80 == 0 else r"\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"
        return forms[i % len(forms)]
    # literal or fuzzy: a Han word, a Latin word, a compound or a phrase; a serial keeps them unique
    shape = i % 5
    if shape == 0:
        return _han_word(rng, rng.randint(2, 4)) + str(i)
    if shape == 1:
        return f"{latin}{i}"
    if shape == 2:
        return _han_word(rng, 2) + latin + str(i)
    if shape == 3:
        return f"{latin} {rng.choice(LATIN)} {i}"
    return _han_word(rng, rng.randint(4, 6)) + str(i)


def make(keywords: int = 10_000, messages: int = 20_000, seed: int = 42, sets: int = 20) -> Workload:
    """`keywords` over `sets` sets: 95 % literal (90 % contains, 5 % exact), 3 % regex, 2 % fuzzy."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    flat: list[dict[str, Any]] = []
    per = keywords // sets
    n = 0
    for s in range(sets):
        kws = []
        threshold = rng.choice([0.8, 0.85, 0.9])
        for _ in range(per if s < sets - 1 else keywords - n):
            r = n % 100
            kind = "exact" if r < 5 else "regex" if r < 8 else "fuzzy" if r < 10 else "contains"
            if kind == "fuzzy":  # words people misspell (brands, products), not serial numbers
                while True:
                    shape = n % 3
                    kw = (
                        rng.choice(LONG)
                        if shape == 0
                        else f"{rng.choice(LATIN)} {rng.choice(LONG)}"
                        if shape == 1
                        else _han_word(rng, rng.randint(3, 5))
                    )
                    if kw not in {k["keyword"] for k in kws}:
                        break
            else:
                kw = _keyword(rng, n, kind)
            doc = {"id": f"kw_{n}", "keyword": kw, "match_type": kind, "case_sensitive": n % 97 == 0}
            kws.append(doc)
            flat.append({**doc, "threshold": threshold})
            n += 1
        docs.append(
            {
                "_id": f"ks_{s}",
                "name": f"set {s}",
                "match_mode": "contains",
                "fuzzy_threshold": threshold,
                "keywords": kws,
                "exclude_keywords": [f"广告{s}", f"spam{s}"],
                "is_active": True,
            }
        )
    literal = [k for k in flat if k["match_type"] in ("contains", "exact")]
    stream: list[str] = []
    for m in range(messages):
        parts: list[str] = []
        for _ in range(rng.randint(1, 3)):
            parts.append(rng.choice(FILLER_ZH) if rng.random() < 0.55 else rng.choice(FILLER_EN))
        roll = rng.random()
        if roll < 0.01:  # a misspelt fuzzy-keyword word
            word = rng.choice(LONG)
            cut = rng.randrange(len(word))
            parts.append(f"{word[:cut]}{word[cut + 1 :]} {rng.choice(ASKS)}")
        elif roll < 0.08:  # carries a literal keyword, sometimes disguised
            kw = rng.choice(literal)["keyword"]
            if rng.random() < 0.3:
                kw = "".join(TRAD.get(c, c) for c in kw)
            if rng.random() < 0.1:
                kw = kw.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
            parts.insert(rng.randrange(len(parts) + 1), kw + rng.choice(ASKS))
        elif roll < 0.10:  # an ask that regexes look for
            parts.append(f"{rng.choice('买卖收出')} {rng.choice(LATIN)} {rng.choice(ASKS)}")
        elif roll < 0.11:
            parts.append(f"联系电话 1{rng.randint(3, 9)}{rng.randint(10**8, 10**9 - 1)}")
        if m % 50 == 0:
            parts.append("x" * rng.randint(100, 400))  # an occasional long paste
        stream.append(rng.choice([" ", "，", "! ", ""]).join(parts))
    return Workload(docs, flat, stream)
