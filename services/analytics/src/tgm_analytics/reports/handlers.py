"""The reports commands: `export-report` and `schedule-report`."""

from __future__ import annotations

from tgm_contracts.commands.analytics import ExportReport, ScheduleReport

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route(ExportReport, lambda app: app.reports.export)

    runtime.route_with_principal(ScheduleReport, lambda app: app.reports.schedule)
