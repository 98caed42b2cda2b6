"""The 26 `ai` commands: knowledge and retrieval, generation, memory, strategies, settings and usage.

All are owned by the ai service. Generation commands accept an optional `streamId`: the text then
also streams as `StreamChunk`s on `subjects.stream_chunk(streamId)` while the reply carries the whole
response.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from ..base import Ack, Confirmed, Empty, HttpUrlStr, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.ai import (
    AccountId,
    AiSettingsView,
    ChatTurn,
    Citation,
    DmFlowSettingsInput,
    DocumentStatus,
    EmbeddingProviderName,
    FaqMatch,
    FieldValue,
    FunnelStage,
    KnowledgeHit,
    KnowledgeItem,
    KnowledgeType,
    LanguageCode,
    MaiAgentSettingsInput,
    MemoryFact,
    MemoryView,
    ModelInfo,
    OpenAiSettingsInput,
    PeerId,
    ProviderError,
    ProviderName,
    RetrievalSettingsInput,
    Scope,
    SearchMode,
    Sentiment,
    Strategy,
    StrategyInput,
    StreamId,
    Suggestion,
    Usage,
    UsageRow,
)
from ..streams import UPLOAD_NAME

A = Service.AI
AI = Domain.AI

Query = Annotated[str, Field(min_length=1, max_length=2000)]
Tag = Annotated[str, Field(min_length=1, max_length=50)]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]

# --- knowledge -----------------------------------------------------------------------------------


class KnowledgeInput(Request):
    """A FAQ pair (`question` + `answer`) or a free text (`content`)."""

    type: Literal["faq", "text"] = "faq"
    question: str | None = Field(None, min_length=1, max_length=1000)
    answer: str | None = Field(None, min_length=1, max_length=8000)
    content: str | None = Field(None, min_length=1, max_length=20000)
    title: str | None = Field(None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    source: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> KnowledgeInput:
        if self.type == "faq" and not (self.question and self.answer):
            raise ValueError("a faq item needs question and answer")
        if self.type == "text" and not self.content:
            raise ValueError("a text item needs content")
        return self


class AddKnowledgeRequest(Request):
    """Either one item given by the flat fields, or `items`, or accepted `candidateIds` of
    `learn-from-history` (each becomes a FAQ item and the candidate is marked accepted)."""

    scope: Scope = "default"
    type: Literal["faq", "text"] | None = None
    question: str | None = Field(None, min_length=1, max_length=1000)
    answer: str | None = Field(None, min_length=1, max_length=8000)
    content: str | None = Field(None, min_length=1, max_length=20000)
    title: str | None = Field(None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    source: str | None = Field(None, max_length=500)
    items: list[KnowledgeInput] | None = Field(None, min_length=1, max_length=500)
    candidate_ids: list[ItemId] | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_way(self) -> AddKnowledgeRequest:
        flat = any(v is not None for v in (self.type, self.question, self.answer, self.content))
        ways = sum([flat, self.items is not None, self.candidate_ids is not None])
        if ways != 1:
            raise ValueError("give exactly one of: an item (question/answer or content), items, candidateIds")
        if flat:
            # Validate the flat item with the same rules as a list item.
            KnowledgeInput(
                type=self.type or ("text" if self.content and not self.question else "faq"),
                question=self.question,
                answer=self.answer,
                content=self.content,
                title=self.title,
                tags=self.tags,
                source=self.source,
            )
        return self

    def inputs(self) -> list[KnowledgeInput]:
        """The items this request adds (empty for candidate acceptance)."""
        if self.items is not None:
            return list(self.items)
        if self.candidate_ids is not None:
            return []
        return [
            KnowledgeInput(
                type=self.type or ("text" if self.content and not self.question else "faq"),
                question=self.question,
                answer=self.answer,
                content=self.content,
                title=self.title,
                tags=self.tags,
                source=self.source,
            )
        ]


class AddKnowledgeResult(Response):
    added: list[KnowledgeItem]
    duplicates: int = Field(
        0, description="Items skipped because the same question/content exists in the scope."
    )


class AddKnowledge(
    Command,
    name="add-knowledge",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=AddKnowledgeRequest,
    response=AddKnowledgeResult,
):
    """Add FAQ pairs or free texts to a knowledge base scope; they are searchable at once."""


class RemoveKnowledgeRequest(Request):
    ids: list[ItemId] | None = Field(None, min_length=1, max_length=500, description="Knowledge item ids.")
    document_id: ItemId | None = Field(None, description="Remove a whole document and all its chunks.")

    @model_validator(mode="after")
    def _one(self) -> RemoveKnowledgeRequest:
        if (self.ids is None) == (self.document_id is None):
            raise ValueError("give ids or documentId")
        return self


class RemoveKnowledge(
    Command,
    name="remove-knowledge",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=RemoveKnowledgeRequest,
    response=Ack,
):
    """Remove knowledge items, or a document with its chunks; unknown ids are NOT_FOUND."""


class ClearKnowledgeRequest(Confirmed):
    DESTROYS: ClassVar[str] = "deletes every knowledge item and document (of `scope`/`type` when given)"

    scope: Scope | None = Field(None, description="Only this scope; every scope when omitted.")
    type: KnowledgeType | None = Field(None, description="Only this type of item.")


class ClearKnowledge(
    Command,
    name="clear-knowledge",
    owner=A,
    domain=AI,
    role=Role.ADMIN,
    request=ClearKnowledgeRequest,
    response=Ack,
):
    """Delete every knowledge item (and document) of a scope, or of all scopes."""


class SearchKnowledgeRequest(Request):
    query: Query
    scopes: list[Scope] | None = Field(
        None, min_length=1, max_length=20, description="Only these scopes; every scope when omitted."
    )
    type: KnowledgeType | None = None
    include_docs: bool = Field(True, description="Include document chunks, not only FAQ and text items.")
    limit: int = Field(10, ge=1, le=50)
    best_threshold: float | None = Field(
        None, ge=0.1, le=1, description="Defaults to the retrieval settings."
    )
    sugg_threshold: float | None = Field(
        None, ge=0.1, le=1, description="Defaults to the retrieval settings."
    )


class KnowledgeSearchResult(Response):
    query: str
    hits: list[KnowledgeHit]
    faq: FaqMatch
    took_ms: float


class SearchKnowledge(
    Command,
    name="search-knowledge",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=SearchKnowledgeRequest,
    response=KnowledgeSearchResult,
):
    """Search knowledge items; FAQ questions are matched DmFlow-style (best, suggestions, fallback)."""


class GetKnowledgeStatsRequest(Request):
    scope: Scope | None = Field(None, description="Only this scope; all when omitted.")


class ScopeStats(Response):
    scope: str
    faq: int = 0
    text: int = 0
    document_chunks: int = 0
    documents: int = 0


class KnowledgeStats(Response):
    total_items: int
    by_type: dict[str, int]
    scopes: list[ScopeStats]
    documents: int
    documents_by_state: dict[str, int]
    vocabulary: int = Field(description="Distinct index terms across the counted items.")
    dense_vectors: int = Field(description="Items that carry an embedding.")
    embedding_model: str | None = None
    pending_candidates: int = Field(0, description="FAQ candidates from learn-from-history awaiting review.")
    last_updated_at: datetime | None = None


class GetKnowledgeStats(
    Command,
    name="get-knowledge-stats",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=GetKnowledgeStatsRequest,
    response=KnowledgeStats,
):
    """Counts of knowledge by scope and type, documents by state, index and embedding coverage."""


class RagAddDocumentRequest(Request):
    """A document from a URL, an upload (base64) or pasted text; text, Markdown, HTML, PDF or DOCX."""

    scope: Scope = "default"
    url: HttpUrlStr | None = None
    content_base64: str | None = Field(None, min_length=1, description="The file's bytes, base64-encoded.")
    upload: str | None = Field(
        None,
        pattern=UPLOAD_NAME,
        description="The objectName `POST /api/v1/uploads` answered: a file too large to travel inline "
        "(over about 6 MB), streamed to the gateway first.",
    )
    text: str | None = Field(None, min_length=1, max_length=5_000_000)
    filename: str | None = Field(None, max_length=255)
    mime_type: str | None = Field(
        None, max_length=100, description="Guessed from the name and bytes when absent."
    )
    title: str | None = Field(None, max_length=300)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    chunk_size: int | None = Field(None, ge=100, le=4000, description="Characters per chunk.")
    chunk_overlap: int | None = Field(None, ge=0, le=1000)
    wait: bool = Field(
        True,
        description="Answer when indexed; false answers once the file is read and indexes in the background.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RagAddDocumentRequest:
        if sum(v is not None for v in (self.url, self.content_base64, self.text, self.upload)) != 1:
            raise ValueError("give exactly one of url, contentBase64, upload, text")
        if self.chunk_size and self.chunk_overlap is not None and self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunkOverlap must be smaller than chunkSize")
        return self


class RagAddDocument(
    Command,
    name="rag-add-document",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=RagAddDocumentRequest,
    response=DocumentStatus,
    timeout=300,
):
    """Read, chunk with overlap and index a document; progress is evented for large ones.

    A file that cannot be read is a VALIDATION_ERROR and leaves the knowledge base unchanged."""


class RagGetStatusRequest(Request):
    document_id: ItemId | None = None
    scope: Scope | None = None
    state: Literal["pending", "processing", "ready", "failed"] | None = None
    limit: int = Field(50, ge=1, le=500)


class RagStatus(Response):
    documents: list[DocumentStatus]
    total_documents: int
    total_chunks: int
    embedding_provider: EmbeddingProviderName
    embedding_model: str | None = None
    dense_ready: bool = Field(
        description="Whether dense retrieval is active (an embedding provider answers)."
    )


class RagGetStatus(
    Command,
    name="rag-get-status",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=RagGetStatusRequest,
    response=RagStatus,
):
    """Indexing state and progress of documents, and the retrieval index's state."""


