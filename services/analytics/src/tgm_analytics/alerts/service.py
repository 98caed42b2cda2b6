"""The alerts use cases: apply the rules to events, list, dismiss and clear, and publish what changed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tgm_contracts import Event, Service
from tgm_contracts.base import Ack
from tgm_contracts.commands.analytics import (
    AlertPage,
    ClearAlerts,
    ClearAlertsRequest,
    DismissAlert,
    DismissAlertRequest,
    GetAlerts,
    GetAlertsRequest,
)
from tgm_contracts.events_analytics import AlertDismissed, AlertRaised, AlertsCleared
from tgm_contracts.models.analytics import AlertView
from tgm_runtime import NotFound
from tgm_runtime.routes import answers

from .rules import Burst, Raise, Resolve, RuleSettings, Signal, evaluate
from .store import AlertStore, view

log = logging.getLogger("tgm.analytics.alerts")

#: `runtime.publish` (alerts and reports both publish what changed; a failure fails the call).
Publish = Callable[[Event], Awaitable[None]]
SettingsFn = Callable[[], Awaitable[RuleSettings]]

SYSTEM = "system"
#: What `alert-raised` carries of the alert, under the same names.
_RAISED_FIELDS = set(AlertRaised.model_fields) & set(AlertView.model_fields)


def _now() -> datetime:
    return datetime.now(UTC)


class AlertService:
    """`AnalyticsApp.alerts`: `list(GetAlertsRequest) -> AlertPage` for reports, and the rest
    for the handlers, the event consumer and the service probe."""

    def __init__(
        self,
        store: AlertStore,
        publish: Publish,
        settings: SettingsFn,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.publish = publish
        self.settings = settings
        self.clock = clock

    # --- events ----------------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Apply the rules to one event (delivered at least once: every step is idempotent)."""
        if event.OWNER is Service.ANALYTICS:
            return  # our own alert and report events raise nothing
        actions = evaluate(event, await self.settings())
        for action in actions:
            if isinstance(action, Raise):
                await self.raise_signal(action.signal)
            elif isinstance(action, Burst):
                count = await self.store.mark(
                    action.key, action.signal.event_id, action.signal.at, action.window
                )
                if count >= action.threshold:
                    await self.raise_signal(action.signal)
            elif isinstance(action, Resolve):
                await self.resolve(list(action.fold_keys), SYSTEM)

    async def raise_signal(self, sig: Signal) -> AlertView | None:
        raised = await self.store.raise_signal(sig)
        if raised is None:
            return None
        alert = view(raised.doc)
        log.info("alert %s %s (%s) count=%d", alert.level, alert.code, alert.id, alert.count)
        await self.publish(
            AlertRaised(alert_id=alert.id, repeat=raised.repeat, **alert.model_dump(include=_RAISED_FIELDS))
        )
        return alert

    async def resolve(self, fold_keys: list[str], by: str = SYSTEM, note: str | None = None) -> int:
        """Dismiss the open alerts of these fold keys (the condition ended)."""
        done = 0
        for alert_id in await self.store.open_ids(fold_keys):
            doc = await self.store.dismiss(alert_id, by, note, self.clock())
            if doc is not None:
                done += 1
                await self.publish(AlertDismissed(alert_id=alert_id, dismissed_by=by))
        return done

    # --- commands --------------------------------------------------------------------------------

    @answers(GetAlerts)
    async def list(self, req: GetAlertsRequest) -> AlertPage:
        docs, cursor, total = await self.store.page(req)
        return AlertPage(
            items=[view(d) for d in docs],
            next_cursor=cursor,
            total=total,
            unresolved_by_level=await self.store.unresolved_by_level(),
        )

    @answers(DismissAlert, principal=True)
    async def dismiss(self, req: DismissAlertRequest, principal: str | None) -> AlertView:
        doc = await self.store.dismiss(req.alert_id, principal, req.note, self.clock())
        if doc is None:
            existing = await self.store.get(req.alert_id)
            if existing is None:
                raise NotFound(f"alert {req.alert_id} does not exist", {"alertId": req.alert_id})
            return view(existing)  # dismissed before: harmless, nothing changes
        await self.publish(AlertDismissed(alert_id=req.alert_id, dismissed_by=principal))
        return view(doc)

    @answers(ClearAlerts, principal=True)
    async def clear(self, req: ClearAlertsRequest, principal: str | None) -> Ack:
        affected = await self.store.clear(req, principal, self.clock())
        await self.publish(AlertsCleared(affected=affected, cleared_by=principal))
        return Ack(affected=affected)


def rule_settings_from(values: Any) -> RuleSettings:
    return RuleSettings(flood_waits_per_hour=int(getattr(values, "alert_flood_waits_per_hour", 10)))
