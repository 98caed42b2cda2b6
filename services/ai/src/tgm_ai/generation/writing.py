"""Writing short texts: `ai-generate-message`, `ai-generate-welcome`, `ai-generate-group-names`.

A model writes them when the provider in force is a chat model (OpenAI-compatible, MaiAgent): one
instruction, one text per line. `local` (and DmFlow, a flow bot that does not write free text) use
the template writer of `domain.templates`, seeded so that the same seed gives the same texts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from tgm_contracts import ErrorCode
from tgm_contracts.commands.ai import (
    AiGenerateGroupNames,
    GeneratedTexts,
    GenerateGroupNamesRequest,
    GenerateMessageRequest,
    GenerateWelcomeRequest,
    GroupNames,
)
from tgm_contracts.models.ai import Usage
from tgm_runtime.routes import answers

from ..domain import templates
from ..domain.text import detect_language, shorten
from ..providers.base import ChatRequest, ChatResult, ProviderError
from ..providers.service import ProviderService, Sink
from .strategies import StrategyService


class WritingRequest(Protocol):
    """What the three writing commands have in common (read-only, so each may narrow the types)."""

    @property
    def provider(self) -> str | None: ...
    @property
    def style(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def max_chars(self) -> int: ...
    @property
    def seed(self) -> int | None: ...


#: A template writer of `domain.templates` with its own arguments bound (topic, group, keywords…).
TemplateWriter = Callable[[templates.Batch], list[str]]


@dataclass(frozen=True)
class Written:
    texts: list[str]
    provider: str
    model: str
    usage: Usage
    latency_ms: float

    def generated(self, lang: str) -> GeneratedTexts:
        return GeneratedTexts(
            messages=self.texts,
            language=lang,
            provider=self.provider,
            model=self.model,
            usage=self.usage,
            latency_ms=self.latency_ms,
        )


def language_of(lang: str, *texts: str | None) -> str:
    """The requested language, or the one the request's own words are in (`auto`)."""
    if lang != "auto":
        return lang
    basis = " ".join(t for t in texts if t)
    return detect_language(basis) if basis else "en"


@dataclass
class TextWriter:
    providers: ProviderService
    strategies: StrategyService

    async def _write_remote(
        self,
        provider_name: str,
        instruction: str,
        req: WritingRequest,
        lang: str,
        sink: Sink | None,
        operation: str,
    ) -> tuple[list[str], ChatResult]:
        chat = ChatRequest(
            message=instruction,
            system="You write short texts for Telegram.",
            max_chars=req.max_chars * req.count,
            language=lang,
            temperature=0.9,
        )
        r = await self.providers.call(provider_name, chat, sink, operation)
        lines = [re.sub(r"^\s*(?:\d+[.)、]|[-*•])\s*", "", ln).strip() for ln in r.text.splitlines()]
        items = [shorten(x.strip('"“”'), req.max_chars) for x in lines if x.strip()]
        if not items:
            raise ProviderError(provider_name, ErrorCode.UNAVAILABLE, "the provider returned no text")
        return items[: req.count], r

    async def _write(
        self,
        req: WritingRequest,
        *,
        lang: str,
        instruction: str,
        local: TemplateWriter,
        operation: str,
        sink: Sink | None = None,
        strategy_id: str | None = None,
    ) -> Written:
        t0 = time.perf_counter()
        s = await self.strategies.for_request(strategy_id, None)
        name = await self.providers.choose(req.provider, s.provider)
        if name in ("openai", "maiagent"):
            items, r = await self._write_remote(name, instruction, req, lang, sink, operation)
            usage = Usage(prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens)
            return Written(items, name, r.model, usage, round((time.perf_counter() - t0) * 1000, 2))
        rng = random.Random(req.seed) if req.seed is not None else random.Random()
        items = local(templates.Batch(lang, req.style, req.count, req.max_chars, rng))
        if sink is not None:
            for i, x in enumerate(items):
                await sink(x + ("\n" if i < len(items) - 1 else ""))
        await self.providers.record(
            "local", "local-templates", True, ChatResult(text="", model=""), t0, operation
        )
        return Written(
            items, "local", "local-templates", Usage(), round((time.perf_counter() - t0) * 1000, 2)
        )

    async def message(self, req: GenerateMessageRequest, sink: Sink | None = None) -> GeneratedTexts:
        lang = language_of(req.language, req.topic, req.context)
        instruction = (
            f"Write {req.count} different {req.style} Telegram messages about: {req.topic}. "
            + (f"Context: {req.context}. " if req.context else "")
            + f"Each under {req.max_chars} characters, in {lang}. One per line, no numbering."
        )
        local = partial(templates.messages, topic=req.topic, context=req.context)
        written = await self._write(
            req,
            lang=lang,
            instruction=instruction,
            local=local,
            operation="generate-message",
            sink=sink,
            strategy_id=req.strategy_id,
        )
        return written.generated(lang)

    async def welcome(self, req: GenerateWelcomeRequest, sink: Sink | None = None) -> GeneratedTexts:
        lang = language_of(req.language, req.group_name, req.topic, req.user_name)
        instruction = (
            f"Write {req.count} different {req.style} welcome messages for new members of the Telegram "
            f"group {req.group_name or 'our group'}"
            + (f" about {req.topic}" if req.topic else "")
            + (f", greeting {req.user_name}" if req.user_name else "")
            + f". Each under {req.max_chars} characters, in {lang}. One per line."
        )
        local = partial(templates.welcome, group=req.group_name, topic=req.topic, user=req.user_name)
        written = await self._write(
            req, lang=lang, instruction=instruction, local=local, operation="generate-welcome", sink=sink
        )
        return written.generated(lang)

    @answers(AiGenerateGroupNames)
    async def group_names(self, req: GenerateGroupNamesRequest) -> GroupNames:
        lang = language_of(req.language, " ".join(req.keywords), req.topic)
        instruction = (
            f"Suggest {req.count} distinct {req.style} Telegram group names using the keywords "
            f"{', '.join(req.keywords)}"
            + (f" about {req.topic}" if req.topic else "")
            + f". Each at most {req.max_chars} characters, in {lang}. One per line, no numbering."
        )
        local = partial(templates.group_names, keywords=req.keywords, topic=req.topic)
        written = await self._write(
            req, lang=lang, instruction=instruction, local=local, operation="generate-group-names"
        )
        names = list(dict.fromkeys(x[: req.max_chars] for x in written.texts))
        return GroupNames(names=names, language=lang, provider=written.provider, model=written.model)
