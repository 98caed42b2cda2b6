"""The provider commands: AI settings, model lists, connection tests, usage."""

from __future__ import annotations

from tgm_contracts import Empty
from tgm_contracts.commands import ai as ai_cmd
from tgm_contracts.models.ai import AiSettingsView
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .service import ProviderService
from .usage import UsageReports


def register(runtime: Runtime) -> None:
    @runtime.command(ai_cmd.GetAiSettings)
    async def get_ai_settings(req: Empty, ctx: Ctx) -> AiSettingsView:
        return await ctx.app.providers.get()

    route_use_case(runtime, ProviderService, lambda app: app.providers)
    route_use_case(runtime, UsageReports, lambda app: app.usage)
