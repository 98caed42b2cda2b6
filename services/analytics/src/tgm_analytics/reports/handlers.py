"""The reports commands: `export-report` and `schedule-report`."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import ReportService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, ReportService, lambda app: app.reports)
