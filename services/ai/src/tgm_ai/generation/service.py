"""Replies: `ai-generate-response` (grounded, with citations, a confidence and the hand-off decision)
and `ai-suggest-reply` (candidates in several tones).

Generation is grounded: the strategy (persona, tone, rules, forbidden topics, scopes, provider) and
the user's memory shape the prompt; retrieved knowledge goes in as numbered passages whose citations
come back with the reply; the confidence decides the hand-off flag.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tgm_contracts import Event
from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.events_ai import AiResponseGenerated
from tgm_contracts.models.ai import Citation, HandoffRules, Strategy, Suggestion, Usage
from tgm_contracts.settings import AiDefaults
from tgm_runtime.routes import answers

from ..domain import analysis, templates
from ..domain.text import detect_language, fold
from ..knowledge.search import KnowledgeSearch
from ..memory.service import MemoryService
from ..providers.base import ChatRequest, ChatResult
from ..providers.service import ProviderService, Sink
from .prompts import match_any, passages_from, system_prompt
from .strategies import StrategyService


@dataclass
class ReplyService:
    search: KnowledgeSearch
    providers: ProviderService
    memory: MemoryService
    strategies: StrategyService
    emit: Callable[[Event], Awaitable[bool]]
    defaults: Callable[
        [], Awaitable[AiDefaults]
    ]  # the `ai` settings section: hand-off threshold, max reply chars

    # --- ai-generate-response ----------------------------------------------------------------------

    async def generate_response(
        self, req: ai_cmd.GenerateResponseRequest, sink: Sink | None = None
    ) -> ai_cmd.GeneratedReply:
        t0 = time.perf_counter()
        s = await self.strategies.for_request(req.strategy_id, req.account_id)
        defaults = await self.defaults()
        rules: HandoffRules = s.handoff
        threshold = rules.confidence_below if s.id != "builtin" else defaults.handoff_confidence_below
        max_chars = (
            min(s.max_reply_chars, defaults.max_reply_chars)
            if s.id != "builtin"
            else defaults.max_reply_chars
        )
        provider_name = await self.providers.choose(req.provider, s.provider)
        lang = s.language if s.language != "auto" else detect_language(req.message)
        memory = await self.memory.get(req.account_id, req.user_id)
        user_name = req.user_name or (str(memory.fields.get("name")) if memory.fields.get("name") else None)
        folded = fold(req.message)
        intent, _ = analysis.intent(req.message)
        _, sent_score = analysis.sentiment(req.message)
        rng = random.Random(req.seed) if req.seed is not None else random.Random()
        handoff_reason: str | None = None
        canned: str | None = None
        asked = match_any(folded, rules.keywords)
        forbidden = match_any(folded, s.forbidden_topics)
        if forbidden:
            canned = templates.canned(templates.FORBIDDEN_REPLY, lang=lang, rng=rng)
            if rules.on_forbidden_topic:
                handoff_reason = f"forbidden topic: {forbidden}"
        elif asked:
            canned = templates.canned(templates.HANDOFF_REPLY, lang=lang, rng=rng)
            handoff_reason = f"the user asked for a human ({asked})"
        faq: ai_cmd.FaqMatch | None = None
        citations: list[Citation] = []
        result: ChatResult | None = None
        if canned is not None:
            text, confidence, model, used_provider = canned, 1.0, "local-rules", "local"
            if sink is not None:
                await sink(text)
        else:
            faq, chat = await self._grounded(
                req, s, lang, system_prompt(s, memory, req.system_prompt, user_name)
            )
            chat.model = req.model or s.model
            chat.max_chars = max_chars
            chat.seed, chat.user_name, chat.intent = req.seed, user_name, intent
            chat.conversation_id = memory.provider_conversations.get(provider_name)
            passages = chat.passages
            result = await self.providers.call(provider_name, chat, sink, "generate-response")
            used_provider, model = provider_name, result.model
            by_n = {p.n: p for p in passages}
            citations = [by_n[n].citation for n in result.used_passages if n in by_n] + list(result.citations)
            if result.confidence is not None:
                confidence = result.confidence
            elif result.fallback:
                confidence = 0.1
            else:
                support = max((by_n[n].relevance for n in result.used_passages if n in by_n), default=0.0)
                top = passages[0].relevance if passages else 0.0
                confidence = min(0.95, 0.45 + 0.5 * max(support, top * 0.6))
            text = result.text.strip()
            if not text:  # the model said it cannot answer
                text = templates.canned(templates.HANDOFF_REPLY, lang=lang, rng=rng)
                if sink is not None:
                    await sink(text)
            if result.fallback:
                handoff_reason = handoff_reason or "the knowledge does not answer this question"
            elif confidence < threshold:
                handoff_reason = handoff_reason or f"low confidence ({confidence:.2f} < {threshold:.2f})"
            if not handoff_reason and rules.on_negative_sentiment and sent_score <= -0.5:
                handoff_reason = f"the user seems upset (sentiment {sent_score:.2f})"
            if not handoff_reason and intent in ("complaint", "unsubscribe"):
                handoff_reason = f"intent {intent} needs a person"
        if req.remember:
            if result is not None and result.conversation_id:
                memory.provider_conversations[used_provider] = result.conversation_id
            await self.memory.learn(memory, req.message)
            memory.turns += 1
            await self.memory.put(memory)
        latency = round((time.perf_counter() - t0) * 1000, 2)
        reply = ai_cmd.GeneratedReply(
            text=text,
            citations=citations,
            confidence=round(max(0.0, min(1.0, confidence)), 3),
            handoff=handoff_reason is not None,
            handoff_reason=handoff_reason,
            faq=faq,
            language=lang,
            provider=used_provider,
            model=model,
            strategy_id=None if s.id == "builtin" else s.id,
            conversation_id=result.conversation_id if result else None,
            usage=Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
            if result
            else Usage(),
            latency_ms=latency,
        )
        reply.stream_id = req.stream_id
        await self._event(req, reply)
        return reply

    async def _event(self, req: ai_cmd.GenerateResponseRequest, reply: ai_cmd.GeneratedReply) -> None:
        await self.emit(
            AiResponseGenerated(
                account_id=req.account_id,
                user_id=req.user_id,
                provider=reply.provider,
                model=reply.model,
                confidence=reply.confidence,
                handoff=reply.handoff,
                handoff_reason=reply.handoff_reason,
                citations=len(reply.citations),
                chars=len(reply.text),
                latency_ms=reply.latency_ms,
                strategy_id=reply.strategy_id,
                prompt_tokens=reply.usage.prompt_tokens,
                completion_tokens=reply.usage.completion_tokens,
            )
        )

    async def _grounded(
        self,
        req: ai_cmd.GenerateResponseRequest | ai_cmd.SuggestReplyRequest,
        s: Strategy,
        lang: str,
        system: str,
    ) -> tuple[ai_cmd.FaqMatch, ChatRequest]:
        """The provider request for a reply to `req.message` under strategy `s`: the knowledge of the
        request's (or the strategy's) scopes as numbered passages, the conversation so far, and the
        strategy's model, temperature, length, tone and emoji; with the FAQ match the passages came from."""
        scopes = req.scopes or s.knowledge_scopes or ["default"]
        rs = await self.providers.retrieval()
        faq, hits, _ = await self.search.retrieve(req.message, scopes, rs.top_k)
        return faq, ChatRequest(
            message=req.message,
            system=system,
            history=[(t.role, t.content) for t in req.history if t.role != "system"],
            passages=passages_from(faq, hits, self.search.cache.index, req.message),
            model=s.model,
            temperature=s.temperature,
            max_chars=s.max_reply_chars,
            language=lang,
            tone=s.tone,
            use_emoji=s.use_emoji,
            peer_key=f"{req.account_id}:{req.user_id}",
        )

    # --- ai-suggest-reply --------------------------------------------------------------------------

    @answers(ai_cmd.AiSuggestReply)
    async def suggest(self, req: ai_cmd.SuggestReplyRequest) -> ai_cmd.SuggestReplyResult:
        s = await self.strategies.for_request(req.strategy_id, req.account_id)
        provider_name = await self.providers.choose(req.provider, s.provider)
        lang = s.language if s.language != "auto" else detect_language(req.message)
        memory = await self.memory.get(req.account_id, req.user_id)
        faq, base = await self._grounded(req, s, lang, system_prompt(s, memory, None, None))
        by_n = {p.n: p for p in base.passages}
        out: list[Suggestion] = []
        model = "local-extractive"
        used_provider = "local"
        if provider_name != "local":
            # One candidate from the configured provider (no conversation id: suggestions must not
            # advance the real conversation), the others written locally in other tones.
            r = await self.providers.call(provider_name, base, None, "suggest-reply")
            if r.text.strip():
                out.append(
                    Suggestion(
                        text=r.text.strip(),
                        confidence=r.confidence or 0.6,
                        style=s.tone,
                        citations=[by_n[n].citation for n in r.used_passages if n in by_n]
                        + list(r.citations),
                    )
                )
            model, used_provider = r.model, provider_name
        seed = req.seed if req.seed is not None else random.randrange(1 << 30)
        tones = list(
            dict.fromkeys([s.tone, "professional", "casual", "concise", "enthusiastic", "formal", "friendly"])
        )
        i = 0
        while len(out) < req.count and i < 12:
            tone = tones[i % len(tones)]
            base.tone, base.seed = tone, seed + i
            r = await self.providers.local.chat(base)
            if r.text not in {x.text for x in out}:
                out.append(
                    Suggestion(
                        text=r.text,
                        confidence=r.confidence or 0.5,
                        style=tone,
                        citations=[by_n[n].citation for n in r.used_passages if n in by_n],
                    )
                )
            i += 1
        if faq.suggestions and len(out) < req.count + 1 and faq.best is None:
            lead = templates.SUGGEST_LEAD["zh" if lang.startswith("zh") else "en"]
            qs = " / ".join(h.item.question or "" for h in faq.suggestions[:3])
            out.append(
                Suggestion(
                    text=templates.localize(lead, lang) + qs,
                    confidence=0.4,
                    style="clarify",
                    citations=[h.citation for h in faq.suggestions[:3]],
                )
            )
        out = out[: req.count]
        intent, _ = analysis.intent(req.message)
        handoff = intent in ("complaint", "unsubscribe") or max((x.confidence for x in out), default=0) < 0.3
        return ai_cmd.SuggestReplyResult(
            suggestions=out,
            provider=used_provider,
            model=model,
            handoff=handoff,
            handoff_reason=f"intent {intent}"
            if intent in ("complaint", "unsubscribe")
            else ("low confidence" if handoff else None),
        )
