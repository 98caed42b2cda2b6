"""The six statistics commands and the durable consumer `analytics_stats` of every event."""

from __future__ import annotations

from prometheus_client import Counter
from tgm_contracts.commands import analytics as analytics_cmd
from tgm_contracts.events import Event

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    ingested = Counter(
        "tgm_analytics_events_ingested_total",
        "Events consumed from TGM_EVENTS into statistics (redeliveries included).",
        ["event"],
        registry=runtime.registry,
    )

    @runtime.subscribe_all_events(durable="stats")
    async def on_event(evt: Event) -> None:
        await runtime.app.ingest.handle(evt)
        ingested.labels(event=evt.NAME).inc()

    @runtime.command(analytics_cmd.GetDashboardStats)
    async def get_dashboard_stats(
        req: analytics_cmd.DashboardRequest, ctx: Ctx
    ) -> analytics_cmd.DashboardStats:
        return await ctx.app.stats.dashboard(req)

    @runtime.command(analytics_cmd.GetAnalytics)
    async def get_analytics(
        req: analytics_cmd.GetAnalyticsRequest, ctx: Ctx
    ) -> analytics_cmd.AnalyticsResult:
        return await ctx.app.stats.analytics(req)

    @runtime.command(analytics_cmd.GetMessageStats)
    async def get_message_stats(
        req: analytics_cmd.MessageStatsRequest, ctx: Ctx
    ) -> analytics_cmd.MessageStats:
        return await ctx.app.stats.messages(req)

    @runtime.command(analytics_cmd.GetUserStats)
    async def get_user_stats(req: analytics_cmd.UserStatsRequest, ctx: Ctx) -> analytics_cmd.UserStats:
        return await ctx.app.stats.users(req)

    @runtime.command(analytics_cmd.GetGroupStats)
    async def get_group_stats(req: analytics_cmd.GroupStatsRequest, ctx: Ctx) -> analytics_cmd.GroupStats:
        return await ctx.app.stats.groups(req)

    @runtime.command(analytics_cmd.GetConversionStats)
    async def get_conversion_stats(
        req: analytics_cmd.ConversionStatsRequest, ctx: Ctx
    ) -> analytics_cmd.ConversionStats:
        return await ctx.app.stats.conversions(req)
