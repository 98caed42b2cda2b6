"""The reports commands: `export-report` and `schedule-report`."""

from __future__ import annotations

from tgm_contracts.commands.analytics import (
    ExportReport,
    ExportReportRequest,
    ScheduleReport,
    ScheduleReportRequest,
    ScheduleReportResult,
)
from tgm_contracts.models.analytics import ExportFile

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(ExportReport)
    async def export_report(req: ExportReportRequest, ctx: Ctx) -> ExportFile:
        return await ctx.app.reports.export(req)

    @runtime.command(ScheduleReport)
    async def schedule_report(req: ScheduleReportRequest, ctx: Ctx) -> ScheduleReportResult:
        return await ctx.app.reports.schedule(req, ctx.principal)
