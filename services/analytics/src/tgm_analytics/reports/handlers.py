"""The reports commands: `export-report` and `schedule-report`."""

from __future__ import annotations

from tgm_contracts.commands.analytics import (
    ExportReport,
    ScheduleReport,
    ScheduleReportRequest,
    ScheduleReportResult,
)

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    runtime.route(ExportReport, lambda app: app.reports.export)

    @runtime.command(ScheduleReport)
    async def schedule_report(req: ScheduleReportRequest, ctx: Ctx) -> ScheduleReportResult:
        return await ctx.app.reports.schedule(req, ctx.principal)
