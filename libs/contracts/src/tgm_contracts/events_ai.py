"""Events the ai service publishes on TGM_EVENTS."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .enums import Service
from .events import Event


class RagDocumentProgress(Event):
    """Indexing progress of a document added with `rag-add-document` (several per large document)."""

    OWNER: ClassVar[Service] = Service.AI
    NAME: ClassVar[str] = "rag-document-progress"

    document_id: str
    scope: str
    state: Literal["pending", "processing", "ready", "failed"]
    progress: float = Field(ge=0, le=1)
    stage: Literal["reading", "extracting", "chunking", "indexing", "embedding", "done", "failed"]
    chunks: int = 0
    error: str | None = None


class KnowledgeChanged(Event):
    """Knowledge of a scope changed; caches of retrieval results for it are stale."""

    OWNER: ClassVar[Service] = Service.AI
    NAME: ClassVar[str] = "knowledge-changed"

    scope: str | None = Field(description="Null when every scope changed (clear without scope).")
    action: Literal["added", "removed", "cleared", "document-added", "document-removed"]
    count: int = Field(ge=0)
    document_id: str | None = None


class AiResponseGenerated(Event):
    """A reply was generated for a user (not necessarily sent: `handoff` asks for a human)."""

    OWNER: ClassVar[Service] = Service.AI
    NAME: ClassVar[str] = "ai-response-generated"

    account_id: str
    user_id: str
    provider: str
    model: str
    confidence: float = Field(ge=0, le=1)
    handoff: bool
    handoff_reason: str | None = None
    citations: int = 0
    chars: int = 0
    latency_ms: float = 0.0
    strategy_id: str | None = None
    prompt_tokens: int = Field(0, ge=0, description="Tokens the provider counted (0 when it does not say).")
    completion_tokens: int = Field(0, ge=0)


class AiProviderFailed(Event):
    """A provider call failed (for alerts): bad key, timeout, malformed answer, unavailable."""

    OWNER: ClassVar[Service] = Service.AI
    NAME: ClassVar[str] = "ai-provider-failed"

    provider: str
    model: str | None = None
    code: str
    message: str
    operation: str


class AiSettingsChanged(Event):
    """Provider configuration changed (never carries keys)."""

    OWNER: ClassVar[Service] = Service.AI
    NAME: ClassVar[str] = "ai-settings-changed"

    version: int
    default_provider: str
    embedding_provider: str
    changed: list[str] = Field(default_factory=list, description="Top-level sections that changed.")
