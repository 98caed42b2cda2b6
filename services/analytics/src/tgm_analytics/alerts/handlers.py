"""The alerts commands (`get-alerts`, `dismiss-alert`, `clear-alerts`) and the consumer of every event
that the rules judge (durable `analytics_alerts`)."""

from __future__ import annotations

from tgm_contracts import Event
from tgm_contracts.base import Ack
from tgm_contracts.commands.analytics import (
    ClearAlerts,
    ClearAlertsRequest,
    DismissAlert,
    DismissAlertRequest,
    GetAlerts,
)
from tgm_contracts.models.analytics import AlertView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.subscribe_all_events(durable="alerts")
    async def on_event(event: Event) -> None:
        await runtime.app.alerts.handle(event)

    runtime.route(GetAlerts, lambda app: app.alerts.list)

    @runtime.command(DismissAlert)
    async def dismiss_alert(req: DismissAlertRequest, ctx: Ctx) -> AlertView:
        return await ctx.app.alerts.dismiss(req, ctx.principal)

    @runtime.command(ClearAlerts)
    async def clear_alerts(req: ClearAlertsRequest, ctx: Ctx) -> Ack:
        return await ctx.app.alerts.clear(req, ctx.principal)
