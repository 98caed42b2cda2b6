"""A deterministic bilingual (English / traditional Chinese) knowledge corpus with paraphrased queries.

Facts about fictional products: for each product four aspects (price, warranty, delivery, battery and
weight), each written as one English and one Chinese passage. Queries ask for one fact in words that
differ from the passage (`costs` vs `how much do I pay`, `保固` vs `保修多久`); the relevant passages of
a query are the two passages (English and Chinese) that state its fact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BRANDS = [
    "Zorvex",
    "Quilmar",
    "Taviro",
    "Brenlo",
    "Corvane",
    "Dulmet",
    "Elvora",
    "Fenrik",
    "Galdor",
    "Hestra",
    "Ivarno",
    "Jorvik",
    "Kelmaro",
    "Lunvex",
    "Morwyn",
    "Norvale",
    "Ostrel",
    "Pelgrin",
    "Quorra",
    "Ravens",
    "Solvane",
    "Tarrik",
    "Ulvena",
    "Varnok",
    "Wexlor",
    "Yarrow",
]
KINDS_EN = [
    "router",
    "headset",
    "smartwatch",
    "camera",
    "speaker",
    "tablet",
    "drone",
    "keyboard",
    "projector",
    "e-reader",
]
KINDS_ZH = ["路由器", "耳機", "智慧手錶", "相機", "喇叭", "平板", "無人機", "鍵盤", "投影機", "電子書閱讀器"]
REGIONS = [
    ("Europe", "歐洲"),
    ("Japan", "日本"),
    ("Canada", "加拿大"),
    ("Brazil", "巴西"),
    ("Australia", "澳洲"),
    ("Korea", "韓國"),
    ("Mexico", "墨西哥"),
    ("India", "印度"),
]

PASSAGES = {
    "price": (
        "The {name} {kind} is sold for {price} US dollars; volume discounts start at {n} units per order.",
        "{name}{kind_zh}的售價為{price}美元，單筆訂購{n}台以上享有批量折扣。",
    ),
    "warranty": (
        "Every {name} {kind} comes with a {w}-year warranty that covers manufacturing defects and repairs.",
        "每台{name}{kind_zh}都提供{w}年保固，涵蓋製造瑕疵與維修服務。",
    ),
    "delivery": (
        "Orders for the {name} {kind} leave our warehouse within {d} business days and reach {region} in about a week.",
        "{name}{kind_zh}的訂單會在{d}個工作天內從倉庫出貨，大約一週送達{region_zh}。",
    ),
    "battery": (
        "On a full charge the {name} {kind} keeps running for {h} hours, and the device weighs {g} grams.",
        "{name}{kind_zh}充飽電後可持續運作{h}小時，機身重量為{g}公克。",
    ),
}

QUERIES = {
    "price": (
        [
            "How much do I have to pay for the {name} {kind}?",
            "What's the price tag on a {name}?",
            "how expensive is the {name} {kind}",
            "Cost of one {name} {kind}?",
        ],
        [
            "{name}{kind_zh}要多少錢？",
            "買一台{name}價格是多少",
            "{name}{kind_zh}賣多少錢",
            "請問{name}怎麼收費？",
        ],
    ),
    "warranty": (
        [
            "What guarantee do I get if my {name} {kind} breaks?",
            "How long is the {name} covered for repairs?",
            "Is there any guarantee on the {name} {kind}?",
            "{name} {kind} defect coverage period?",
        ],
        [
            "{name}{kind_zh}保修多久？",
            "{name}壞了有沒有保障？",
            "{name}{kind_zh}的保修期是幾年",
            "{name}故障可以免費修嗎",
        ],
    ),
    "delivery": (
        [
            "When will a {name} {kind} arrive in {region}?",
            "How fast do you dispatch the {name}?",
            "Shipping time of the {name} {kind} to {region}?",
            "How many days until my {name} is sent out?",
        ],
        [
            "{name}{kind_zh}寄到{region_zh}要多久？",
            "{name}什麼時候會寄出？",
            "{name}{kind_zh}運送到{region_zh}需要幾天",
            "訂了{name}多久可以收到",
        ],
    ),
    "battery": (
        [
            "How long does the battery of the {name} {kind} last?",
            "How heavy is the {name}?",
            "What is the battery life of a {name} {kind}?",
            "{name} {kind}: hours per charge and weight?",
        ],
        [
            "{name}{kind_zh}電池能用多久？",
            "{name}有多重？",
            "{name}{kind_zh}續航力多長",
            "{name}一次充電可以用幾小時",
        ],
    ),
}


@dataclass(frozen=True)
class Passage:
    id: str
    fact: str  # product/aspect: the two language versions share it
    lang: str
    text: str


@dataclass(frozen=True)
class Query:
    text: str
    lang: str
    fact: str


def build(products: int = 260, queries: int = 240, seed: int = 20261121) -> tuple[list[Passage], list[Query]]:
    rng = random.Random(seed)
    names: list[tuple[str, int]] = []
    used: set[str] = set()
    while len(names) < products:
        name = f"{rng.choice(BRANDS)} {rng.choice('XKTRVMQ')}{rng.randrange(10, 99) * 10}"
        if name not in used:
            used.add(name)
            names.append((name, rng.randrange(len(KINDS_EN))))
    passages: list[Passage] = []
    values: dict[str, dict[str, object]] = {}
    for i, (name, kind) in enumerate(names):
        region, region_zh = rng.choice(REGIONS)
        v = {
            "name": name,
            "kind": KINDS_EN[kind],
            "kind_zh": KINDS_ZH[kind],
            "price": rng.randrange(49, 1999),
            "n": rng.choice([5, 10, 20, 50]),
            "w": rng.choice([1, 2, 3, 5]),
            "d": rng.randrange(1, 6),
            "region": region,
            "region_zh": region_zh,
            "h": rng.randrange(4, 60),
            "g": rng.randrange(90, 2400),
        }
        values[name] = v
        for aspect, (en, zh) in PASSAGES.items():
            fact = f"{i}/{aspect}"
            passages.append(Passage(f"p{i}-{aspect}-en", fact, "en", en.format(**v)))
            passages.append(Passage(f"p{i}-{aspect}-zh", fact, "zh", zh.format(**v)))
    out: list[Query] = []
    aspects = list(PASSAGES)
    for q in range(queries):
        i = rng.randrange(products)
        aspect = aspects[q % len(aspects)]
        lang = "en" if q % 2 == 0 else "zh"
        templates = QUERIES[aspect][0 if lang == "en" else 1]
        text = rng.choice(templates).format(**values[names[i][0]])
        out.append(Query(text, lang, f"{i}/{aspect}"))
    return passages, out
