"""The alerts commands (`get-alerts`, `dismiss-alert`, `clear-alerts`) and the consumer of every event
that the rules judge (durable `analytics_alerts`)."""

from __future__ import annotations

from tgm_contracts import Event
from tgm_contracts.commands.analytics import ClearAlerts, DismissAlert, GetAlerts

from ..app import Runtime


def register(runtime: Runtime) -> None:
    @runtime.subscribe_all_events(durable="alerts")
    async def on_event(event: Event) -> None:
        await runtime.app.alerts.handle(event)

    runtime.route(GetAlerts, lambda app: app.alerts.list)

    runtime.route_with_principal(DismissAlert, lambda app: app.alerts.dismiss)
    runtime.route_with_principal(ClearAlerts, lambda app: app.alerts.clear)
