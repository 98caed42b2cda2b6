"""The knowledge commands: items, search, documents, learning from history."""

from __future__ import annotations

from tgm_contracts import Ack
from tgm_contracts.commands import ai as ai_cmd

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    runtime.route(ai_cmd.AddKnowledge, lambda app: app.knowledge.add)

    @runtime.command(ai_cmd.RemoveKnowledge)
    async def remove_knowledge(req: ai_cmd.RemoveKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.remove(req))

    @runtime.command(ai_cmd.ClearKnowledge)
    async def clear_knowledge(req: ai_cmd.ClearKnowledgeRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.knowledge.clear(req))

    runtime.route(ai_cmd.GetKnowledgeStats, lambda app: app.knowledge.stats)
    runtime.route(ai_cmd.SearchKnowledge, lambda app: app.search.search_knowledge)
    runtime.route(ai_cmd.RagSearch, lambda app: app.search.rag_search)
    runtime.route(ai_cmd.RagAddDocument, lambda app: app.documents.add_document)
    runtime.route(ai_cmd.RagGetStatus, lambda app: app.documents.status)
    runtime.route(ai_cmd.LearnFromHistory, lambda app: app.learning.learn)