class RagSearchRequest(Request):
    query: Query
    scopes: list[Scope] = Field(default_factory=lambda: ["default"], min_length=1, max_length=20)
    limit: int = Field(5, ge=1, le=50)
    mode: SearchMode = Field("hybrid", description="hybrid falls back to bm25 when no embeddings exist.")
    knowledge_type: KnowledgeType | None = None
    document_id: ItemId | None = None
    min_score: float = Field(0.0, ge=0)


class RagHit(Response):
    knowledge_id: str
    type: KnowledgeType
    text: str
    score: float
    bm25_score: float | None = None
    dense_score: float | None = None
    citation: Citation


class RagSearchResult(Response):
    query: str
    mode: SearchMode = Field(description="The mode actually used.")
    hits: list[RagHit]
    took_ms: float


class RagSearch(
    Command,
    name="rag-search",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=RagSearchRequest,
    response=RagSearchResult,
    example={"query": "保固多久？", "limit": 3},
):
    """Hybrid retrieval (BM25 with zh/en tokenization fused with dense vectors by RRF) with citations."""


# --- generation ----------------------------------------------------------------------------------


class GenerateResponseRequest(Request):
    account_id: AccountId
    user_id: PeerId
    message: Annotated[str, Field(min_length=1, max_length=8000)]
    history: list[ChatTurn] = Field(default_factory=list, max_length=100, description="Oldest first.")
    strategy_id: str | None = Field(None, max_length=64, description="Overrides the account's strategy.")
    scopes: list[Scope] | None = Field(None, max_length=20, description="Overrides the strategy's scopes.")
    provider: ProviderName | None = Field(None, description="Overrides strategy and settings.")
    model: str | None = Field(None, max_length=200)
    system_prompt: str | None = Field(None, max_length=4000)
    user_name: str | None = Field(None, max_length=200)
    seed: int | None = Field(None, description="Makes local generation repeatable.")
    remember: bool = Field(True, description="Record the turn in the user's memory.")
    stream_id: StreamId | None = None


