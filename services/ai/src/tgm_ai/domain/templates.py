"""Phrase banks and template generation for the `local` provider: welcome messages, group names,
outreach messages and reply framing. Variety comes from a seeded `random.Random`, so the same seed
gives the same text and no seed gives fresh text each call.

Banks are written in English and traditional Chinese; simplified Chinese is derived by `to_simplified`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .text import fold, shorten


def to_simplified(text: str) -> str:
    # `fold` also lower-cases and NFKC-normalises; keep the original case for Latin parts.
    out = []
    for ch in text:
        f = fold(ch)
        out.append(f if len(f) == 1 and "\u4e00" <= f <= "\u9fff" else ch)
    return "".join(out)


def localize(text: str, lang: str) -> str:
    return to_simplified(text) if lang == "zh-CN" else text


def bank_lang(lang: str) -> str:
    return "zh" if lang.startswith("zh") else "en"


EMOJI = {
    "friendly": ["😊", "🙂", "👋", "✨"],
    "casual": ["😄", "👍", "🙌"],
    "promotional": ["🔥", "🎉", "🚀", "💥"],
    "humorous": ["😂", "😜", "🤓"],
    "enthusiastic": ["🎉", "🚀", "🙌"],
}

# --- replies ---------------------------------------------------------------------------------------

LEAD_IN = {
    "en": {
        "friendly": ["Sure! ", "Happy to help! ", "Good question! ", ""],
        "professional": ["Thank you for your question. ", "Here is the information: ", ""],
        "casual": ["Sure thing — ", "Yep! ", ""],
        "formal": ["Thank you for your enquiry. ", "Please find the details below. "],
        "enthusiastic": ["Great question! ", "Absolutely! ", "Love that you asked! "],
        "concise": [""],
    },
    "zh": {
        "friendly": ["好的！", "沒問題～", "很高興為您解答！", ""],
        "professional": ["感謝您的提問。", "以下是相關資訊：", ""],
        "casual": ["好喔，", "可以呀，", ""],
        "formal": ["感謝您的來信。", "謹回覆如下："],
        "enthusiastic": ["好問題！", "當然可以！", "太好了！"],
        "concise": [""],
    },
}
GREETING_REPLY = {
    "en": [
        "Hi{name}! How can I help you today?",
        "Hello{name}! What would you like to know?",
        "Hey{name}! I'm here if you have any questions.",
    ],
    "zh": [
        "您好{name}！請問有什麼可以幫您？",
        "嗨{name}～想了解些什麼呢？",
        "哈囉{name}！有任何問題都可以問我喔。",
    ],
}
THANKS_REPLY = {
    "en": ["You're welcome{name}! Anything else I can do for you?", "Glad I could help{name}!"],
    "zh": ["不客氣{name}！還有其他需要幫忙的嗎？", "很高興能幫上忙{name}！"],
}
UNSURE_REPLY = {
    "en": [
        "I'm not sure about that yet — let me check with a colleague and get back to you.",
        "Good question! I don't want to give you wrong information, so I'll confirm and reply shortly.",
        "Let me double-check that for you and come back with an accurate answer.",
    ],
    "zh": [
        "這個問題我需要再確認一下，稍後由同事回覆您。",
        "為了不給您錯誤的資訊，我確認後馬上回覆您。",
        "讓我再核實一下，稍後給您準確的答覆。",
    ],
}
SUGGEST_LEAD = {"en": "Did you mean: ", "zh": "您是想問："}
HANDOFF_REPLY = {
    "en": [
        "Of course — I'm bringing in a colleague who will reply to you shortly.",
        "No problem, a member of our team will take over this conversation soon.",
    ],
    "zh": ["好的，我請專人稍後回覆您。", "沒問題，我們的同事很快會接手為您服務。"],
}
FORBIDDEN_REPLY = {
    "en": ["Sorry, that's not something I can discuss here. Is there anything else I can help with?"],
    "zh": ["抱歉，這個話題我這邊不方便討論。還有其他可以幫您的嗎？"],
}
CLOSERS = {
    "en": {
        "friendly": [" Let me know if you have other questions!", "", " Anything else?"],
        "professional": [" Please let us know if you need further details.", ""],
        "casual": ["", " Ping me anytime!"],
        "formal": [" We remain at your disposal."],
        "enthusiastic": [" Can't wait to help more!", ""],
        "concise": [""],
    },
    "zh": {
        "friendly": ["還有其他問題隨時問我喔！", "", "還需要什麼嗎？"],
        "professional": ["如需更多資訊，歡迎告知。", ""],
        "casual": ["", "有事再找我～"],
        "formal": ["如有任何疑問，敬請告知。"],
        "enthusiastic": ["很期待繼續幫您！", ""],
        "concise": [""],
    },
}


def pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def frame_reply(
    core: str,
    *,
    lang: str,
    tone: str,
    rng: random.Random,
    use_emoji: bool,
    max_chars: int,
    greet_name: str | None = None,
) -> str:
    bl = bank_lang(lang)
    lead = pick(rng, LEAD_IN[bl].get(tone, LEAD_IN[bl]["friendly"]))
    if greet_name and rng.random() < 0.5:
        lead = (f"{greet_name}，" if bl == "zh" else f"{greet_name}, ") + lead[:1].lower() + lead[1:]
    closer = pick(rng, CLOSERS[bl].get(tone, CLOSERS[bl]["friendly"]))
    emoji = (" " + pick(rng, EMOJI.get(tone, EMOJI["friendly"]))) if use_emoji else ""
    body = shorten(core, max(20, max_chars - len(lead) - len(closer) - len(emoji)))
    return localize(f"{lead}{body}{closer}{emoji}".strip(), lang)


def canned(kind: dict[str, list[str]], *, lang: str, rng: random.Random, name: str | None = None) -> str:
    bl = bank_lang(lang)
    suffix = f" {name}" if name else ""
    return localize(pick(rng, kind[bl]).replace("{name}", suffix), lang)


# --- welcome ---------------------------------------------------------------------------------------

WELCOME = {
    "en": [
        "Welcome{user} to {group}! 🎉 {topic_line}Feel free to introduce yourself and ask anything.",
        "Hi{user}, great to have you in {group}! {topic_line}Please read the pinned rules and say hello.",
        "A warm welcome{user} to {group}! {topic_line}We're glad you're here — questions are always welcome.",
        "Hello{user} and welcome aboard {group}! {topic_line}Jump in, share your thoughts and enjoy.",
        "Welcome{user}! You've joined {group}. {topic_line}Check the pinned message to get started.",
    ],
    "zh": [
        "歡迎{user}加入{group}！🎉 {topic_line}歡迎自我介紹，有問題隨時提出。",
        "嗨{user}，很高興你加入{group}！{topic_line}請先看看置頂的群規，再跟大家打聲招呼吧。",
        "熱烈歡迎{user}來到{group}！{topic_line}有任何問題都歡迎發問。",
        "歡迎{user}！{group}又多了一位新朋友。{topic_line}一起交流、互相學習吧！",
        "{user}你好，歡迎加入{group}！{topic_line}置頂訊息有入門指南，記得看看喔。",
    ],
}
TOPIC_LINE = {
    "en": [
        "Here we talk about {topic}. ",
        "This is the place for everything about {topic}. ",
        "We share news and tips on {topic}. ",
    ],
    "zh": [
        "這裡專門交流{topic}。",
        "在這裡可以聊所有關於{topic}的話題。",
        "我們會分享{topic}的最新消息與技巧。",
    ],
}


def welcome(
    *,
    group: str | None,
    topic: str | None,
    user: str | None,
    lang: str,
    style: str,
    count: int,
    max_chars: int,
    rng: random.Random,
) -> list[str]:
    bl = bank_lang(lang)
    group = group or ("our group" if bl == "en" else "本群")
    user_part = (f" {user}" if bl == "en" else user) if user else ""
    out: list[str] = []
    bank = list(WELCOME[bl])
    rng.shuffle(bank)
    for i in range(count):
        tpl = bank[i % len(bank)]
        topic_line = pick(rng, TOPIC_LINE[bl]).format(topic=topic) if topic else ""
        text = tpl.format(user=user_part, group=group, topic_line=topic_line)
        if style in EMOJI and i >= len(bank):
            text += " " + pick(rng, EMOJI[style])
        if style in ("formal", "professional"):
            text = text.replace(" 🎉", "").replace("🎉 ", "").replace("🎉", "")
        out.append(localize(shorten(" ".join(text.split()), max_chars), lang))
    return _dedupe(out, rng, lambda t: t + (" 😊" if bl == "en" else "😊"))


# --- group names -----------------------------------------------------------------------------------

NAME_PATTERNS = {
    "en": [
        "{kw} Community",
        "{kw} Club",
        "{kw} Insiders",
        "The {kw} Hub",
        "{kw} Talk",
        "{kw} & {kw2}",
        "{kw} Lounge",
        "{kw} Daily",
        "{kw} Circle",
        "{kw} Pros",
        "{kw} Network",
        "{kw} Corner",
        "{kw} HQ",
        "All About {kw}",
        "{kw} {kw2} Exchange",
        "{kw} Alliance",
        "{kw} Squad",
        "{kw} Academy",
    ],
    "zh": [
        "{kw}交流群",
        "{kw}俱樂部",
        "{kw}同好會",
        "{kw}愛好者聯盟",
        "{kw}資訊站",
        "{kw}與{kw2}",
        "{kw}學習圈",
        "{kw}每日分享",
        "{kw}大本營",
        "{kw}互助群",
        "{kw}研究所",
        "{kw}情報局",
        "{kw}{kw2}討論區",
        "{kw}朋友圈",
        "{kw}精英會",
        "{kw}小天地",
        "{kw}聚樂部",
        "{kw}基地",
    ],
}
NAME_PREFIX = {
    "promotional": {"en": ["🔥 ", "VIP ", "Official "], "zh": ["🔥", "官方", "VIP"]},
    "humorous": {"en": ["Crazy ", "Totally Serious ", "😜 "], "zh": ["瘋狂", "認真的", "😜"]},
    "professional": {"en": ["", "Official "], "zh": ["", "官方"]},
}


def group_names(
    *,
    keywords: list[str],
    topic: str | None,
    lang: str,
    style: str,
    count: int,
    max_chars: int,
    rng: random.Random,
) -> list[str]:
    bl = bank_lang(lang)
    kws = [k.strip() for k in keywords if k.strip()] or ([topic] if topic else ["Group"])
    if bl == "en":
        kws = [k[:1].upper() + k[1:] for k in kws]
    patterns = list(NAME_PATTERNS[bl])
    rng.shuffle(patterns)
    prefixes = NAME_PREFIX.get(style, {}).get(bl, [""])
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < count and attempts < count * 20:
        attempts += 1
        tpl = patterns[attempts % len(patterns)]
        kw = kws[attempts % len(kws)] if attempts > len(patterns) else kws[0 if len(out) % 2 == 0 else -1]
        kw2 = pick(rng, [k for k in kws if k != kw] or [topic or kw])
        if "{kw2}" in tpl and kw2 == kw:
            continue
        name = (pick(rng, prefixes) + tpl.format(kw=kw, kw2=kw2)).strip()
        if attempts > len(patterns) * 2:  # exhausted the patterns: add a distinguishing number
            name = f"{name} {rng.randint(2, 99)}"
        name = localize(name, lang)
        if len(name) > max_chars:
            name = name[:max_chars].rstrip(" &-")
        if name and name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out


# --- outreach messages -----------------------------------------------------------------------------

MESSAGE_OPENERS = {
    "en": {
        "friendly": ["Hi there! 👋", "Hey! Hope your day is going well.", "Hello friend!"],
        "professional": ["Hello,", "Good day,", "Dear customer,"],
        "casual": ["Hey!", "Yo!", "Hi!"],
        "promotional": ["🔥 Don't miss this!", "🎉 Big news!", "Limited time only!"],
        "formal": ["Dear Sir or Madam,", "Greetings,"],
        "humorous": ["Stop scrolling for a sec! 😄", "Plot twist:"],
    },
    "zh": {
        "friendly": ["哈囉！👋", "嗨，今天過得好嗎？", "朋友你好！"],
        "professional": ["您好，", "您好，打擾了，", "親愛的客戶您好，"],
        "casual": ["嘿！", "哈囉～", "嗨！"],
        "promotional": ["🔥 別錯過！", "🎉 好消息！", "限時活動！"],
        "formal": ["敬啟者：", "您好："],
        "humorous": ["先停下滑手機一秒！😄", "劇情反轉："],
    },
}
MESSAGE_BODIES = {
    "en": [
        "I wanted to share something about {topic} that might interest you.",
        "We've just put together an update on {topic}.",
        "If {topic} matters to you, this is worth a minute.",
        "Quick note about {topic}: {context}",
        "Here's what's new with {topic}. {context}",
        "People keep asking us about {topic}, so here's a short overview. {context}",
    ],
    "zh": [
        "想跟您分享一些關於{topic}的消息，您可能會感興趣。",
        "我們剛整理好{topic}的最新資訊。",
        "如果您關心{topic}，這則訊息值得花一分鐘看看。",
        "關於{topic}的小提醒：{context}",
        "{topic}有新動態了。{context}",
        "很多朋友問到{topic}，這裡簡單介紹一下。{context}",
    ],
}
MESSAGE_CTAS = {
    "en": {
        "default": [
            "Reply here if you'd like to know more.",
            "Happy to answer any questions!",
            "Just reply and I'll send the details.",
        ],
        "promotional": ["Reply now to grab your spot!", "Message me today for the offer!"],
        "formal": ["Please do not hesitate to contact us for further information."],
    },
    "zh": {
        "default": ["想了解更多可以直接回覆我。", "有任何問題都歡迎問我！", "回覆我就把詳細資料傳給您。"],
        "promotional": ["現在回覆就能搶先參加！", "今天私訊我就能享有優惠！"],
        "formal": ["如需進一步資訊，敬請與我們聯繫。"],
    },
}


def messages(
    *, topic: str, context: str | None, lang: str, style: str, count: int, max_chars: int, rng: random.Random
) -> list[str]:
    bl = bank_lang(lang)
    ctx = shorten(context, 160) if context else ""
    if ctx and ctx[-1] not in ".!?。！？…":
        ctx += "。" if bl == "zh" else "."
    openers = MESSAGE_OPENERS[bl].get(style, MESSAGE_OPENERS[bl]["friendly"])
    bodies = [b for b in MESSAGE_BODIES[bl] if ctx or "{context}" not in b]
    ctas = MESSAGE_CTAS[bl].get(style, MESSAGE_CTAS[bl]["default"])
    combos = [(o, b, c) for o in openers for b in bodies for c in ctas]
    rng.shuffle(combos)
    out: list[str] = []
    sep = "" if bl == "zh" else " "
    for o, b, c in combos[: max(count, 1) * 2]:
        text = sep.join([o, b.format(topic=topic, context=ctx).strip(), c])
        text = localize(shorten(" ".join(text.split()), max_chars), lang)
        if text not in out:
            out.append(text)
        if len(out) == count:
            break
    return _dedupe(out, rng, lambda t: t + "!") if len(out) >= count else out


def _dedupe(items: list[str], rng: random.Random, vary: Callable[[str], str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for t in items:
        while t in seen:
            t = vary(t)
        seen.add(t)
        out.append(t)
    return out
