"""Wiring of the analytics service: the runtime, its migrations and the four features.

- `stats`: every event of every service (TGM_EVENTS) folded into counted facts; the six statistics
  commands (dashboard, analytics, messages, users, groups, conversions).
- `reports`: `export-report` and `schedule-report` (cron or interval, stored reports, deliveries).
- `alerts`: alert rules over the same events; `get-alerts`, `dismiss-alert`, `clear-alerts`.
- `telemetry`: the logs and performance samples every service ships (TGM_TELEMETRY); `get-logs`,
  `export-logs`, `clear-logs`, `get-performance`.

Each feature module exposes `register(runtime)`; its indexes are a numbered migration in migrations.py.
Analytics never reads another service's database: it knows only what the others publish.
"""

from __future__ import annotations

from tgm_contracts import Service
from tgm_runtime import RuntimeSettings, ServiceRuntime

from . import __version__, alerts, reports, stats, telemetry
from .migrations import MIGRATIONS


def create_runtime(settings: RuntimeSettings | None = None) -> ServiceRuntime:
    """A runtime serving the 15 analytics commands (tests build their own with their own settings)."""
    rt = ServiceRuntime(Service.ANALYTICS, __version__, migrations=MIGRATIONS, settings=settings)
    for feature in (stats, reports, alerts, telemetry):
        feature.register(rt)
    return rt


runtime = create_runtime()
