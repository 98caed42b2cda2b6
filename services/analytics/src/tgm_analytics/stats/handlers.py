"""The six statistics commands and the durable consumer `analytics_stats` of every event."""

from __future__ import annotations

from prometheus_client import Counter
from tgm_contracts.events import Event
from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .queries import StatsQueries


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

    route_use_case(runtime, StatsQueries, lambda app: app.stats)
