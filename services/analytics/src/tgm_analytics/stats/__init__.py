"""Analytics feature `stats`: every event on TGM_EVENTS folded into facts, and the six statistics.

- ingest.py: which events feed which fact or projection (the durable consumer `analytics_stats`).
- queries.py: get-dashboard-stats, get-analytics, get-message-stats, get-user-stats, get-group-stats,
  get-conversion-stats, computed from those facts (`runtime.state.stats`).
- timeline.py: hour/day buckets in a time zone, reply detection.
- Retention: facts (and leads, job links) older than `analytics.eventRetentionDays` are deleted by a
  sweep at start and every `SWEEP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from tgm_contracts import Service
from tgm_contracts import sys as sysops
from tgm_contracts.commands import analytics as A
from tgm_contracts.events import Event
from tgm_runtime import CallContext, ServiceRuntime

from .ingest import FACTS, JOBS, LEADS, USERS, Ingest, fact_of
from .queries import GeneralZone, StatsQueries
from .timeline import Timeline, detect_replies

__all__ = [
    "GeneralZone",
    "Ingest",
    "StatsQueries",
    "Timeline",
    "create_indexes",
    "detect_replies",
    "fact_of",
    "register",
    "sweep",
]

log = logging.getLogger(__name__)

#: How often the retention sweep runs.
SWEEP_SECONDS = 3600.0


async def create_indexes(db: Any) -> None:
    """Migration 1: the facts' time and job indexes, and the projections' time indexes."""
    facts = db[FACTS]
    await facts.create_index([("t", 1)])
    await facts.create_index([("k", 1), ("t", 1)])
    await facts.create_index([("j", 1)], sparse=True)
    await db[USERS].create_index([("first_at", 1)])
    await db[LEADS].create_index([("last_at", 1)])
    await db[LEADS].create_index([("captured_at", 1)])
    await db[JOBS].create_index([("at", 1)])


async def sweep(db: Any, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete facts, leads and job links last touched more than `retention_days` ago.

    Users, accounts and group links are state, not history, and stay (a user seen long ago must not
    come back as new)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    facts = await db[FACTS].delete_many({"t": {"$lt": cutoff}})
    leads = await db[LEADS].delete_many({"last_at": {"$lt": cutoff}})
    jobs = await db[JOBS].delete_many({"at": {"$lt": cutoff}})
    return {"facts": facts.deleted_count, "leads": leads.deleted_count, "jobs": jobs.deleted_count}


def register(runtime: ServiceRuntime) -> None:
    """The durable consumer `stats`, the six commands, `runtime.state.stats` and the retention sweep."""
    tasks: list[asyncio.Task[None]] = []
    ingested = Counter(
        "tgm_analytics_events_ingested_total",
        "Events consumed from TGM_EVENTS into statistics (redeliveries included).",
        ["event"],
        registry=runtime.registry,
    )

    async def ask_gateway() -> str | None:
        reply = await runtime.request(
            sysops.SettingsGet.subject(Service.GATEWAY),
            {"sections": ["general"]},
            sysops.SettingsSections,
            timeout=2.0,
        )
        for section in reply.sections:
            if section.section == "general":
                tz = section.values.get("timezone")
                return tz if isinstance(tz, str) else None
        return None

    @runtime.on_start
    async def _build(rt: ServiceRuntime) -> None:
        rt.state.stats_ingest = Ingest(rt.db)
        rt.state.stats = StatsQueries(rt.db, GeneralZone(rt.db, ask_gateway))
        tasks.append(asyncio.create_task(_sweeper(rt), name="stats-retention"))

    @runtime.on_stop
    async def _stop(rt: ServiceRuntime) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    @runtime.on_restore
    async def _restored(rt: ServiceRuntime) -> None:
        rt.state.stats_ingest = Ingest(rt.db)
        rt.state.stats = StatsQueries(rt.db, GeneralZone(rt.db, ask_gateway))
        # Restored facts have another span; until looked up, queries read through the index.
        tasks.append(asyncio.create_task(_refresh_span(rt.state.stats), name="stats-span"))

    @runtime.subscribe_all_events(durable="stats")
    async def _on_event(evt: Event) -> None:
        await runtime.state.stats_ingest.handle(evt)
        ingested.labels(event=evt.NAME).inc()

    @runtime.command(A.GetDashboardStats)
    async def get_dashboard_stats(req: A.DashboardRequest, ctx: CallContext) -> A.DashboardStats:
        return await ctx.state.stats.dashboard(req)

    @runtime.command(A.GetAnalytics)
    async def get_analytics(req: A.GetAnalyticsRequest, ctx: CallContext) -> A.AnalyticsResult:
        return await ctx.state.stats.analytics(req)

    @runtime.command(A.GetMessageStats)
    async def get_message_stats(req: A.MessageStatsRequest, ctx: CallContext) -> A.MessageStats:
        return await ctx.state.stats.messages(req)

    @runtime.command(A.GetUserStats)
    async def get_user_stats(req: A.UserStatsRequest, ctx: CallContext) -> A.UserStats:
        return await ctx.state.stats.users(req)

    @runtime.command(A.GetGroupStats)
    async def get_group_stats(req: A.GroupStatsRequest, ctx: CallContext) -> A.GroupStats:
        return await ctx.state.stats.groups(req)

    @runtime.command(A.GetConversionStats)
    async def get_conversion_stats(req: A.ConversionStatsRequest, ctx: CallContext) -> A.ConversionStats:
        return await ctx.state.stats.conversions(req)


async def _refresh_span(queries: StatsQueries) -> None:
    try:
        await queries.refresh_span()
    except Exception:
        log.exception("looking up the facts' span failed; long windows read through the index")


async def _sweeper(rt: ServiceRuntime) -> None:
    while True:
        try:
            settings = await rt.settings_section("analytics")
            removed = await sweep(rt.db, settings.event_retention_days)
            if any(removed.values()):
                log.info("stats retention sweep removed %s", removed)
            # The facts' span decides how long windows are read (queries.SCAN_FRACTION).
            await rt.state.stats.refresh_span()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stats retention sweep failed; retrying next round")
        await asyncio.sleep(SWEEP_SECONDS)