class GeneratedReply(Response):
    text: str
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    handoff: bool = Field(
        description="True when a human should answer instead (low confidence, asked, rules)."
    )
    handoff_reason: str | None = None
    faq: FaqMatch | None = None
    language: str
    provider: ProviderName
    model: str
    strategy_id: str | None = None
    conversation_id: str | None = Field(None, description="The provider's conversation with this user.")
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float
    stream_id: str | None = None


class AiGenerateResponse(
    Command,
    name="ai-generate-response",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=GenerateResponseRequest,
    response=GeneratedReply,
    timeout=120,
):
    """Reply to an incoming message with strategy, memory, history and retrieved knowledge."""


class SuggestReplyRequest(Request):
    account_id: AccountId
    user_id: PeerId
    message: Annotated[str, Field(min_length=1, max_length=8000)]
    history: list[ChatTurn] = Field(default_factory=list, max_length=100)
    strategy_id: str | None = Field(None, max_length=64)
    scopes: list[Scope] | None = Field(None, max_length=20)
    count: int = Field(3, ge=1, le=5)
    provider: ProviderName | None = None
    seed: int | None = None


class SuggestReplyResult(Response):
    suggestions: list[Suggestion]
    provider: ProviderName
    model: str
    handoff: bool = False
    handoff_reason: str | None = None


