"""What a provider is given: the system prompt from the strategy and the user's memory, the numbered
passages (with their citations) from retrieval, and the phrase matching of hand-off rules."""

from __future__ import annotations

import re

from tgm_contracts.models.ai import FaqMatch, MemoryView, Strategy

from ..domain.index import KnowledgeIndex, Scored
from ..domain.text import fold, tokenize
from ..knowledge.views import citation_of, passage_text
from ..providers.base import Passage


def system_prompt(s: Strategy, memory: MemoryView | None, extra: str | None, user_name: str | None) -> str:
    lines = []
    if s.persona:
        lines.append(f"You are: {s.persona}")
    lines.append(f"Tone: {s.tone}.{' Use an emoji now and then.' if s.use_emoji else ''}")
    lines += [f"Rule: {r}" for r in s.rules]
    if s.forbidden_topics:
        lines.append("Never discuss: " + ", ".join(s.forbidden_topics) + ".")
    if memory is not None:
        known = [f"{k}={v}" for k, v in memory.fields.items()] + [f.text for f in memory.facts[-5:]]
        known += [f"prefers {k}: {v}" for k, v in memory.preferences.items()]
        if known:
            lines.append("What we know about this user: " + "; ".join(dict.fromkeys(known)) + ".")
        if memory.summary:
            lines.append(f"Conversation so far: {memory.summary}")
    if user_name:
        lines.append(f"The user's name is {user_name}.")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def passages_from(faq: FaqMatch, hits: list[Scored], index: KnowledgeIndex, query: str) -> list[Passage]:
    """The numbered passages a provider gets: the matched FAQ answer first, then the hits."""
    q = tokenize(query)
    out: list[Passage] = []
    seen: set[str] = set()
    if faq.best is not None:
        e = index.entries.get(faq.best.item.id)
        if e is not None:
            out.append(
                Passage(
                    1,
                    e.meta.get("answer") or "",
                    citation_of(e, faq.best.match),
                    e.question,
                    is_faq_answer=True,
                    relevance=faq.best.match or 0.0,
                )
            )
            seen.add(e.id)
    for s in hits:
        if s.entry.id in seen:
            continue
        rel = index.coverage(q, s.entry.terms)
        cite = citation_of(s.entry, s.score)
        if s.entry.type == "faq":
            answer = s.entry.meta.get("answer") or ""
            out.append(Passage(len(out) + 1, answer, cite, s.entry.question, is_faq=True, relevance=rel))
        else:
            text = passage_text(s.entry)
            out.append(Passage(len(out) + 1, text, cite, s.entry.meta.get("title"), relevance=rel))
        seen.add(s.entry.id)
    return out


def match_any(folded: str, phrases: list[str]) -> str | None:
    for p in phrases:
        fp = fold(p).strip()
        if fp and (
            re.search(rf"(?<![a-z]){re.escape(fp)}(?![a-z])", folded) if fp.isascii() else fp in folded
        ):
            return p
    return None
