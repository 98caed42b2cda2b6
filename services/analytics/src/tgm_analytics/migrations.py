"""Numbered migrations of the analytics database (applied at start and by `run-migrations`).

One per domain, each creating that domain's collections and indexes (in its store); later changes
append numbers.
"""

from __future__ import annotations

from tgm_runtime import Migration

from .alerts import store as alerts_store
from .reports import store as reports_store
from .stats import store as stats_store
from .telemetry import store as telemetry_store

MIGRATIONS: list[Migration] = [
    Migration(1, "stats: facts and projections", stats_store.create_indexes),
    Migration(2, "reports: schedules and stored reports", reports_store.create_indexes),
    Migration(3, "alerts", alerts_store.create_indexes),
    Migration(4, "telemetry: logs and performance samples", telemetry_store.create_indexes),
    Migration(5, "stats: refused send attempts apart from failed jobs", stats_store.split_failures),
]
