"""The alerts commands (`get-alerts`, `dismiss-alert`, `clear-alerts`) and the consumer of every event
that the rules judge (durable `analytics_alerts`)."""

from __future__ import annotations

from tgm_contracts import Event
from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import AlertService


def register(runtime: Runtime) -> None:
    @runtime.subscribe_all_events(durable="alerts")
    async def on_event(event: Event) -> None:
        await runtime.app.alerts.handle(event)

    route_use_case(runtime, AlertService, lambda app: app.alerts)
