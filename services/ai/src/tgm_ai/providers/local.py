"""The `local` provider: no network, no model. Replies are extractive and grounded: a FAQ answer that
matched, or the passage sentences that cover the question best, framed in the strategy's tone, with
the passages it used as citations. Deterministic under a seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

from tgm_contracts.models.ai import ModelInfo

from ..domain import templates as T
from ..domain.text import detect_language, fold, sentences, tokenize
from .base import ChatRequest, ChatResult, Passage, ProviderError

MODEL = "local-extractive"


def _coverage(q: set[str], s: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.get(t, 1.0) for t in q)
    return sum(weights.get(t, 1.0) for t in q & s) / total if total else 0.0


def _weights(passages: list[Passage], q: set[str]) -> dict[str, float]:
    # Terms rare across the passages weigh more (a local IDF), so "the"-like terms don't carry a match.
    docs = [set(tokenize(p.text)) for p in passages]
    n = len(docs) or 1
    return {t: 1.0 + (n - sum(1 for d in docs if t in d)) / n for t in q}


class LocalProvider:
    name = "local"

    async def chat(self, req: ChatRequest) -> ChatResult:
        rng = random.Random(req.seed) if req.seed is not None else random.Random()
        lang = req.language if req.language and req.language != "auto" else detect_language(req.message)
        name = req.user_name
        folded = fold(req.message)
        faq = next((p for p in req.passages if p.is_faq_answer), None)

        def frame(core: str) -> str:
            return T.frame_reply(
                core,
                lang=lang,
                tone=req.tone,
                rng=rng,
                use_emoji=req.use_emoji,
                max_chars=req.max_chars,
                greet_name=name,
            )

        if faq is not None:
            text = frame(faq.text)
            return self._result(req, text, [faq.n], faq.relevance or 0.8)
        picked, score = self._extract(req)
        if picked:
            core_sep = "" if lang.startswith("zh") else " "
            core = core_sep.join(s for _, s in picked)
            text = frame(core)
            used = sorted({n for n, _ in picked})
            return self._result(req, text, used, min(0.9, 0.2 + 0.7 * score))
        if req.intent == "greeting" or (
            not req.passages
            and len(folded) <= 20
            and req.intent in (None, "greeting")
            and any(w in folded for w in ("hi", "hello", "hey", "你好", "您好", "嗨"))
        ):
            return self._result(req, T.canned(T.GREETING_REPLY, lang=lang, rng=rng, name=name), [], 0.75)
        if any(w in folded for w in ("thank", "thx", "谢谢", "感谢")):
            return self._result(req, T.canned(T.THANKS_REPLY, lang=lang, rng=rng, name=name), [], 0.75)
        result = self._result(req, T.canned(T.UNSURE_REPLY, lang=lang, rng=rng), [], 0.1)
        result.fallback = True
        return result

    def _extract(self, req: ChatRequest) -> tuple[list[tuple[int, str]], float]:
        """Best sentences (passage number, sentence) covering the question, in passage order."""
        q = set(tokenize(req.message))
        if not q or not req.passages:
            return [], 0.0
        # A message often mixes small talk with the question: judge coverage per sentence of the
        # message too, so "Hi, I'm Ann from Lisbon. What does Pro cost?" is about the price.
        parts = [p for p in (set(tokenize(x)) for x in sentences(req.message)) if p]
        queries = [q, *parts] if len(parts) > 1 else [q]
        w = _weights(req.passages, q)

        def cover(terms: set[str]) -> float:
            return max(_coverage(qq, terms, w) for qq in queries)

        scored: list[tuple[float, int, int, str]] = []
        for rank, p in enumerate(req.passages):
            # A FAQ answer is judged by its question too: the answer rarely repeats the question's words.
            q_cov = 0.9 * cover(set(tokenize(p.title))) if p.is_faq and p.title else 0.0
            for i, s in enumerate(sentences(p.text)):
                if len(s) < 2:
                    continue
                cov = max(cover(set(tokenize(s))), q_cov)
                if cov > 0:
                    # earlier (better-ranked) passages and earlier sentences win ties
                    scored.append((cov - 0.02 * rank - 0.001 * i, p.n, i, s))
        if not scored:
            return [], 0.0
        scored.sort(key=lambda x: -x[0])
        best = scored[0][0]
        if best < 0.2:
            return [], best
        budget = int(req.max_chars * 0.8)
        chosen: list[tuple[float, int, int, str]] = []
        used = 0
        for item in scored:
            if item[0] < best * 0.6 or len(chosen) >= 3:
                break
            if used + len(item[3]) > budget and chosen:
                continue
            chosen.append(item)
            used += len(item[3])
        chosen.sort(key=lambda x: (x[1], x[2]))
        whole = cover(set(tokenize(" ".join(c[3] for c in chosen))))
        return [(c[1], c[3]) for c in chosen], max(best, whole)

    def _result(self, req: ChatRequest, text: str, used: list[int], confidence: float) -> ChatResult:
        prompt = req.system + req.message + "".join(p.text for p in req.passages)
        return ChatResult.estimated(
            prompt, text, MODEL, used_passages=used, confidence=round(max(0.0, min(1.0, confidence)), 3)
        )

    async def stream(self, req: ChatRequest) -> AsyncIterator[str | ChatResult]:
        result = await self.chat(req)
        # Words for Latin text, a few characters at a time for Chinese: the cadence a reader expects.
        text = result.text
        step = 4 if any("\u4e00" <= ch <= "\u9fff" for ch in text) else 0
        pieces = [text[i : i + step] for i in range(0, len(text), step)] if step else _words(text)
        for piece in pieces:
            yield piece
            await asyncio.sleep(0)
        yield result

    async def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                provider="local",
                id=MODEL,
                name="Extractive answers grounded in the knowledge base",
                kind="chat",
                default=True,
            ),
            ModelInfo(
                provider="local",
                id="local-templates",
                name="Template writer (welcome, names, messages)",
                kind="chat",
            ),
            ModelInfo(
                provider="local",
                id="local-rules",
                name="Rule-based analysis (intent, sentiment, stage)",
                kind="chat",
            ),
        ]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        from tgm_contracts import ErrorCode

        raise ProviderError("local", ErrorCode.UNAVAILABLE, "the local provider has no embeddings")

    async def aclose(self) -> None:
        return None


def _words(text: str) -> list[str]:
    out: list[str] = []
    cur = ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out
