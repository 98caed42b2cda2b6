"""The composition root of the ai service: the runtime, the factory of its `AiApp`, and every domain's
handlers (knowledge, generation, memory, providers).

Nothing is built at import: `build()` makes a runtime when called (tests build as many as they like,
each with its own settings), and the app is built by the runtime at start, once the database is there.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import Service
from tgm_contracts.events_ai import AiSettingsChanged
from tgm_contracts.settings import AiDefaults

from . import __version__
from .app import AiApp, Runtime
from .generation import handlers as generation_handlers
from .generation.conversation import ConversationAnalyst
from .generation.service import ReplyService
from .generation.store import StrategyStore
from .generation.strategies import StrategyService
from .generation.writing import TextWriter
from .knowledge import adapters as document_adapters
from .knowledge import handlers as knowledge_handlers
from .knowledge.documents import RawDocument
from .knowledge.index_cache import IndexCache
from .knowledge.ingestion import DocumentIngestion
from .knowledge.learning import HistoryLearning
from .knowledge.search import KnowledgeSearch
from .knowledge.service import KnowledgeItems
from .knowledge.store import KnowledgeStore
from .memory import handlers as memory_handlers
from .memory.service import MemoryService
from .memory.store import MemoryStore
from .migrations import MIGRATIONS
from .providers import handlers as provider_handlers
from .providers.embedders import EmbedderSource
from .providers.metrics import AiMetrics
from .providers.service import ProviderService
from .providers.store import SettingsStore, UsageStore
from .providers.usage import UsageReports
from .settings import AiSettings


async def counts(db: Any) -> dict[str, int]:
    """What `sys info` reports of this service's data."""
    knowledge = KnowledgeStore(db)
    return {
        "knowledgeItems": await knowledge.count({}),
        "documents": await knowledge.count_documents({}),
        "strategies": await StrategyStore(db).count(),
        "memories": await MemoryStore(db).count(),
    }


def build(settings: AiSettings | None = None) -> Runtime:
    """A runtime serving the 26 ai commands."""
    settings = settings or AiSettings()
    runtime: Runtime = Runtime(
        Service.AI, version=__version__, migrations=MIGRATIONS, counts=counts, settings=settings.runtime
    )

    metrics = AiMetrics(runtime.registry)  # registered once per runtime, not per app build

    async def app() -> AiApp:
        db = runtime.db
        embedders = EmbedderSource()
        knowledge_store = KnowledgeStore(db)
        index = IndexCache(knowledge_store, embedders)

        def reembed() -> None:
            # New vectors for existing knowledge, in the background; retrieval uses BM25 meanwhile.
            if settings.reembed_on_change:
                runtime.spawn(index.reembed(), "ai-reembed")

        providers = ProviderService(
            SettingsStore(db),
            UsageStore(db),
            runtime.secrets,
            embedders,
            runtime.emit,
            reembed,
            metrics=metrics,
        )
        items = KnowledgeItems(knowledge_store, index, runtime.emit, runtime.spawn)
        search = KnowledgeSearch(knowledge_store, index, providers)

        async def fetch(url: str) -> RawDocument:
            return await document_adapters.fetch(url, settings.fetch_timeout_seconds)

        memory = MemoryService(MemoryStore(db), providers.dmflow_if_default)
        strategies = StrategyService(StrategyStore(db))

        async def defaults() -> AiDefaults:
            return await runtime.settings_section("ai")

        return AiApp(
            index=index,
            knowledge=items,
            search=search,
            documents=DocumentIngestion(
                knowledge_store,
                index,
                items,
                providers,
                fetch,
                runtime.spawn,
                document_adapters.UploadReader(runtime.object_store),
            ),
            learning=HistoryLearning(knowledge_store, index, providers),
            replies=ReplyService(search, providers, memory, strategies, runtime.emit, defaults),
            writer=TextWriter(providers, strategies),
            analyst=ConversationAnalyst(providers, memory),
            strategies=strategies,
            memory=memory,
            providers=providers,
            usage=UsageReports(UsageStore(db)),
        )

    runtime.provide(app)

    @runtime.on_start
    async def load(rt: Runtime) -> None:
        await rt.app.providers.doc()

        # Every replica keeps the settings in memory; any replica's save drops them everywhere.
        async def settings_changed(msg: Any) -> None:
            rt.app.providers.forget()

        await rt.nc.subscribe(AiSettingsChanged.SUBJECT, cb=settings_changed)
        await rt.app.documents.fail_stale()
        await rt.app.index.load()
        # A full clear that crashed before its retired generation was dropped: drop it now.
        rt.spawn(rt.app.index.store.drop_retired(), "ai-knowledge-drop-retired")

    @runtime.on_restore
    async def reload(rt: Runtime) -> None:
        await rt.app.providers.reload()
        await rt.app.index.load()

    @runtime.on_stop
    async def close(rt: Runtime) -> None:
        await rt.app.providers.aclose()

    for domain in (knowledge_handlers, generation_handlers, memory_handlers, provider_handlers):
        domain.register(runtime)
    return runtime