class AiSuggestReply(
    Command,
    name="ai-suggest-reply",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=SuggestReplyRequest,
    response=SuggestReplyResult,
    timeout=120,
):
    """Several distinct candidate replies for an operator to pick from; nothing is sent."""


MessageStyle = Literal["friendly", "professional", "casual", "promotional", "formal", "humorous"]


class GenerateMessageRequest(Request):
    topic: Annotated[str, Field(min_length=1, max_length=500)]
    style: MessageStyle = "friendly"
    count: int = Field(3, ge=1, le=10)
    context: str | None = Field(None, max_length=4000)
    language: LanguageCode = "auto"
    max_chars: int = Field(400, ge=20, le=4000)
    strategy_id: str | None = Field(None, max_length=64)
    provider: ProviderName | None = None
    seed: int | None = None
    stream_id: StreamId | None = None


class GeneratedTexts(Response):
    messages: list[str]
    language: str
    provider: ProviderName
    model: str
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float


class AiGenerateMessage(
    Command,
    name="ai-generate-message",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=GenerateMessageRequest,
    response=GeneratedTexts,
    timeout=120,
):
    """Write outreach or group messages about a topic, several variants."""


class GenerateWelcomeRequest(Request):
    group_name: str | None = Field(None, max_length=200)
    topic: str | None = Field(None, max_length=500)
    user_name: str | None = Field(
        None, max_length=200, description="The newcomer, if the welcome is personal."
    )
    style: MessageStyle = "friendly"
    count: int = Field(3, ge=1, le=10)
    language: LanguageCode = "auto"
    max_chars: int = Field(300, ge=20, le=2000)
    provider: ProviderName | None = None
    seed: int | None = None
    stream_id: StreamId | None = None


class AiGenerateWelcome(
    Command,
    name="ai-generate-welcome",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=GenerateWelcomeRequest,
    response=GeneratedTexts,
    timeout=120,
):
    """Welcome messages for a group or a newcomer, several variants."""


class GenerateGroupNamesRequest(Request):
    keywords: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(min_length=1, max_length=20)
    topic: str | None = Field(None, max_length=500)
    style: MessageStyle = "friendly"
    count: int = Field(5, ge=1, le=20)
    language: LanguageCode = "auto"
    max_chars: int = Field(40, ge=5, le=128, description="Telegram titles allow 128 characters.")
    provider: ProviderName | None = None
    seed: int | None = None


class GroupNames(Response):
    names: list[str]
    language: str
    provider: ProviderName
    model: str


class AiGenerateGroupNames(
    Command,
    name="ai-generate-group-names",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=GenerateGroupNamesRequest,
    response=GroupNames,
    timeout=120,
):
    """Distinct group names from keywords, within Telegram's title length."""


class AnalyzeConversationRequest(Request):
    messages: list[ChatTurn] = Field(min_length=1, max_length=500, description="Oldest first.")
    account_id: AccountId | None = None
    user_id: PeerId | None = None
    provider: ProviderName | None = None
    remember: bool = Field(False, description="Store the summary and detected facts in the user's memory.")


