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

    runtime.route(ai_cmd.SaveAiSettings, lambda app: app.providers.save)
    runtime.route(ai_cmd.GetAiModels, lambda app: app.providers.models)
    runtime.route(ai_cmd.TestAiConnection, lambda app: app.providers.test)
    runtime.route(ai_cmd.GetAiUsage, lambda app: app.usage.report)
