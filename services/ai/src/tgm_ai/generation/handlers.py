"""The generation commands (replies, suggestions, texts, group names, analysis) and the strategies
that shape them. Replies, messages and welcomes stream when the request carries a `streamId`."""

from __future__ import annotations

from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.models.ai import Strategy

from ..app import Ctx, Runtime
from .streaming import streamed


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.AiGenerateResponse)
    async def ai_generate_response(req: ai_cmd.GenerateResponseRequest, ctx: Ctx) -> ai_cmd.GeneratedReply:
        return await streamed(
            ctx.runtime, req.stream_id, lambda sink: ctx.app.replies.generate_response(req, sink)
        )

    @runtime.command(ai_cmd.AiSuggestReply)
    async def ai_suggest_reply(req: ai_cmd.SuggestReplyRequest, ctx: Ctx) -> ai_cmd.SuggestReplyResult:
        return await ctx.app.replies.suggest(req)

    @runtime.command(ai_cmd.AiGenerateMessage)
    async def ai_generate_message(req: ai_cmd.GenerateMessageRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.message(req, sink))

    @runtime.command(ai_cmd.AiGenerateWelcome)
    async def ai_generate_welcome(req: ai_cmd.GenerateWelcomeRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.welcome(req, sink))

    @runtime.command(ai_cmd.AiGenerateGroupNames)
    async def ai_generate_group_names(req: ai_cmd.GenerateGroupNamesRequest, ctx: Ctx) -> ai_cmd.GroupNames:
        return await ctx.app.writer.group_names(req)

    @runtime.command(ai_cmd.AiAnalyzeConversation)
    async def ai_analyze_conversation(
        req: ai_cmd.AnalyzeConversationRequest, ctx: Ctx
    ) -> ai_cmd.ConversationAnalysis:
        return await ctx.app.analyst.analyze(req)

    @runtime.command(ai_cmd.AiGetStrategies)
    async def ai_get_strategies(req: ai_cmd.GetStrategiesRequest, ctx: Ctx) -> ai_cmd.StrategyList:
        return await ctx.app.strategies.list(req)

    @runtime.command(ai_cmd.AiSaveStrategy)
    async def ai_save_strategy(req: ai_cmd.StrategyInput, ctx: Ctx) -> Strategy:
        return await ctx.app.strategies.save(req)

    @runtime.command(ai_cmd.AiApplyStrategy)
    async def ai_apply_strategy(req: ai_cmd.ApplyStrategyRequest, ctx: Ctx) -> ai_cmd.ApplyStrategyResult:
        return await ctx.app.strategies.apply(req)
