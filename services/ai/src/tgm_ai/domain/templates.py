"""Phrase banks and template generation for the `local` provider: welcome messages, group names,
outreach messages and reply framing. Variety comes from a seeded `random.Random`, so the same seed
gives the same text and no seed gives fresh text each call.

Banks are written in English and traditional Chinese; simplified Chinese is derived by `to_simplified`.
The banks themselves are data, in `phrases.json` beside this module (one object per bank, keyed by
language): copy can be edited, reviewed or translated there without touching the code that frames it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .text import fold, shorten

#: Every phrase bank by name (`LEAD_IN`, `WELCOME`, ...), read once at import.
PHRASES: dict[str, Any] = json.loads((Path(__file__).parent / "phrases.json").read_text(encoding="utf-8"))


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


EMOJI: Any = PHRASES["EMOJI"]

# --- replies ---------------------------------------------------------------------------------------

LEAD_IN: Any = PHRASES["LEAD_IN"]
GREETING_REPLY: Any = PHRASES["GREETING_REPLY"]
THANKS_REPLY: Any = PHRASES["THANKS_REPLY"]
UNSURE_REPLY: Any = PHRASES["UNSURE_REPLY"]
SUGGEST_LEAD: Any = PHRASES["SUGGEST_LEAD"]
HANDOFF_REPLY: Any = PHRASES["HANDOFF_REPLY"]
FORBIDDEN_REPLY: Any = PHRASES["FORBIDDEN_REPLY"]
CLOSERS: Any = PHRASES["CLOSERS"]


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

WELCOME: Any = PHRASES["WELCOME"]
TOPIC_LINE: Any = PHRASES["TOPIC_LINE"]


@dataclass(frozen=True)
class Batch:
    """What every generator is asked for besides its subject: the language, the style, how many
    texts, how long each may be, and the randomness (seeded for repeatable output)."""

    lang: str
    style: str
    count: int
    max_chars: int
    rng: random.Random


def welcome(batch: Batch, *, group: str | None, topic: str | None, user: str | None) -> list[str]:
    lang, style, count, max_chars, rng = batch.lang, batch.style, batch.count, batch.max_chars, batch.rng
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

NAME_PATTERNS: Any = PHRASES["NAME_PATTERNS"]
NAME_PREFIX: Any = PHRASES["NAME_PREFIX"]


def group_names(batch: Batch, *, keywords: list[str], topic: str | None) -> list[str]:
    lang, style, count, max_chars, rng = batch.lang, batch.style, batch.count, batch.max_chars, batch.rng
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

MESSAGE_OPENERS: Any = PHRASES["MESSAGE_OPENERS"]
MESSAGE_BODIES: Any = PHRASES["MESSAGE_BODIES"]
MESSAGE_CTAS: Any = PHRASES["MESSAGE_CTAS"]


def messages(batch: Batch, *, topic: str, context: str | None) -> list[str]:
    lang, style, count, max_chars, rng = batch.lang, batch.style, batch.count, batch.max_chars, batch.rng
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
