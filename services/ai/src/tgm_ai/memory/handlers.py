"""The memory commands: read (merged with the DmFlow user when DmFlow is the default), save, clear."""

from __future__ import annotations

from tgm_contracts import Ack
from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.models.ai import MemoryView
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .service import MemoryService


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.AiMemoryGet)
    async def ai_memory_get(req: ai_cmd.MemoryKey, ctx: Ctx) -> MemoryView:
        return await ctx.app.memory.get_merged(req.account_id, req.user_id)

    route_use_case(runtime, MemoryService, lambda app: app.memory)

    @runtime.command(ai_cmd.AiMemoryClear)
    async def ai_memory_clear(req: ai_cmd.MemoryClearRequest, ctx: Ctx) -> Ack:
        return Ack(affected=await ctx.app.memory.clear(req))
