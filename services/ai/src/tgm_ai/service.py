"""Use cases of generation, memory and strategies. Handlers call one method each.

Generation is grounded: the strategy (persona, tone, rules, forbidden topics, scopes, provider) and
the user's memory shape the prompt; retrieved knowledge goes in as numbered passages whose citations
come back with the reply; the confidence decides the hand-off flag.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.commands import ai as C
from tgm_contracts.models.ai import (
    Citation,
    HandoffRules,
    MemoryFact,
    MemoryView,
    Strategy,
    Suggestion,
    Usage,
)

from .domain import analysis as A
from .domain import templates as T
from .domain.index import Scored
from .domain.text import detect_language, fold, shorten
from .knowledge import KnowledgeService, citation_of
from .providers.base import ChatRequest, ChatResult, Passage, ProviderError
from .providers_service import ProviderService
from .repos import MemoryRepo, StrategyRepo, new_id, now

log = logging.getLogger("tgm.ai.service")

Sink = Callable[[str], Awaitable[None]]
Publish = Callable[[Any], Awaitable[None]]


class NotFoundError(Exception):
    pass


class RuleError(Exception):
    """A request that breaks a rule the caller can fix."""


DEFAULT_STRATEGY = Strategy(id="builtin", name="Built-in default", created_at=now(), updated_at=now())


def _strategy(doc: dict[str, Any] | None, accounts: list[str] | None = None) -> Strategy:
    if doc is None:
        return DEFAULT_STRATEGY
    return Strategy.model_validate(
        {**{k: v for k, v in doc.items() if k != "_id"}, "id": doc["_id"], "account_ids": accounts or []}
    )


# --- memory --------------------------------------------------------------------------------------------

_NAME = [
    re.compile(r"\bmy name is ([A-Z][\w'-]{1,30})", re.I),
    re.compile(r"\bi'?m ([A-Z][a-z'-]{1,30})\b"),
    re.compile(r"(?:我叫|我的名字是|我是)([\u4e00-\u9fffA-Za-z]{1,10}?)(?:[，,。.!！]|$)"),
]
_CITY = [
    re.compile(r"\bi live in ([A-Z][\w -]{1,40}?)(?:[,.!?]|$)", re.I),
    re.compile(r"(?:我住在|我在)([\u4e00-\u9fff]{2,8}?)(?:[，,。.!！工上生]|$)"),
]
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def facts_from(message: str) -> dict[str, str]:
    """Fields a user states about themselves (name, city, email) in a message."""
    out: dict[str, str] = {}
    for rx in _NAME:
        m = rx.search(message)
        if m and m.group(1).lower() not in ("not", "interested", "fine", "good", "here", "sorry"):
            out["name"] = m.group(1).strip()
            break
    for rx in _CITY:
        m = rx.search(message)
        if m:
            out["city"] = m.group(1).strip()
            break
    m = _EMAIL.search(message)
    if m:
        out["email"] = m.group(0)
    return out


class MemoryService:
    """Memory per account and user. With DmFlow as the default provider, saved fields and tags are
    also written to the DmFlow user (memory-template fields by key, tags by name) and its fields are
    shown on read; DmFlow being unreachable never loses the local memory."""

    def __init__(self, repo: MemoryRepo, remote: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.repo = repo
        self.remote = remote

    @staticmethod
    def remote_user_id(account_id: str, user_id: str) -> str:
        return f"{account_id}_{user_id}"[:128]

    async def get_merged(self, account_id: str, user_id: str) -> MemoryView:
        m = await self.get(account_id, user_id)
        dm = await self.remote() if self.remote else None
        if dm is None:
            return m
        try:
            user = await dm.get_user(self.remote_user_id(account_id, user_id))
        except ProviderError as exc:
            log.warning("dmflow user not read: %s", exc.message)
            return m
        for f in user.get("fields") or []:
            if isinstance(f, dict) and f.get("key") and f["key"] not in m.fields:
                m.fields[str(f["key"])] = str(f.get("value", ""))
        names = [str(t["name"]) for t in user.get("tags") or [] if isinstance(t, dict) and t.get("name")]
        m.tags = list(dict.fromkeys(m.tags + names))
        return m

    async def _push(self, m: MemoryView) -> None:
        dm = await self.remote() if self.remote else None
        if dm is None:
            return
        try:
            by_name = {str(t.get("name")): str(t.get("id")) for t in await dm.tags()}
            await dm.update_user(
                self.remote_user_id(m.account_id, m.user_id),
                username=str(m.fields["name"]) if m.fields.get("name") else None,
                fields={k: v for k, v in m.fields.items() if k != "name"},
                tag_ids=[by_name[t] for t in m.tags if t in by_name],
            )
        except ProviderError as exc:
            log.warning("dmflow user not updated: %s", exc.message)

    @staticmethod
    def _view(account_id: str, user_id: str, doc: dict[str, Any] | None) -> MemoryView:
        if doc is None:
            return MemoryView(account_id=account_id, user_id=user_id)
        return MemoryView.model_validate({k: v for k, v in doc.items() if k != "_id"})

    async def get(self, account_id: str, user_id: str) -> MemoryView:
        return self._view(account_id, user_id, await self.repo.get(account_id, user_id))

    async def put(self, view: MemoryView) -> MemoryView:
        view.updated_at = now()
        await self.repo.put(view.model_dump(mode="python", by_alias=False))
        return view

    async def save(self, req: C.MemorySaveRequest) -> MemoryView:
        m = await self.get(req.account_id, req.user_id)
        replace = req.mode == "replace"
        if req.facts is not None:
            stamped = [f.model_copy(update={"at": f.at or now()}) for f in req.facts]
            if replace:
                m.facts = stamped
            else:
                known = {fold(f.text) for f in m.facts}
                m.facts += [f for f in stamped if fold(f.text) not in known]
            m.facts = m.facts[-200:]
        if req.preferences is not None:
            m.preferences = dict(req.preferences) if replace else {**m.preferences, **req.preferences}
        if req.fields is not None:
            m.fields = dict(req.fields) if replace else {**m.fields, **req.fields}
        if req.tags is not None:
            m.tags = list(dict.fromkeys(req.tags)) if replace else list(dict.fromkeys(m.tags + req.tags))
        if req.summary is not None:
            m.summary = req.summary
        saved = await self.put(m)
        await self._push(saved)
        return saved

    async def clear(self, req: C.MemoryClearRequest) -> int:
        return await self.repo.delete(req.account_id, req.user_id)

    async def learn(self, m: MemoryView, message: str) -> None:
        for k, v in facts_from(message).items():
            if m.fields.get(k) != v:
                m.fields[k] = v
                m.facts.append(MemoryFact(text=f"{k}: {v}", kind="fact", source="conversation", at=now()))
        m.facts = m.facts[-200:]


# --- strategies ----------------------------------------------------------------------------------------


class StrategyService:
    def __init__(self, repo: StrategyRepo) -> None:
        self.repo = repo

    async def list(self, req: C.GetStrategiesRequest) -> C.StrategyList:
        accounts = await self.repo.accounts_of()
        docs = await self.repo.all()
        default = next((d["_id"] for d in docs if d.get("is_default")), None)
        if req.account_id:
            s = await self.for_account(req.account_id)
            # The strategy in force, with every account it applies to (as in the full list).
            items = (
                [] if s.id == "builtin" else [s.model_copy(update={"account_ids": accounts.get(s.id, [])})]
            )
            return C.StrategyList(items=items, default_strategy_id=default)
        return C.StrategyList(
            items=[_strategy(d, accounts.get(d["_id"])) for d in docs], default_strategy_id=default
        )

    async def save(self, req: C.StrategyInput) -> Strategy:
        ts = now()
        if req.id:
            current = await self.repo.get(req.id)
            if current is None:
                raise NotFoundError(f"strategy {req.id} not found")
            created = current["created_at"]
            sid = req.id
        else:
            same = await self.repo.by_name(req.name)
            if same is not None:
                raise RuleError(
                    f"a strategy named {req.name!r} exists ({same['_id']}); give its id to update it"
                )
            sid, created = new_id("st"), ts
        doc = {
            **req.model_dump(mode="python", exclude={"id"}, by_alias=False),
            "_id": sid,
            "created_at": created,
            "updated_at": ts,
        }
        doc["handoff"] = req.handoff.model_dump(mode="python", by_alias=False)
        await self.repo.put(doc)
        return _strategy(doc, (await self.repo.accounts_of()).get(sid))

    async def apply(self, req: C.ApplyStrategyRequest) -> C.ApplyStrategyResult:
        if req.strategy_id is not None and await self.repo.get(req.strategy_id) is None:
            raise NotFoundError(f"strategy {req.strategy_id} not found")
        accounts = list(dict.fromkeys(req.account_ids))
        before = await self.repo.assignments(accounts)
        await self.repo.apply(req.strategy_id, accounts)
        return C.ApplyStrategyResult(
            strategy_id=req.strategy_id, account_ids=accounts, previous={a: before.get(a) for a in accounts}
        )

    async def get(self, strategy_id: str) -> Strategy:
        doc = await self.repo.get(strategy_id)
        if doc is None:
            raise NotFoundError(f"strategy {strategy_id} not found")
        return _strategy(doc)

    async def for_account(self, account_id: str | None) -> Strategy:
        if account_id:
            sid = await self.repo.assignment(account_id)
            if sid:
                doc = await self.repo.get(sid)
                if doc is not None:
                    return _strategy(doc)
        return _strategy(await self.repo.default())


# --- generation ----------------------------------------------------------------------------------------


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


def passages_from(faq: C.FaqMatch, hits: list[Scored], svc: KnowledgeService, query: str) -> list[Passage]:
    from .domain.text import tokenize

    q = tokenize(query)
    out: list[Passage] = []
    seen: set[str] = set()
    if faq.best is not None:
        e = svc.index.entries.get(faq.best.item.id)
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
        rel = svc.index.coverage(q, s.entry.terms)
        cite = citation_of(s.entry, s.score)
        if s.entry.type == "faq":
            answer = s.entry.meta.get("answer") or ""
            out.append(Passage(len(out) + 1, answer, cite, s.entry.question, is_faq=True, relevance=rel))
        else:
            text = svc.passage_text(s.entry)
            out.append(Passage(len(out) + 1, text, cite, s.entry.meta.get("title"), relevance=rel))
        seen.add(s.entry.id)
    return out


def _match_any(folded: str, phrases: list[str]) -> str | None:
    for p in phrases:
        fp = fold(p).strip()
        if fp and (
            re.search(rf"(?<![a-z]){re.escape(fp)}(?![a-z])", folded) if fp.isascii() else fp in folded
        ):
            return p
    return None


class GenerationService:
    def __init__(
        self,
        knowledge: KnowledgeService,
        providers: ProviderService,
        memory: MemoryService,
        strategies: StrategyService,
        publish: Publish,
        defaults: Callable[[], Awaitable[Any]],
    ) -> None:
        self.knowledge = knowledge
        self.providers = providers
        self.memory = memory
        self.strategies = strategies
        self.publish = publish
        self.defaults = defaults  # -> AiDefaults (handoff threshold, max reply chars)

    async def _strategy_for(self, strategy_id: str | None, account_id: str | None) -> Strategy:
        return (
            await self.strategies.get(strategy_id)
            if strategy_id
            else await self.strategies.for_account(account_id)
        )

    async def _provider_name(self, requested: str | None, s: Strategy) -> str:
        return requested or s.provider or await self.providers.default_name()

    async def _run(self, name: str, req: ChatRequest, sink: Sink | None, operation: str) -> ChatResult:
        try:
            provider = await self.providers.provider(name)
        except ProviderError as exc:
            await self.providers._record(name, "unknown", False, None, time.perf_counter(), operation, exc)
            raise
        if sink is None:
            return await self.providers.chat(provider, req, operation)
        final: ChatResult | None = None
        async for item in self.providers.stream(provider, req, operation):
            if isinstance(item, ChatResult):
                final = item
            elif item:
                await sink(item)
        if final is None:
            raise ProviderError(name, ErrorCode.UNAVAILABLE, "the stream ended without a result")
        return final

    # --- ai-generate-response ----------------------------------------------------------------------

    async def generate_response(
        self, req: C.GenerateResponseRequest, sink: Sink | None = None
    ) -> C.GeneratedReply:
        t0 = time.perf_counter()
        s = await self._strategy_for(req.strategy_id, req.account_id)
        defaults = await self.defaults()
        rules: HandoffRules = s.handoff
        threshold = rules.confidence_below if s.id != "builtin" else defaults.handoff_confidence_below
        max_chars = (
            min(s.max_reply_chars, defaults.max_reply_chars)
            if s.id != "builtin"
            else defaults.max_reply_chars
        )
        provider_name = await self._provider_name(req.provider, s)
        lang = s.language if s.language != "auto" else detect_language(req.message)
        memory = await self.memory.get(req.account_id, req.user_id)
        user_name = req.user_name or (str(memory.fields.get("name")) if memory.fields.get("name") else None)
        folded = fold(req.message)
        intent, _ = A.intent(req.message)
        sentiment, sent_score = A.sentiment(req.message)
        rng = random.Random(req.seed) if req.seed is not None else random.Random()
        handoff_reason: str | None = None
        canned: str | None = None
        asked = _match_any(folded, rules.keywords)
        forbidden = _match_any(folded, s.forbidden_topics)
        if forbidden:
            canned = T.canned(T.FORBIDDEN_REPLY, lang=lang, rng=rng)
            if rules.on_forbidden_topic:
                handoff_reason = f"forbidden topic: {forbidden}"
        elif asked:
            canned = T.canned(T.HANDOFF_REPLY, lang=lang, rng=rng)
            handoff_reason = f"the user asked for a human ({asked})"
        scopes = req.scopes or s.knowledge_scopes or ["default"]
        faq: C.FaqMatch | None = None
        citations: list[Citation] = []
        result: ChatResult | None = None
        if canned is not None:
            text, confidence, model, used_provider = canned, 1.0, "local-rules", "local"
            if sink is not None:
                await sink(text)
        else:
            rs = await self.providers.retrieval()
            faq, hits, _ = await self.knowledge.retrieve(req.message, scopes, rs.top_k)
            passages = passages_from(faq, hits, self.knowledge, req.message)
            chat = ChatRequest(
                message=req.message,
                system=system_prompt(s, memory, req.system_prompt, user_name),
                history=[(t.role, t.content) for t in req.history if t.role != "system"],
                passages=passages,
                model=req.model or s.model,
                temperature=s.temperature,
                max_chars=max_chars,
                language=lang,
                tone=s.tone,
                use_emoji=s.use_emoji,
                seed=req.seed,
                user_name=user_name,
                intent=intent,
                peer_key=f"{req.account_id}:{req.user_id}",
                conversation_id=memory.provider_conversations.get(provider_name),
            )
            result = await self._run(provider_name, chat, sink, "generate-response")
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
                text = T.canned(T.HANDOFF_REPLY, lang=lang, rng=rng)
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
        reply = C.GeneratedReply(
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
        await self._event(req, reply, sentiment)
        return reply

    async def _event(self, req: C.GenerateResponseRequest, reply: C.GeneratedReply, sentiment: str) -> None:
        from tgm_contracts.events_ai import AiResponseGenerated

        try:
            await self.publish(
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
        except Exception as exc:
            log.warning("ai-response-generated not published: %s", exc)

    # --- ai-suggest-reply --------------------------------------------------------------------------

    async def suggest(self, req: C.SuggestReplyRequest) -> C.SuggestReplyResult:
        s = await self._strategy_for(req.strategy_id, req.account_id)
        provider_name = await self._provider_name(req.provider, s)
        lang = s.language if s.language != "auto" else detect_language(req.message)
        memory = await self.memory.get(req.account_id, req.user_id)
        scopes = req.scopes or s.knowledge_scopes or ["default"]
        rs = await self.providers.retrieval()
        faq, hits, _ = await self.knowledge.retrieve(req.message, scopes, rs.top_k)
        passages = passages_from(faq, hits, self.knowledge, req.message)
        by_n = {p.n: p for p in passages}
        base = ChatRequest(
            message=req.message,
            system=system_prompt(s, memory, None, None),
            history=[(t.role, t.content) for t in req.history if t.role != "system"],
            passages=passages,
            model=s.model,
            temperature=s.temperature,
            max_chars=s.max_reply_chars,
            language=lang,
            tone=s.tone,
            use_emoji=s.use_emoji,
            peer_key=f"{req.account_id}:{req.user_id}",
        )
        out: list[Suggestion] = []
        model = "local-extractive"
        used_provider = "local"
        if provider_name != "local":
            # One candidate from the configured provider (no conversation id: suggestions must not
            # advance the real conversation), the others written locally in other tones.
            r = await self._run(provider_name, base, None, "suggest-reply")
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
            lead = T.SUGGEST_LEAD["zh" if lang.startswith("zh") else "en"]
            qs = " / ".join(h.item.question or "" for h in faq.suggestions[:3])
            out.append(
                Suggestion(
                    text=T.localize(lead, lang) + qs,
                    confidence=0.4,
                    style="clarify",
                    citations=[h.citation for h in faq.suggestions[:3]],
                )
            )
        out = out[: req.count]
        intent, _ = A.intent(req.message)
        handoff = intent in ("complaint", "unsubscribe") or max((x.confidence for x in out), default=0) < 0.3
        return C.SuggestReplyResult(
            suggestions=out,
            provider=used_provider,
            model=model,
            handoff=handoff,
            handoff_reason=f"intent {intent}"
            if intent in ("complaint", "unsubscribe")
            else ("low confidence" if handoff else None),
        )

    # --- writing -----------------------------------------------------------------------------------

    async def _write_remote(
        self,
        provider_name: str,
        instruction: str,
        count: int,
        max_chars: int,
        lang: str,
        sink: Sink | None,
        operation: str,
    ) -> tuple[list[str], ChatResult]:
        req = ChatRequest(
            message=instruction,
            system="You write short texts for Telegram.",
            max_chars=max_chars * count,
            language=lang,
            temperature=0.9,
        )
        r = await self._run(provider_name, req, sink, operation)
        lines = [re.sub(r"^\s*(?:\d+[.)、]|[-*•])\s*", "", ln).strip() for ln in r.text.splitlines()]
        items = [shorten(x.strip('"“”'), max_chars) for x in lines if x.strip()]
        if not items:
            raise ProviderError(provider_name, ErrorCode.UNAVAILABLE, "the provider returned no text")
        return items[:count], r

    async def _texts(
        self,
        *,
        requested: str | None,
        strategy_id: str | None,
        lang: str,
        count: int,
        max_chars: int,
        local: Callable[[random.Random], list[str]],
        instruction: str,
        sink: Sink | None,
        operation: str,
        seed: int | None,
    ) -> tuple[list[str], str, str, Usage, float]:
        t0 = time.perf_counter()
        s = await self.strategies.get(strategy_id) if strategy_id else await self.strategies.for_account(None)
        name = await self._provider_name(requested, s)
        if name in ("openai", "maiagent"):
            items, r = await self._write_remote(name, instruction, count, max_chars, lang, sink, operation)
            usage = Usage(prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens)
            return items, name, r.model, usage, round((time.perf_counter() - t0) * 1000, 2)
        # `local` (and DmFlow, a flow bot that does not write free text) use the template writer.
        items = local(random.Random(seed) if seed is not None else random.Random())
        if sink is not None:
            for i, x in enumerate(items):
                await sink(x + ("\n" if i < len(items) - 1 else ""))
        await self.providers._record(
            "local", "local-templates", True, ChatResult(text="", model=""), t0, operation
        )
        return items, "local", "local-templates", Usage(), round((time.perf_counter() - t0) * 1000, 2)

    @staticmethod
    def _lang(lang: str, *texts: str | None) -> str:
        if lang != "auto":
            return lang
        basis = " ".join(t for t in texts if t)
        return detect_language(basis) if basis else "en"

    async def message(self, req: C.GenerateMessageRequest, sink: Sink | None = None) -> C.GeneratedTexts:
        lang = self._lang(req.language, req.topic, req.context)
        instruction = (
            f"Write {req.count} different {req.style} Telegram messages about: {req.topic}. "
            + (f"Context: {req.context}. " if req.context else "")
            + f"Each under {req.max_chars} characters, in {lang}. One per line, no numbering."
        )
        items, name, model, usage, ms = await self._texts(
            requested=req.provider,
            strategy_id=req.strategy_id,
            lang=lang,
            count=req.count,
            max_chars=req.max_chars,
            local=lambda rng: T.messages(
                topic=req.topic,
                context=req.context,
                lang=lang,
                style=req.style,
                count=req.count,
                max_chars=req.max_chars,
                rng=rng,
            ),
            instruction=instruction,
            sink=sink,
            operation="generate-message",
            seed=req.seed,
        )
        return C.GeneratedTexts(
            messages=items, language=lang, provider=name, model=model, usage=usage, latency_ms=ms
        )

    async def welcome(self, req: C.GenerateWelcomeRequest, sink: Sink | None = None) -> C.GeneratedTexts:
        lang = self._lang(req.language, req.group_name, req.topic, req.user_name)
        instruction = (
            f"Write {req.count} different {req.style} welcome messages for new members of the Telegram "
            f"group {req.group_name or 'our group'}"
            + (f" about {req.topic}" if req.topic else "")
            + (f", greeting {req.user_name}" if req.user_name else "")
            + f". Each under {req.max_chars} characters, in {lang}. One per line."
        )
        items, name, model, usage, ms = await self._texts(
            requested=req.provider,
            strategy_id=None,
            lang=lang,
            count=req.count,
            max_chars=req.max_chars,
            local=lambda rng: T.welcome(
                group=req.group_name,
                topic=req.topic,
                user=req.user_name,
                lang=lang,
                style=req.style,
                count=req.count,
                max_chars=req.max_chars,
                rng=rng,
            ),
            instruction=instruction,
            sink=sink,
            operation="generate-welcome",
            seed=req.seed,
        )
        return C.GeneratedTexts(
            messages=items, language=lang, provider=name, model=model, usage=usage, latency_ms=ms
        )

    async def group_names(self, req: C.GenerateGroupNamesRequest) -> C.GroupNames:
        lang = self._lang(req.language, " ".join(req.keywords), req.topic)
        instruction = (
            f"Suggest {req.count} distinct {req.style} Telegram group names using the keywords "
            f"{', '.join(req.keywords)}"
            + (f" about {req.topic}" if req.topic else "")
            + f". Each at most {req.max_chars} characters, in {lang}. One per line, no numbering."
        )
        items, name, model, _, _ = await self._texts(
            requested=req.provider,
            strategy_id=None,
            lang=lang,
            count=req.count,
            max_chars=req.max_chars,
            local=lambda rng: T.group_names(
                keywords=req.keywords,
                topic=req.topic,
                lang=lang,
                style=req.style,
                count=req.count,
                max_chars=req.max_chars,
                rng=rng,
            ),
            instruction=instruction,
            sink=None,
            operation="generate-group-names",
            seed=req.seed,
        )
        items = list(dict.fromkeys(x[: req.max_chars] for x in items))
        return C.GroupNames(names=items, language=lang, provider=name, model=model)

    # --- analysis ----------------------------------------------------------------------------------

    async def analyze(self, req: C.AnalyzeConversationRequest) -> C.ConversationAnalysis:
        turns: list[tuple[str, str]] = [(t.role, t.content) for t in req.messages if t.role != "system"] or [
            (t.role, t.content) for t in req.messages
        ]
        a = A.analyze(turns)
        provider_name = req.provider or "local"
        summary, model = a.summary, "local-rules"
        if provider_name in ("openai", "maiagent"):
            transcript = "\n".join(f"{r}: {c}" for r, c in turns[-40:])
            r = await self._run(
                provider_name,
                ChatRequest(
                    message=f"Summarise this conversation in two sentences, in {a.language}:\n{transcript}",
                    max_chars=400,
                    language=a.language,
                ),
                None,
                "analyze-conversation",
            )
            summary, model = shorten(r.text.strip(), 400) or summary, r.model
        elif provider_name == "dmflow":
            provider_name = "local"  # a flow bot cannot summarise; the rules do
        if req.remember and req.account_id and req.user_id:
            m = await self.memory.get(req.account_id, req.user_id)
            m.summary = summary
            for _, text in turns:
                await self.memory.learn(m, text)
            await self.memory.put(m)
        return C.ConversationAnalysis(
            intent=a.intent,
            intent_confidence=a.intent_confidence,
            sentiment=a.sentiment,
            sentiment_score=a.sentiment_score,
            language=a.language,
            stage_suggestion=a.stage,
            stage_reason=a.stage_reason,
            summary=summary,
            keywords=a.keywords,
            buying_signals=a.buying_signals,
            objections=a.objections,
            questions=a.questions,
            handoff_recommended=a.handoff_recommended,
            provider=provider_name,
            model=model,
        )
