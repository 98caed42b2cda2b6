"""The analytics use cases, as handlers see them: `ctx.app` is an `AnalyticsApp` (built by bootstrap.py
at every start, once the database is there).

Analytics never reads another service's database: it knows only what the others publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import ServiceRuntime

from .alerts.probe import ServiceProbe
from .alerts.service import AlertService
from .rebuild.service import Rebuild
from .reports.service import ReportService
from .retention import Retention
from .stats.queries import StatsQueries
from .stats.service import Ingest
from .telemetry.logs import LogService
from .telemetry.perf import PerformanceService
from .telemetry.service import TelemetryIntake


@dataclass(frozen=True)
class AnalyticsApp:
    #: The six statistics (get-dashboard-stats, …) and the consumer that feeds them.
    stats: StatsQueries
    ingest: Ingest
    stats_retention: Retention
    #: The recount after a restore and on demand (rebuild-analytics, get-analytics-rebuild).
    rebuild: Rebuild
    #: Alert rules, get/dismiss/clear-alerts, and the probe of every other service.
    alerts: AlertService
    probe: ServiceProbe
    #: export-report, schedule-report and the scheduler.
    reports: ReportService
    #: What every service ships on TGM_TELEMETRY, get/export/clear-logs and get-performance.
    telemetry: TelemetryIntake
    logs: LogService
    performance: PerformanceService
    telemetry_retention: Retention


Runtime = ServiceRuntime[AnalyticsApp]
