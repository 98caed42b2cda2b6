"""One interface for every text provider, and the error every adapter raises.

A provider answers a `ChatRequest` (system prompt, history, the user's message and the retrieved
passages with their citations), streamed or whole, and may offer embeddings and a model list. HTTP
lives only in the adapter modules; use cases see this interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tgm_contracts import ErrorCode
from tgm_contracts.models.ai import Citation, ModelInfo
from tgm_runtime import DomainError


class ProviderError(DomainError):
    """A provider call failed; `code` is ours, `status` the provider's HTTP status if any. A
    `DomainError`, so the runtime answers with its code and message as they are."""

    def __init__(
        self,
        provider: str,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        details: Any | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, f"{provider}: {message}", details, retry_after)
        self.provider = provider
        self.status = status


@dataclass(slots=True)
class Passage:
    """A retrieved piece of knowledge given to the provider, numbered `[n]` in prompts."""

    n: int
    text: str
    citation: Citation
    title: str | None = None
    is_faq_answer: bool = False  # the FAQ answer that matched above bestThreshold
    is_faq: bool = False  # a FAQ pair: `title` is its question, `text` its answer
    relevance: float = 0.0  # coverage of the query by this passage, in [0, 1]


@dataclass(slots=True)
class ChatRequest:
    message: str
    system: str = ""
    history: list[tuple[str, str]] = field(default_factory=list)  # (role, content), oldest first
    passages: list[Passage] = field(default_factory=list)
    model: str | None = None
    temperature: float = 0.4
    max_chars: int = 600
    language: str = "en"
    tone: str = "friendly"
    use_emoji: bool = False
    seed: int | None = None
    user_name: str | None = None
    intent: str | None = None
    peer_key: str | None = None  # "<account>:<user>", a stable id for the provider's user
    conversation_id: str | None = None  # the provider's conversation with this peer, if it keeps one


@dataclass(slots=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    conversation_id: str | None = None
    citations: list[Citation] = field(default_factory=list)  # from the provider itself (MaiAgent, DmFlow)
    used_passages: list[int] = field(default_factory=list)  # our passages the text relies on
    confidence: float | None = None  # when the provider can judge (local, DmFlow FAQ)
    fallback: bool = False  # the provider said it had no answer
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def estimated(cls, prompt: str, text: str, model: str, **fields: Any) -> ChatResult:
        """A result with estimated token counts, for providers that report none."""
        return cls(
            text=text,
            model=model,
            prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(text),
            **fields,
        )


@runtime_checkable
class Provider(Protocol):
    name: str

    async def chat(self, req: ChatRequest) -> ChatResult: ...

    def stream(self, req: ChatRequest) -> AsyncIterator[str | ChatResult]:
        """Yield text deltas, then exactly one final `ChatResult` with the whole text."""
        ...

    async def models(self) -> list[ModelInfo]: ...

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Raise ProviderError(UNAVAILABLE) when the provider has no embeddings."""
        ...

    async def aclose(self) -> None: ...


class Embedder(Protocol):
    name: str
    model: str

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


def estimate_tokens(text: str) -> int:
    """Rough token count for providers that report none: ~4 Latin chars or 1 CJK char per token."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return cjk + max(0, (len(text) - cjk)) // 4 + (1 if text else 0)
