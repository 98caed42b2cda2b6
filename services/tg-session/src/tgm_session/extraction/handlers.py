"""The member extraction commands: start, status, cancel, collected users, export."""

from __future__ import annotations

from tgm_contracts.base import Page
from tgm_contracts.commands import telegram_ops as telegram_cmd
from tgm_contracts.models.analytics import ExportFile
from tgm_contracts.models.session import CollectedUserView, ExtractionJobView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(telegram_cmd.ExtractMembers)
    async def extract_members(req: telegram_cmd.ExtractMembersRequest, ctx: Ctx) -> ExtractionJobView:
        return await ctx.app.extractions.start(req)

    @runtime.command(telegram_cmd.GetExtractionStatus)
    async def get_extraction_status(
        req: telegram_cmd.GetExtractionStatusRequest, ctx: Ctx
    ) -> telegram_cmd.ExtractionJobList:
        return await ctx.app.extractions.status(req)

    @runtime.command(telegram_cmd.CancelExtraction)
    async def cancel_extraction(req: telegram_cmd.JobRef, ctx: Ctx) -> ExtractionJobView:
        return await ctx.app.extractions.cancel(req)

    @runtime.command(telegram_cmd.GetCollectedUsers)
    async def get_collected_users(
        req: telegram_cmd.GetCollectedUsersRequest, ctx: Ctx
    ) -> Page[CollectedUserView]:
        return await ctx.app.extractions.collected(req)

    @runtime.command(telegram_cmd.ExportCollectedUsers)
    async def export_collected_users(req: telegram_cmd.ExportCollectedUsersRequest, ctx: Ctx) -> ExportFile:
        return await ctx.app.extractions.export(req)
