"""The generation commands (replies, suggestions, texts, group names, analysis) and the strategies
that shape them. Replies, messages and welcomes stream when the request carries a `streamId`."""

from __future__ import annotations

from tgm_contracts.commands import ai as ai_cmd
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .conversation import ConversationAnalyst
from .service import ReplyService
from .strategies import StrategyService
from .streaming import streamed
from .writing import TextWriter


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.AiGenerateResponse)
    async def ai_generate_response(req: ai_cmd.GenerateResponseRequest, ctx: Ctx) -> ai_cmd.GeneratedReply:
        return await streamed(
            ctx.runtime, req.stream_id, lambda sink: ctx.app.replies.generate_response(req, sink)
        )

    route_use_case(runtime, ReplyService, lambda app: app.replies)
    route_use_case(runtime, TextWriter, lambda app: app.writer)
    route_use_case(runtime, ConversationAnalyst, lambda app: app.analyst)
    route_use_case(runtime, StrategyService, lambda app: app.strategies)

    @runtime.command(ai_cmd.AiGenerateMessage)
    async def ai_generate_message(req: ai_cmd.GenerateMessageRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.message(req, sink))

    @runtime.command(ai_cmd.AiGenerateWelcome)
    async def ai_generate_welcome(req: ai_cmd.GenerateWelcomeRequest, ctx: Ctx) -> ai_cmd.GeneratedTexts:
        return await streamed(ctx.runtime, req.stream_id, lambda sink: ctx.app.writer.welcome(req, sink))
