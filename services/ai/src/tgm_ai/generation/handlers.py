"""The generation commands (replies, suggestions, texts, group names, analysis) and the strategies
that shape them. Replies, messages and welcomes stream when the request carries a `streamId`."""

from __future__ import annotations

from tgm_contracts.commands import ai as ai_cmd

from ..app import Ctx, Runtime
from .streaming import streamed


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.AiGenerateResponse)
    async def ai_generate_response(req: ai_cmd.GenerateResponseRequest, ctx: Ctx) -> ai_cmd.GeneratedReply:
        return await streamed(
            ctx.runtime, req.stream_id, lambda sink: ctx.app.replies.generate_response(req, sink)
        )

    runtime.route(ai_cmd.AiSuggestReply, lambda app: app.replies.suggest)

    @runtime.command(ai_cmd.AiGenerateMessage)
    async def ai_generate_message(req: ai_cmd.GenerateMessageRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.message(req, sink))

    @runtime.command(ai_cmd.AiGenerateWelcome)
    async def ai_generate_welcome(req: ai_cmd.GenerateWelcomeRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.welcome(req, sink))

    runtime.route(ai_cmd.AiGenerateGroupNames, lambda app: app.writer.group_names)
    runtime.route(ai_cmd.AiAnalyzeConversation, lambda app: app.analyst.analyze)
    runtime.route(ai_cmd.AiGetStrategies, lambda app: app.strategies.list)
    runtime.route(ai_cmd.AiSaveStrategy, lambda app: app.strategies.save)
    runtime.route(ai_cmd.AiApplyStrategy, lambda app: app.strategies.apply)
