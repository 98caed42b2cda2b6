"""The use cases of the ai service, as handlers reach them (`ctx.app`): one frozen dataclass, built at
start by `bootstrap.build`'s factory."""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import CallContext, ServiceRuntime

from .generation.conversation import ConversationAnalyst
from .generation.service import ReplyService
from .generation.strategies import StrategyService
from .generation.writing import TextWriter
from .knowledge.index_cache import IndexCache
from .knowledge.ingestion import DocumentIngestion
from .knowledge.learning import HistoryLearning
from .knowledge.search import KnowledgeSearch
from .knowledge.service import KnowledgeItems
from .memory.service import MemoryService
from .providers.service import ProviderService
from .providers.usage import UsageReports


@dataclass(frozen=True)
class AiApp:
    # knowledge
    index: IndexCache
    knowledge: KnowledgeItems
    search: KnowledgeSearch
    documents: DocumentIngestion
    learning: HistoryLearning
    # generation
    replies: ReplyService
    writer: TextWriter
    analyst: ConversationAnalyst
    strategies: StrategyService
    # memory
    memory: MemoryService
    # providers
    providers: ProviderService
    usage: UsageReports


Ctx = CallContext[AiApp]
Runtime = ServiceRuntime[AiApp]
