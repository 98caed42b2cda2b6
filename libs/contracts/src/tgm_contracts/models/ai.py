"""Shared models of the AI domain: knowledge, citations, strategies, memory, provider settings, usage
and the chunk format of streamed completions.

Commands in `tgm_contracts.commands.ai` compose these; the gateway reads `StreamChunk` to turn a
stream of core-NATS messages into server-sent events.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ..base import HttpUrlStr, Request, Response, WireModel

# --- vocabularies --------------------------------------------------------------------------------

ProviderName = Literal["local", "openai", "maiagent", "dmflow"]
"""Where generated text comes from. `local` needs no network and no model and is the default."""

EmbeddingProviderName = Literal["none", "openai", "minilm"]
"""Where dense vectors come from; `none` means BM25 only."""

KnowledgeType = Literal["faq", "text", "document"]
"""`faq`: a question with its answer; `text`: a free snippet; `document`: a chunk of an added document."""

SearchMode = Literal["hybrid", "bm25", "dense"]

Tone = Literal["friendly", "professional", "casual", "formal", "enthusiastic", "concise"]

LanguageCode = Literal["auto", "zh-TW", "zh-CN", "en"]

Sentiment = Literal["positive", "neutral", "negative"]

FunnelStage = Literal["new", "contacted", "replied", "follow_up", "closed_won", "closed_lost"]
"""The funnel stages of the earlier client (`New|Contacted|Replied|Follow-up|Closed-Won|Closed-Lost`)."""

DocumentState = Literal["pending", "processing", "ready", "failed"]

Scope = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Knowledge base scope: `default`, an account group (`group:<id>`) or a strategy "
        "(`strategy:<id>`). Retrieval only sees the scopes it is given.",
    ),
]

PeerId = Annotated[str, Field(min_length=1, max_length=128, description="Telegram user/peer id or username.")]
AccountId = Annotated[str, Field(min_length=1, max_length=128, description="The fleet account that talks.")]
ShortText = Annotated[str, Field(min_length=1, max_length=4000)]


# --- knowledge and retrieval ---------------------------------------------------------------------


class Citation(Response):
    """Where a piece of an answer comes from: a knowledge item, and for documents the chunk and position."""

    knowledge_id: str
    document_id: str | None = None
    chunk_id: str | None = None
    chunk_index: int | None = Field(None, description="0-based index of the chunk inside its document.")
    start: int | None = Field(None, description="Character offset of the chunk in the extracted text.")
    end: int | None = Field(None, description="Character offset one past the chunk's end.")
    page: int | None = Field(None, description="1-based page of a PDF, when known.")
    title: str | None = None
    source: str | None = Field(None, description="URL or file name of the document, or `faq`/`text`.")
    score: float | None = None
    snippet: str | None = Field(None, description="The cited text, cut to a few hundred characters.")


class KnowledgeItem(Response):
    id: str
    scope: str
    type: KnowledgeType
    title: str | None = None
    question: str | None = None
    answer: str | None = None
    content: str | None = Field(None, description="Free text, or the chunk text of a document chunk.")
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    document_id: str | None = None
    chunk_index: int | None = None
    created_at: datetime
    updated_at: datetime | None = None


class KnowledgeHit(Response):
    """One retrieved item with its scores; `score` is the fused score the ranking used."""

    item: KnowledgeItem
    score: float
    bm25_score: float | None = None
    dense_score: float | None = None
    match: float | None = Field(
        None, description="FAQ question similarity in [0, 1], compared with bestThreshold/suggThreshold."
    )
    citation: Citation


class FaqMatch(Response):
    """DmFlow-style FAQ outcome: a best answer above `bestThreshold`, suggestions above `suggThreshold`,
    and `fallback` when nothing reaches `suggThreshold`."""

    best: KnowledgeHit | None = None
    suggestions: list[KnowledgeHit] = Field(default_factory=list)
    fallback: bool
    best_threshold: float
    sugg_threshold: float


class DocumentStatus(Response):
    document_id: str
    scope: str
    title: str | None = None
    filename: str | None = None
    mime_type: str | None = None
    source: str | None = Field(None, description="The URL, or `upload`/`text`.")
    state: DocumentState
    progress: float = Field(0.0, ge=0, le=1)
    bytes: int = 0
    pages: int | None = None
    chars: int = 0
    chunks: int = 0
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


# --- conversations -------------------------------------------------------------------------------


class ChatTurn(Request):
    """One turn of a conversation; `user` is the peer, `assistant` our account."""

    role: Literal["user", "assistant", "system"]
    content: Annotated[str, Field(min_length=1, max_length=8000)]
    at: datetime | None = None


class Usage(Response):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Suggestion(Response):
    text: str
    confidence: float = Field(ge=0, le=1)
    style: str | None = None
    citations: list[Citation] = Field(default_factory=list)


# --- strategies ----------------------------------------------------------------------------------


class HandoffRules(WireModel):
    """When a generated reply is flagged for a human instead of being sent automatically."""

    confidence_below: float = Field(0.35, ge=0, le=1)
    keywords: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: ["human", "agent", "manager", "真人", "客服", "人工", "經理", "经理"],
        max_length=100,
        description="A message containing any of these asks for a human.",
    )
    on_forbidden_topic: bool = True
    on_negative_sentiment: bool = True


class StrategyInput(Request):
    """A reply strategy: persona, tone, rules and where knowledge and text come from."""

    id: str | None = Field(None, max_length=64, description="Omit to create; give to update.")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str | None = Field(None, max_length=1000)
    persona: str | None = Field(None, max_length=2000, description="Who the account is, in a few lines.")
    tone: Tone = "friendly"
    language: LanguageCode = "auto"
    rules: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=50
    )
    forbidden_topics: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100
    )
    knowledge_scopes: list[Scope] = Field(default_factory=lambda: ["default"], max_length=20)
    provider: ProviderName | None = Field(None, description="Null uses the default provider of the settings.")
    model: str | None = Field(None, max_length=200)
    temperature: float = Field(0.4, ge=0, le=2)
    max_reply_chars: int = Field(600, ge=20, le=4000)
    use_emoji: bool = False
    greeting: str | None = Field(None, max_length=1000)
    handoff: HandoffRules = Field(default_factory=HandoffRules)
    is_default: bool = Field(False, description="Used for accounts with no strategy applied.")


class Strategy(Response):
    id: str
    name: str
    description: str | None = None
    persona: str | None = None
    tone: Tone = "friendly"
    language: LanguageCode = "auto"
    rules: list[str] = Field(default_factory=list)
    forbidden_topics: list[str] = Field(default_factory=list)
    knowledge_scopes: list[str] = Field(default_factory=list)
    provider: ProviderName | None = None
    model: str | None = None
    temperature: float = 0.4
    max_reply_chars: int = 600
    use_emoji: bool = False
    greeting: str | None = None
    handoff: HandoffRules = Field(default_factory=HandoffRules)
    is_default: bool = False
    account_ids: list[str] = Field(default_factory=list, description="Accounts this strategy is applied to.")
    created_at: datetime
    updated_at: datetime


# --- memory --------------------------------------------------------------------------------------

FieldValue = str | int | float | bool


class MemoryFact(WireModel):
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    kind: Literal["fact", "preference", "note", "event"] = "fact"
    importance: float = Field(0.5, ge=0, le=1)
    source: Literal["operator", "conversation", "provider"] = "operator"
    at: datetime | None = None


class MemoryView(Response):
    """What the AI remembers about one user as seen by one account (DmFlow: user fields and tags)."""

    account_id: str
    user_id: str
    facts: list[MemoryFact] = Field(default_factory=list)
    preferences: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, FieldValue] = Field(
        default_factory=dict, description="Custom fields, like DmFlow's memory template fields."
    )
    tags: list[str] = Field(default_factory=list)
    summary: str | None = None
    turns: int = Field(0, description="Messages generated for this user so far.")
    provider_conversations: dict[str, str] = Field(
        default_factory=dict, description="Provider -> its conversation id with this user (MaiAgent)."
    )
    updated_at: datetime | None = None


# --- provider settings ---------------------------------------------------------------------------


def _mask_note() -> str:
    return "Write-only: omit or null to keep the stored key, an empty string to remove it."


class OpenAiSettingsInput(Request):
    enabled: bool | None = None
    base_url: HttpUrlStr | None = Field(None, max_length=500, description="e.g. https://host/v1")
    api_key: str | None = Field(None, max_length=500, description=_mask_note())
    model: str | None = Field(None, max_length=200)
    embedding_model: str | None = Field(None, max_length=200)
    timeout_seconds: float | None = Field(None, gt=0, le=300)


class MaiAgentSettingsInput(Request):
    enabled: bool | None = None
    base_url: HttpUrlStr | None = Field(None, max_length=500)
    api_key: str | None = Field(None, max_length=500, description=_mask_note())
    chatbot_id: str | None = Field(None, max_length=100)
    timeout_seconds: float | None = Field(None, gt=0, le=300)


class DmFlowSettingsInput(Request):
    enabled: bool | None = None
    base_url: HttpUrlStr | None = Field(None, max_length=500)
    api_key: str | None = Field(None, max_length=500, description=_mask_note())
    platform: Literal["api", "line", "messenger", "telegram"] | None = None
    branch: Literal["prod", "dev"] | None = None
    faq_id: str | None = Field(None, max_length=64, description="FAQ domain used for FAQ answers.")
    tableqa_id: str | None = Field(None, max_length=64, description="Table-QA domain, if any.")
    timeout_seconds: float | None = Field(None, gt=0, le=300)


class RetrievalSettingsInput(Request):
    best_threshold: float | None = Field(None, ge=0.1, le=1)
    sugg_threshold: float | None = Field(None, ge=0.1, le=1)
    chunk_size: int | None = Field(None, ge=100, le=4000, description="Characters per chunk.")
    chunk_overlap: int | None = Field(None, ge=0, le=1000)
    rrf_k: int | None = Field(None, ge=1, le=1000, description="Reciprocal-rank-fusion constant.")
    top_k: int | None = Field(None, ge=1, le=20, description="Chunks given to generation.")


class OpenAiSettings(Response):
    enabled: bool = False
    base_url: str | None = None
    api_key_set: bool = False
    api_key_masked: str | None = None
    model: str | None = None
    embedding_model: str | None = None
    timeout_seconds: float = 30.0


class MaiAgentSettings(Response):
    enabled: bool = False
    base_url: str = "https://api.maiagent.ai/api/v1/"
    api_key_set: bool = False
    api_key_masked: str | None = None
    chatbot_id: str | None = None
    timeout_seconds: float = 60.0


class DmFlowSettings(Response):
    enabled: bool = False
    base_url: str | None = None
    api_key_set: bool = False
    api_key_masked: str | None = None
    platform: Literal["api", "line", "messenger", "telegram"] = "api"
    branch: Literal["prod", "dev"] = "prod"
    faq_id: str | None = None
    tableqa_id: str | None = None
    timeout_seconds: float = 30.0


class RetrievalSettings(Response):
    best_threshold: float = 0.6
    sugg_threshold: float = 0.3
    chunk_size: int = 800
    chunk_overlap: int = 120
    rrf_k: int = 60
    top_k: int = 4


class AiSettingsView(Response):
    """Provider configuration. Keys are never returned: only whether one is set and a masked hint."""

    default_provider: ProviderName = "local"
    embedding_provider: EmbeddingProviderName = "none"
    openai: OpenAiSettings = Field(default_factory=OpenAiSettings)
    maiagent: MaiAgentSettings = Field(default_factory=MaiAgentSettings)
    dmflow: DmFlowSettings = Field(default_factory=DmFlowSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    minilm_available: bool = Field(
        False, description="Whether the optional packaged MiniLM model is installed."
    )
    version: int = 0
    updated_at: datetime | None = None


class ModelInfo(Response):
    provider: ProviderName
    id: str
    name: str | None = None
    kind: Literal["chat", "embedding", "faq", "flow"] = "chat"
    available: bool = True
    default: bool = False
    detail: str | None = None


class ProviderError(Response):
    code: str
    message: str


class UsageRow(Response):
    day: date
    provider: str
    model: str
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_total: float = 0.0
    latency_ms_avg: float = 0.0
    latency_ms_max: float = 0.0


# --- streaming -----------------------------------------------------------------------------------


class StreamChunk(WireModel):
    """One core-NATS message on `subjects.stream_chunk(stream_id)`.

    Deltas come as `{"seq": n, "delta": "...", "done": false}` with `seq` counting from 0; the stream
    ends with exactly one `{"seq": n, "done": true, "data": <the command's full response>}` or
    `{"seq": n, "done": true, "error": {"code", "message"}}`. The gateway forwards each as an SSE event.
    """

    seq: int = Field(ge=0)
    delta: str = ""
    done: bool = False
    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _final_carries_outcome(self) -> StreamChunk:
        if self.done and self.data is None and self.error is None:
            raise ValueError("a final chunk carries data or error")
        if not self.done and (self.data is not None or self.error is not None):
            raise ValueError("only the final chunk carries data or error")
        return self


StreamId = Annotated[
    str,
    Field(
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Set by the caller (the gateway) to receive the text as it is generated on "
        "`tgm.stream.<streamId>`; the reply still carries the whole response.",
    ),
]
