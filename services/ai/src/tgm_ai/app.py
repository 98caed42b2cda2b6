"""The ai service: wiring of the 26 `ai` commands to their use cases on the shared runtime.

Handlers are thin: one use case each, errors translated to the runtime's typed errors. Generation
commands with a `streamId` also publish `StreamChunk`s on core NATS (`subjects.stream_chunk`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel
from tgm_contracts import Ack, ErrorCode, Service, subjects
from tgm_contracts.commands import ai as C
from tgm_contracts.models.ai import StreamChunk
from tgm_runtime import CallContext, Conflict, DomainError, Invalid, NotFound, RuntimeSettings, ServiceRuntime

from . import documents
from .knowledge import EmbedderSource, KnowledgeError, KnowledgeService
from .knowledge import NotFoundError as KnowledgeNotFound
from .migrations import MIGRATIONS
from .providers.base import ProviderError
from .providers_service import ProviderService, SettingsConflict
from .repos import KnowledgeRepo, MemoryRepo, SettingsRepo, StrategyRepo, UsageRepo
from .service import GenerationService, MemoryService, RuleError, StrategyService
from .service import NotFoundError as ServiceNotFound
from .settings import AiProcessSettings

log = logging.getLogger("tgm.ai")
VERSION = "0.1.0"


async def counts(db: Any) -> dict[str, int]:
    return {
        "knowledgeItems": await db["knowledge"].count_documents({}),
        "documents": await db["documents"].count_documents({}),
        "strategies": await db["strategies"].count_documents({}),
        "memories": await db["memories"].count_documents({}),
    }


@contextmanager
def translated() -> Iterator[None]:
    """Use-case errors -> the runtime's typed errors (and so the error envelope)."""
    try:
        yield
    except ProviderError as exc:
        raise DomainError(exc.code, exc.message, exc.details, exc.retry_after) from None
    except (KnowledgeNotFound, ServiceNotFound) as exc:
        raise NotFound(str(exc)) from None
    except SettingsConflict as exc:
        raise Conflict(str(exc)) from None
    except RuleError as exc:
        raise Conflict(str(exc)) from None
    except (KnowledgeError, ValueError) as exc:
        raise Invalid(str(exc)) from None


class ChunkPublisher:
    """Publishes deltas, then exactly one final chunk, on `tgm.stream.<streamId>` (core NATS)."""

    def __init__(self, rt: ServiceRuntime, stream_id: str) -> None:
        self.rt = rt
        self.subject = subjects.stream_chunk(stream_id)
        self.seq = 0

    async def _send(self, chunk: StreamChunk) -> None:
        await self.rt.broker.publish(chunk.wire(), subject=self.subject)
        self.seq += 1

    async def delta(self, text: str) -> None:
        if text:
            await self._send(StreamChunk(seq=self.seq, delta=text))

    async def done(self, data: BaseModel) -> None:
        await self._send(
            StreamChunk(seq=self.seq, done=True, data=data.model_dump(mode="json", by_alias=True))
        )

    async def failed(self, code: str, message: str) -> None:
        await self._send(StreamChunk(seq=self.seq, done=True, error={"code": code, "message": message}))


async def streamed(
    ctx: CallContext,
    stream_id: str | None,
    run: Callable[[Callable[[str], Awaitable[None]] | None], Awaitable[Any]],
) -> Any:
    if stream_id is None:
        with translated():
            return await run(None)
    pub = ChunkPublisher(ctx.runtime, stream_id)
    try:
        with translated():
            result = await run(pub.delta)
    except DomainError as exc:
        await pub.failed(exc.code.value, exc.message)
        raise
    except Exception:
        await pub.failed(ErrorCode.INTERNAL.value, "generation failed inside ai; see its logs")
        raise
    await pub.done(result)
    return result


async def _reembed(ctx: CallContext) -> None:
    try:
        n = await ctx.state.knowledge.reembed()
        log.info("re-embedded %d knowledge items", n)
    except Exception:
        log.exception("re-embedding failed")


