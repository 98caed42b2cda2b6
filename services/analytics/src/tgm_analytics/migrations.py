"""Numbered migrations of the analytics database (applied at start and by `run-migrations`).

One per feature, each creating that feature's collections and indexes; later changes append numbers.
"""

from __future__ import annotations

from tgm_runtime import Migration

from . import alerts, reports, stats, telemetry

MIGRATIONS: list[Migration] = [
    Migration(1, "stats: facts and projections", stats.create_indexes),
    Migration(2, "reports: schedules and stored reports", reports.create_indexes),
    Migration(3, "alerts", alerts.create_indexes),
    Migration(4, "telemetry: logs and performance samples", telemetry.create_indexes),
]