class ConversationAnalysis(Response):
    intent: str = Field(
        description="purchase, pricing, support, complaint, information, greeting, "
        "unsubscribe, smalltalk or other."
    )
    intent_confidence: float = Field(ge=0, le=1)
    sentiment: Sentiment
    sentiment_score: float = Field(ge=-1, le=1)
    language: str
    stage_suggestion: FunnelStage
    stage_reason: str
    summary: str
    keywords: list[str]
    buying_signals: list[str] = Field(default_factory=list)
    objections: list[str] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list, description="Questions the user asked.")
    handoff_recommended: bool = False
    provider: ProviderName
    model: str


class AiAnalyzeConversation(
    Command,
    name="ai-analyze-conversation",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=AnalyzeConversationRequest,
    response=ConversationAnalysis,
    timeout=120,
):
    """Intent, sentiment, language, a funnel stage suggestion and a summary of a conversation."""


class Conversation(Request):
    user_id: str | None = Field(None, max_length=128)
    messages: list[ChatTurn] = Field(min_length=1, max_length=2000)


class LearnFromHistoryRequest(Request):
    conversations: list[Conversation] = Field(min_length=1, max_length=500)
    scope: Scope = "default"
    min_occurrences: int = Field(1, ge=1, le=100, description="How often a question must recur.")
    max_candidates: int = Field(50, ge=1, le=500)


class FaqCandidate(Response):
    id: str
    scope: str
    question: str
    answer: str
    occurrences: int
    confidence: float = Field(ge=0, le=1)
    examples: list[str] = Field(default_factory=list, description="Other phrasings seen.")
    status: Literal["pending", "accepted", "rejected"] = "pending"
    already_known: bool = Field(False, description="A FAQ of the scope already answers it.")
    created_at: datetime


class LearnFromHistoryResult(Response):
    candidates: list[FaqCandidate]
    conversations: int
    question_turns: int


class LearnFromHistory(
    Command,
    name="learn-from-history",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=LearnFromHistoryRequest,
    response=LearnFromHistoryResult,
    timeout=120,
):
    """Turn past conversations into FAQ candidates for review; accept them with add-knowledge."""


# --- memory --------------------------------------------------------------------------------------


class MemoryKey(Request):
    account_id: AccountId
    user_id: PeerId


class AiMemoryGet(
    Command,
    name="ai-memory-get",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=MemoryKey,
    response=MemoryView,
):
    """What the AI remembers about a user for an account (empty memory when none)."""


class MemorySaveRequest(Request):
    account_id: AccountId
    user_id: PeerId
    facts: list[MemoryFact] | None = Field(None, max_length=200)
    preferences: dict[str, Annotated[str, Field(max_length=500)]] | None = Field(None, max_length=100)
    fields: dict[str, FieldValue] | None = Field(None, max_length=100)
    tags: list[Tag] | None = Field(None, max_length=50)
    summary: str | None = Field(None, max_length=4000)
    mode: Literal["merge", "replace"] = Field(
        "merge", description="merge appends facts and merges maps; replace overwrites what is given."
    )


class AiMemorySave(
    Command,
    name="ai-memory-save",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=MemorySaveRequest,
    response=MemoryView,
):
    """Save facts, preferences, custom fields and tags about a user."""


class MemoryClearRequest(Confirmed):
    DESTROYS: ClassVar[str] = "forgets what the AI knows about the user, or about every user of the account"

    account_id: AccountId
    user_id: PeerId | None = Field(None, description="Every user of the account when omitted.")


class AiMemoryClear(
    Command,
    name="ai-memory-clear",
    owner=A,
    domain=AI,
    role=Role.ADMIN,
    request=MemoryClearRequest,
    response=Ack,
):
    """Forget a user (or every user of an account), including provider conversation ids."""


# --- strategies ----------------------------------------------------------------------------------


class GetStrategiesRequest(Request):
    account_id: AccountId | None = Field(None, description="Only the strategy in force for this account.")


class StrategyList(Response):
    items: list[Strategy]
    default_strategy_id: str | None = None


class AiGetStrategies(
    Command,
    name="ai-get-strategies",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=GetStrategiesRequest,
    response=StrategyList,
):
    """Every reply strategy with the accounts it applies to."""


