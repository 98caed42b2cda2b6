"""The six statistics commands and the durable consumer `analytics_stats` of every event."""

from __future__ import annotations

from prometheus_client import Counter
from tgm_contracts.commands import analytics as analytics_cmd
from tgm_contracts.events import Event

from ..app import Runtime


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

    runtime.route(analytics_cmd.GetDashboardStats, lambda app: app.stats.dashboard)
    runtime.route(analytics_cmd.GetAnalytics, lambda app: app.stats.analytics)
    runtime.route(analytics_cmd.GetMessageStats, lambda app: app.stats.messages)
    runtime.route(analytics_cmd.GetUserStats, lambda app: app.stats.users)
    runtime.route(analytics_cmd.GetGroupStats, lambda app: app.stats.groups)
    runtime.route(analytics_cmd.GetConversionStats, lambda app: app.stats.conversions)
