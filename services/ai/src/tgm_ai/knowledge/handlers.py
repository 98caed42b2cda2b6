"""The knowledge commands: items, search, documents, learning from history."""

from __future__ import annotations

from tgm_contracts import Ack
from tgm_contracts.commands import ai as ai_cmd
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .ingestion import DocumentIngestion
from .learning import HistoryLearning
from .search import KnowledgeSearch
from .service import KnowledgeItems


def register(runtime: Runtime) -> None:
    route_use_case(runtime, KnowledgeItems, lambda app: app.knowledge)
    route_use_case(runtime, KnowledgeSearch, lambda app: app.search)
    route_use_case(runtime, DocumentIngestion, lambda app: app.documents)
    route_use_case(runtime, HistoryLearning, lambda app: app.learning)

    @runtime.command(ai_cmd.RemoveKnowledge)
    async def remove_knowledge(req: ai_cmd.RemoveKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.remove(req))

    @runtime.command(ai_cmd.ClearKnowledge)
    async def clear_knowledge(req: ai_cmd.ClearKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.clear(req))