class AiSaveStrategy(
    Command,
    name="ai-save-strategy",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=StrategyInput,
    response=Strategy,
):
    """Create or update a strategy (persona, tone, rules, forbidden topics, scopes, provider, hand-off)."""


class ApplyStrategyRequest(Request):
    strategy_id: str | None = Field(None, max_length=64, description="Null detaches the accounts.")
    account_ids: list[AccountId] = Field(min_length=1, max_length=1000)


class ApplyStrategyResult(Response):
    strategy_id: str | None
    account_ids: list[str]
    previous: dict[str, str | None] = Field(description="Account -> strategy it had before.")


class AiApplyStrategy(
    Command,
    name="ai-apply-strategy",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=ApplyStrategyRequest,
    response=ApplyStrategyResult,
):
    """Apply a strategy to accounts (or detach them)."""


# --- settings, models, usage ---------------------------------------------------------------------


class GetAiSettings(
    Command,
    name="get-ai-settings",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=Empty,
    response=AiSettingsView,
):
    """Provider configuration with keys masked."""


class SaveAiSettingsRequest(Request):
    default_provider: ProviderName | None = None
    embedding_provider: EmbeddingProviderName | None = None
    openai: OpenAiSettingsInput | None = None
    maiagent: MaiAgentSettingsInput | None = None
    dmflow: DmFlowSettingsInput | None = None
    retrieval: RetrievalSettingsInput | None = None
    expected_version: int | None = Field(None, ge=0, description="Optimistic concurrency.")


class SaveAiSettings(
    Command,
    name="save-ai-settings",
    owner=A,
    domain=AI,
    role=Role.ADMIN,
    request=SaveAiSettingsRequest,
    response=AiSettingsView,
):
    """Change provider configuration; keys are encrypted at rest and never returned."""


class GetAiModelsRequest(Request):
    provider: ProviderName | None = Field(None, description="Only this provider; all when omitted.")
    refresh: bool = Field(False, description="Ask remote providers for their model lists.")


class ModelList(Response):
    models: list[ModelInfo]
    errors: dict[str, ProviderError] = Field(
        default_factory=dict, description="Provider -> why it gave none."
    )


class GetAiModels(
    Command,
    name="get-ai-models",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=GetAiModelsRequest,
    response=ModelList,
    timeout=60,
):
    """Models each configured provider offers (chat, embedding, FAQ/flow domains)."""


class TestAiConnectionRequest(Request):
    provider: ProviderName
    openai: OpenAiSettingsInput | None = Field(
        None, description="Test these values instead of the saved ones."
    )
    maiagent: MaiAgentSettingsInput | None = None
    dmflow: DmFlowSettingsInput | None = None
    prompt: str = Field("ping", min_length=1, max_length=500)


class ConnectionTest(Response):
    provider: ProviderName
    ok: bool
    latency_ms: float
    model: str | None = None
    reply: str | None = Field(None, description="The start of what the provider answered.")
    error: ProviderError | None = None


class TestAiConnection(
    Command,
    name="test-ai-connection",
    owner=A,
    domain=AI,
    role=Role.OPERATOR,
    request=TestAiConnectionRequest,
    response=ConnectionTest,
    timeout=90,
):
    """Make a real call to a provider and report latency or a clear error."""


class GetAiUsageRequest(Request):
    since: date | None = Field(None, description="First day (UTC); 30 days ago when omitted.")
    until: date | None = Field(None, description="Last day (UTC), inclusive; today when omitted.")
    provider: ProviderName | None = None
    model: str | None = Field(None, max_length=200)


class UsageTotals(Response):
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_avg: float = 0.0


class UsageReport(Response):
    rows: list[UsageRow]
    totals: UsageTotals
    by_provider: dict[str, UsageTotals]
    since: date
    until: date


class GetAiUsage(
    Command,
    name="get-ai-usage",
    owner=A,
    domain=AI,
    role=Role.VIEWER,
    request=GetAiUsageRequest,
    response=UsageReport,
):
    """Calls, tokens, errors and latency per provider, model and day."""