def create_runtime(settings: RuntimeSettings | None = None) -> ServiceRuntime:
    """A runtime serving the 26 ai commands (tests make their own with their own settings)."""
    runtime = ServiceRuntime(
        Service.AI, version=VERSION, migrations=MIGRATIONS, counts=counts, settings=settings
    )

    @runtime.on_start
    async def build(rt: ServiceRuntime) -> None:
        proc = AiProcessSettings()

        async def publish(event: Any) -> None:
            try:
                await rt.publish(event)
            except Exception as exc:  # events inform; a missing stream must not fail the command
                log.warning("event %s not published: %s", getattr(event, "NAME", "?"), exc)

        embedders = EmbedderSource()
        providers = ProviderService(SettingsRepo(rt.db), UsageRepo(rt.db), rt.secrets, embedders, publish)
        knowledge = KnowledgeService(
            KnowledgeRepo(rt.db),
            publish,
            embedders,
            providers.retrieval,
            fetch=lambda url: documents.fetch(url, proc.fetch_timeout_seconds),
        )
        memory = MemoryService(MemoryRepo(rt.db), providers.dmflow_if_default)
        strategies = StrategyService(StrategyRepo(rt.db))

        async def defaults() -> Any:
            return await rt.settings_section("ai")

        rt.state.providers = providers
        rt.state.knowledge = knowledge
        rt.state.memory = memory
        rt.state.strategies = strategies
        rt.state.generation = GenerationService(knowledge, providers, memory, strategies, publish, defaults)
        rt.state.proc = proc
        rt.state.tasks = set()
        await providers.doc()
        await knowledge.fail_stale()
        await knowledge.load()

    @runtime.on_restore
    async def reload(rt: ServiceRuntime) -> None:
        rt.state.providers._doc = None
        await rt.state.providers.doc()
        await rt.state.knowledge.load()

    @runtime.on_stop
    async def close(rt: ServiceRuntime) -> None:
        if hasattr(rt.state, "knowledge"):
            await rt.state.knowledge.aclose()
            await rt.state.providers.aclose()

    # --- streaming -------------------------------------------------------------------------------------

    # --- knowledge -------------------------------------------------------------------------------------

    @runtime.command(C.AddKnowledge)
    async def add_knowledge(req: C.AddKnowledgeRequest, ctx: CallContext) -> C.AddKnowledgeResult:
        with translated():
            return await ctx.state.knowledge.add(req)

    @runtime.command(C.RemoveKnowledge)
    async def remove_knowledge(req: C.RemoveKnowledgeRequest, ctx: CallContext) -> Ack:
        with translated():
            return Ack(affected=await ctx.state.knowledge.remove(req))

    @runtime.command(C.ClearKnowledge)
    async def clear_knowledge(req: C.ClearKnowledgeRequest, ctx: CallContext) -> Ack:
        with translated():
            return Ack(affected=await ctx.state.knowledge.clear(req))

    @runtime.command(C.SearchKnowledge)
    async def search_knowledge(req: C.SearchKnowledgeRequest, ctx: CallContext) -> C.KnowledgeSearchResult:
        with translated():
            return await ctx.state.knowledge.search_knowledge(req)

    @runtime.command(C.GetKnowledgeStats)
    async def get_knowledge_stats(req: C.GetKnowledgeStatsRequest, ctx: CallContext) -> C.KnowledgeStats:
        with translated():
            return await ctx.state.knowledge.stats(req)

    @runtime.command(C.RagAddDocument)
    async def rag_add_document(req: C.RagAddDocumentRequest, ctx: CallContext) -> Any:
        with translated():
            return await ctx.state.knowledge.add_document(req)

    @runtime.command(C.RagGetStatus)
    async def rag_get_status(req: C.RagGetStatusRequest, ctx: CallContext) -> C.RagStatus:
        with translated():
            emb = (await ctx.state.providers.get()).embedding_provider
            return await ctx.state.knowledge.status(req, emb)

    @runtime.command(C.RagSearch)
    async def rag_search(req: C.RagSearchRequest, ctx: CallContext) -> C.RagSearchResult:
        with translated():
            return await ctx.state.knowledge.rag_search(req)

    @runtime.command(C.LearnFromHistory)
    async def learn_from_history(
        req: C.LearnFromHistoryRequest, ctx: CallContext
    ) -> C.LearnFromHistoryResult:
        with translated():
            return await ctx.state.knowledge.learn(req)

    # --- generation ------------------------------------------------------------------------------------

    @runtime.command(C.AiGenerateResponse)
    async def ai_generate_response(req: C.GenerateResponseRequest, ctx: CallContext) -> C.GeneratedReply:
        async def run(sink: Any) -> C.GeneratedReply:
            reply = await ctx.state.generation.generate_response(req, sink)
            reply.stream_id = req.stream_id
            return reply

        return await streamed(ctx, req.stream_id, run)

    @runtime.command(C.AiSuggestReply)
    async def ai_suggest_reply(req: C.SuggestReplyRequest, ctx: CallContext) -> C.SuggestReplyResult:
        with translated():
            return await ctx.state.generation.suggest(req)

    @runtime.command(C.AiGenerateMessage)
    async def ai_generate_message(req: C.GenerateMessageRequest, ctx: CallContext) -> C.GeneratedTexts:
        return await streamed(ctx, req.stream_id, lambda sink: ctx.state.generation.message(req, sink))

    @runtime.command(C.AiGenerateWelcome)
    async def ai_generate_welcome(req: C.GenerateWelcomeRequest, ctx: CallContext) -> C.GeneratedTexts:
        return await streamed(ctx, req.stream_id, lambda sink: ctx.state.generation.welcome(req, sink))

    @runtime.command(C.AiGenerateGroupNames)
    async def ai_generate_group_names(req: C.GenerateGroupNamesRequest, ctx: CallContext) -> C.GroupNames:
        with translated():
            return await ctx.state.generation.group_names(req)

    @runtime.command(C.AiAnalyzeConversation)
    async def ai_analyze_conversation(
        req: C.AnalyzeConversationRequest, ctx: CallContext
    ) -> C.ConversationAnalysis:
        with translated():
            return await ctx.state.generation.analyze(req)

    # --- memory and strategies -------------------------------------------------------------------------

    @runtime.command(C.AiMemoryGet)
    async def ai_memory_get(req: C.MemoryKey, ctx: CallContext) -> Any:
        return await ctx.state.memory.get_merged(req.account_id, req.user_id)

    @runtime.command(C.AiMemorySave)
    async def ai_memory_save(req: C.MemorySaveRequest, ctx: CallContext) -> Any:
        with translated():
            return await ctx.state.memory.save(req)

    @runtime.command(C.AiMemoryClear)
    async def ai_memory_clear(req: C.MemoryClearRequest, ctx: CallContext) -> Ack:
        return Ack(affected=await ctx.state.memory.clear(req))

    @runtime.command(C.AiGetStrategies)
    async def ai_get_strategies(req: C.GetStrategiesRequest, ctx: CallContext) -> C.StrategyList:
        return await ctx.state.strategies.list(req)

    @runtime.command(C.AiSaveStrategy)
    async def ai_save_strategy(req: Any, ctx: CallContext) -> Any:
        with translated():
            return await ctx.state.strategies.save(req)

    @runtime.command(C.AiApplyStrategy)
    async def ai_apply_strategy(req: C.ApplyStrategyRequest, ctx: CallContext) -> C.ApplyStrategyResult:
        with translated():
            return await ctx.state.strategies.apply(req)

    # --- settings, models, usage -----------------------------------------------------------------------

    @runtime.command(C.GetAiSettings)
    async def get_ai_settings(req: Any, ctx: CallContext) -> Any:
        return await ctx.state.providers.get()

    @runtime.command(C.SaveAiSettings)
    async def save_ai_settings(req: C.SaveAiSettingsRequest, ctx: CallContext) -> Any:
        from tgm_contracts.events_ai import AiSettingsChanged

        with translated():
            view, changed = await ctx.state.providers.save(req)
        if changed:
            try:
                await ctx.runtime.publish(
                    AiSettingsChanged(
                        version=view.version,
                        default_provider=view.default_provider,
                        embedding_provider=view.embedding_provider,
                        changed=changed,
                    )
                )
            except Exception as exc:
                log.warning("ai-settings-changed not published: %s", exc)
            if ("embedding_provider" in changed or "openai" in changed) and ctx.state.proc.reembed_on_change:
                # New vectors for existing knowledge, in the background; retrieval uses BM25 meanwhile.
                task = asyncio.create_task(_reembed(ctx))
                ctx.state.tasks.add(task)
                task.add_done_callback(ctx.state.tasks.discard)
        return view

    @runtime.command(C.GetAiModels)
    async def get_ai_models(req: C.GetAiModelsRequest, ctx: CallContext) -> C.ModelList:
        with translated():
            return await ctx.state.providers.models(req)

    @runtime.command(C.TestAiConnection)
    async def test_ai_connection(req: C.TestAiConnectionRequest, ctx: CallContext) -> C.ConnectionTest:
        with translated():
            return await ctx.state.providers.test(req)

    @runtime.command(C.GetAiUsage)
    async def get_ai_usage(req: C.GetAiUsageRequest, ctx: CallContext) -> C.UsageReport:
        with translated():
            return await ctx.state.providers.usage_report(req)

    return runtime


runtime = create_runtime()
