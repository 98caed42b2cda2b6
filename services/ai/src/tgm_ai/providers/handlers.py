"""The provider commands: AI settings, model lists, connection tests, usage."""

from __future__ import annotations

from tgm_contracts import Empty
from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.models.ai import AiSettingsView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.GetAiSettings)
    async def get_ai_settings(req: Empty, ctx: Ctx) -> AiSettingsView:
        return await ctx.app.providers.get()

    @runtime.command(ai_cmd.SaveAiSettings)
    async def save_ai_settings(req: ai_cmd.SaveAiSettingsRequest, ctx: Ctx) -> AiSettingsView:
        return await ctx.app.providers.save(req)

    @runtime.command(ai_cmd.GetAiModels)
    async def get_ai_models(req: ai_cmd.GetAiModelsRequest, ctx: Ctx) -> ai_cmd.ModelList:
        return await ctx.app.providers.models(req)

    @runtime.command(ai_cmd.TestAiConnection)
    async def test_ai_connection(req: ai_cmd.TestAiConnectionRequest, ctx: Ctx) -> ai_cmd.ConnectionTest:
        return await ctx.app.providers.test(req)

    @runtime.command(ai_cmd.GetAiUsage)
    async def get_ai_usage(req: ai_cmd.GetAiUsageRequest, ctx: Ctx) -> ai_cmd.UsageReport:
        return await ctx.app.usage.report(req)
