"""Analytics feature `reports`: `export-report` (a report now as CSV, XLSX or JSON, or a stored one by
`reportId`) and `schedule-report` (cron or interval schedules with stored reports and deliveries).

Reports are computed from the query objects the other features put on `runtime.state` (`stats`,
`alerts`, `performance`). Environment: `TGM_ANALYTICS_SCHEDULER_SECONDS` (15; 0 turns the loop off),
`TGM_ANALYTICS_REPORTS_KEEP` (20 per schedule), `TGM_ANALYTICS_WEBHOOK_TIMEOUT_SECONDS` (15),
`TGM_ANALYTICS_TELEGRAM_TIMEOUT_SECONDS` (30).
"""

from __future__ import annotations

from typing import Any

from tgm_contracts.commands.analytics import (
    ExportReport,
    ExportReportRequest,
    ScheduleReport,
    ScheduleReportRequest,
    ScheduleReportResult,
)
from tgm_contracts.models.analytics import ExportFile
from tgm_runtime import CallContext, ServiceRuntime

from .delivery import Deliverer, send_via
from .service import ReportService, ReportsSettings
from .store import ReportRepo, ScheduleRepo
from .store import create_indexes as _create_indexes


def register(runtime: ServiceRuntime) -> None:
    """Subscribe this feature's commands and start its scheduler with the runtime."""

    @runtime.on_start
    async def _build(rt: ServiceRuntime) -> None:
        cfg = ReportsSettings()
        service = ReportService(
            rt.state,
            ScheduleRepo(rt.db),
            ReportRepo(rt.db),
            Deliverer(send_via(rt), cfg.webhook_timeout_seconds, cfg.telegram_timeout_seconds),
            rt.publish,
            keep=cfg.reports_keep,
        )
        rt.state.reports = service
        if cfg.scheduler_seconds > 0:
            service.start(cfg.scheduler_seconds)

    @runtime.on_stop
    async def _stop(rt: ServiceRuntime) -> None:
        service = getattr(rt.state, "reports", None)
        if service is not None:
            await service.stop()

    @runtime.command(ExportReport)
    async def export_report(req: ExportReportRequest, ctx: CallContext) -> ExportFile:
        return await ctx.state.reports.export(req)

    @runtime.command(ScheduleReport)
    async def schedule_report(req: ScheduleReportRequest, ctx: CallContext) -> ScheduleReportResult:
        return await ctx.state.reports.schedule(req, ctx.principal)


async def create_indexes(db: Any) -> None:
    """Report schedules (by due time) and stored reports (by schedule, newest first)."""
    await _create_indexes(db)


__all__ = ["ReportService", "create_indexes", "register"]
