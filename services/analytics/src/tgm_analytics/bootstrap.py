"""The composition root of analytics: `build()` makes the runtime, the factory of its `AnalyticsApp`,
the four domains' handlers and the background jobs (retention sweeps, the service probe, the report
scheduler). Nothing is built at import: tests build as many runtimes as they like.

- `stats`: every event of every service (TGM_EVENTS) folded into counted facts; the six statistics.
- `rebuild`: the recount of those facts from TGM_EVENTS and of account states from tg-session, after a
  restore and on demand (rebuild/service.py).
- `reports`: `export-report` and `schedule-report` (cron or interval, stored reports, deliveries).
- `alerts`: alert rules over the same events and a probe of every service; get/dismiss/clear-alerts.
- `telemetry`: the logs and performance samples every service ships (TGM_TELEMETRY); get-logs,
  export-logs, clear-logs, get-performance.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import Service, streams
from tgm_runtime.exports import Exports

from . import __version__
from .alerts import handlers as alerts_handlers
from .alerts.probe import PROBED, ServiceProbe, asker
from .alerts.rules import RuleSettings
from .alerts.service import AlertService, rule_settings_from
from .alerts.store import AlertStore
from .app import AnalyticsApp, Runtime
from .migrations import MIGRATIONS
from .rebuild import handlers as rebuild_handlers
from .rebuild.accounts import FleetRecord
from .rebuild.service import Rebuild
from .rebuild.store import RebuildStore
from .rebuild.stream import EventReplay
from .reports import handlers as reports_handlers
from .reports.adapters import Deliverer, reply_via, send_via
from .reports.builders import ReportSources
from .reports.service import ReportService
from .reports.store import ReportRepo, ScheduleRepo
from .retention import SWEEP_SECONDS, Retention
from .settings import AnalyticsSettings
from .stats import handlers as stats_handlers
from .stats import store as stats_store
from .stats.queries import GeneralZone, StatsQueries
from .stats.service import Ingest, gateway_timezone
from .stats.store import FactStore
from .telemetry import handlers as telemetry_handlers
from .telemetry import store as telemetry_store
from .telemetry.logs import LogService
from .telemetry.perf import PerformanceService
from .telemetry.service import TelemetryIntake
from .telemetry.store import LogStore, PerfStore


def build(settings: AnalyticsSettings | None = None) -> Runtime:
    """A runtime serving the 15 analytics commands and the 2 rebuild ones (tests pass settings with their own RuntimeSettings)."""
    settings = settings or AnalyticsSettings()
    runtime = Runtime(Service.ANALYTICS, __version__, migrations=MIGRATIONS, settings=settings.runtime)

    async def make_app() -> AnalyticsApp:
        return _app(runtime, settings)

    runtime.provide(make_app)
    for domain in (stats_handlers, rebuild_handlers, reports_handlers, alerts_handlers, telemetry_handlers):
        domain.register(runtime)
    _jobs(runtime, settings)
    return runtime


def _app(runtime: Runtime, settings: AnalyticsSettings) -> AnalyticsApp:
    db = runtime.db

    # The operator's `analytics` settings section, read again at every use (a change applies at once).
    async def analytics_section() -> Any:
        return await runtime.settings_section("analytics")

    async def event_retention_days() -> int:
        return int((await analytics_section()).event_retention_days)

    async def log_retention_days() -> int:
        return int((await analytics_section()).log_retention_days)

    async def rule_settings() -> RuleSettings:
        return rule_settings_from(await analytics_section())

    async def sweep_facts(days: int) -> dict[str, int]:
        return await stats_store.sweep(db, days)

    async def sweep_telemetry(days: int) -> dict[str, int]:
        return await telemetry_store.sweep(db, days)

    facts = FactStore(db)
    alert_store = AlertStore(db)
    stats = StatsQueries(
        facts, GeneralZone(facts, gateway_timezone(runtime)), open_alerts=alert_store.open_counts
    )
    alerts = AlertService(alert_store, runtime.publish, rule_settings)
    # Exports too large for one reply go to the object store; the gateway serves them (tgm_runtime.exports).
    exports = Exports(lambda: runtime.object_store(streams.EXPORTS))
    logs = LogService(LogStore(db), exports)
    performance = PerformanceService(PerfStore(db))
    reports = ReportService(
        ReportSources(stats=stats, alerts=alerts, performance=performance),
        ScheduleRepo(db),
        ReportRepo(db),
        Deliverer(
            send_via(runtime),
            settings.webhook_timeout_seconds,
            settings.telegram_timeout_seconds,
            reply_via(runtime),
        ),
        runtime.publish,
        runtime.spawn,
        raise_alert=alerts.raise_signal,
        keep=settings.reports_keep,
        exports=exports,
    )
    ingest = Ingest(facts)

    async def refresh_span() -> None:
        await stats.refresh_span()

    rebuild = Rebuild(
        facts,
        ingest,
        EventReplay(runtime.js),
        FleetRecord(runtime.call),
        RebuildStore(db),
        runtime.spawn,
        after=refresh_span,
    )
    return AnalyticsApp(
        stats=stats,
        ingest=ingest,
        # The facts' span decides how long windows are read (queries.SCAN_FRACTION): look it up after.
        stats_retention=Retention("stats", event_retention_days, sweep_facts, after=stats.refresh_span),
        rebuild=rebuild,
        alerts=alerts,
        probe=ServiceProbe(
            alerts,
            asker(runtime, settings.probe_timeout_seconds),
            PROBED,
            runtime.settings.replica_id,
            settings.probe_seconds,
            settings.probe_misses,
        ),
        reports=reports,
        telemetry=TelemetryIntake(logs, performance),
        logs=logs,
        performance=performance,
        telemetry_retention=Retention("telemetry", log_retention_days, sweep_telemetry),
    )


def _jobs(runtime: Runtime, settings: AnalyticsSettings) -> None:
    """The periodic work, started with the service and stopped with it (tgm_runtime.tasks)."""

    async def sweep_stats() -> None:
        await runtime.app.stats_retention.round()

    async def sweep_telemetry() -> None:
        await runtime.app.telemetry_retention.round()

    runtime.every(SWEEP_SECONDS, sweep_stats, "stats-retention")
    runtime.every(SWEEP_SECONDS, sweep_telemetry, "telemetry-retention")

    @runtime.on_restore
    async def _restored(rt: object) -> None:
        # What was counted since the backup is recounted (rebuild/service.py); the span after it.
        runtime.app.stats.forget_span()
        await runtime.app.rebuild.after_restore()

    if settings.probe_seconds > 0:

        async def probe() -> None:
            await runtime.app.probe.round()

        # The first round waits one interval, so services starting with analytics are not missed.
        runtime.every(
            settings.probe_seconds, probe, "alerts-service-probe", first_after=settings.probe_seconds
        )

        @runtime.on_stop
        async def _release(rt: object) -> None:
            await runtime.app.probe.release()

    if settings.scheduler_seconds > 0:

        async def tick() -> None:
            await runtime.app.reports.tick()

        runtime.every(settings.scheduler_seconds, tick, "report-scheduler")
