"""The knowledge commands: items, search, documents, learning from history."""

from __future__ import annotations

from tgm_contracts import Ack
from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.models.ai import DocumentStatus

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.AddKnowledge)
    async def add_knowledge(req: ai_cmd.AddKnowledgeRequest, ctx: Ctx) -> ai_cmd.AddKnowledgeResult:
        return await ctx.app.knowledge.add(req)

    @runtime.command(ai_cmd.RemoveKnowledge)
    async def remove_knowledge(req: ai_cmd.RemoveKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.remove(req))

    @runtime.command(ai_cmd.ClearKnowledge)
    async def clear_knowledge(req: ai_cmd.ClearKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.clear(req))

    @runtime.command(ai_cmd.GetKnowledgeStats)
    async def get_knowledge_stats(req: ai_cmd.GetKnowledgeStatsRequest, ctx: Ctx) -> ai_cmd.KnowledgeStats:
        return await ctx.app.knowledge.stats(req)

    @runtime.command(ai_cmd.SearchKnowledge)
    async def search_knowledge(req: ai_cmd.SearchKnowledgeRequest, ctx: Ctx) -> ai_cmd.KnowledgeSearchResult:
        return await ctx.app.search.search_knowledge(req)

    @runtime.command(ai_cmd.RagSearch)
    async def rag_search(req: ai_cmd.RagSearchRequest, ctx: Ctx) -> ai_cmd.RagSearchResult:
        return await ctx.app.search.rag_search(req)

    @runtime.command(ai_cmd.RagAddDocument)
    async def rag_add_document(req: ai_cmd.RagAddDocumentRequest, ctx: Ctx) -> DocumentStatus:
        return await ctx.app.documents.add_document(req)

    @runtime.command(ai_cmd.RagGetStatus)
    async def rag_get_status(req: ai_cmd.RagGetStatusRequest, ctx: Ctx) -> ai_cmd.RagStatus:
        return await ctx.app.documents.status(req)

    @runtime.command(ai_cmd.LearnFromHistory)
    async def learn_from_history(
        req: ai_cmd.LearnFromHistoryRequest, ctx: Ctx
    ) -> ai_cmd.LearnFromHistoryResult:
        return await ctx.app.learning.learn(req)
