"""Analytics feature `alerts`: rules over every event of the system, a probe of every service, and the
`get-alerts`, `dismiss-alert`, `clear-alerts` commands.

`runtime.state.alerts` is the `AlertService` (`list(GetAlertsRequest) -> AlertPage` for reports).
Environment (tests shorten them): `TGM_ANALYTICS_PROBE_SECONDS` (30; 0 turns the probe off),
`TGM_ANALYTICS_PROBE_TIMEOUT_SECONDS` (3), `TGM_ANALYTICS_PROBE_MISSES` (2).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_contracts import BACKEND_SERVICES, ErrorCode, Event, Service, subjects
from tgm_contracts import sys as sysops
from tgm_contracts.commands.analytics import (
    AlertPage,
    ClearAlerts,
    ClearAlertsRequest,
    DismissAlert,
    DismissAlertRequest,
    GetAlerts,
    GetAlertsRequest,
)
from tgm_contracts.models.analytics import AlertView
from tgm_runtime import CallContext, DomainError, ServiceRuntime

from .probe import ServiceProbe
from .rules import RuleSettings, Signal
from .service import AlertService, rule_settings_from
from .store import AlertStore
from .store import create_indexes as _create_indexes


class AlertsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_ANALYTICS_", extra="ignore")

    probe_seconds: float = Field(30.0, ge=0)
    probe_timeout_seconds: float = Field(3.0, gt=0)
    probe_misses: int = Field(2, ge=1)


#: Who the probe asks: every service but analytics itself (if it is down, nobody is asking).
PROBED: tuple[Service, ...] = tuple(
    s for s in (Service.GATEWAY, *BACKEND_SERVICES) if s is not Service.ANALYTICS
)


def _asker(rt: ServiceRuntime, timeout: float) -> Any:
    async def ask(service: Service) -> bool | None:
        conn = getattr(rt.broker, "_connection", None)
        if conn is None or not getattr(conn, "is_connected", True):
            return None  # our own bus is down: that says nothing about the others
        try:
            await rt.request(subjects.sys(service, sysops.Info.OP), {}, sysops.ServiceInfo, timeout)
        except DomainError as exc:
            # An error reply still proves the service is there; only silence counts as a miss.
            return exc.code not in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT)
        return True

    return ask


def register(runtime: ServiceRuntime) -> None:
    """Subscribe this feature's commands, its event consumer and its probe on the runtime."""

    @runtime.on_start
    async def _build(rt: ServiceRuntime) -> None:
        cfg = AlertsSettings()

        async def settings() -> RuleSettings:
            return rule_settings_from(await rt.settings_section("analytics"))

        alerts = AlertService(AlertStore(rt.db), rt.publish, settings)
        rt.state.alerts = alerts
        rt.state.alert_probe = None
        if cfg.probe_seconds > 0:
            probe = ServiceProbe(
                alerts,
                _asker(rt, cfg.probe_timeout_seconds),
                PROBED,
                rt.settings.replica_id,
                cfg.probe_seconds,
                cfg.probe_misses,
            )
            rt.state.alert_probe = probe
            probe.start()

    @runtime.on_stop
    async def _stop(rt: ServiceRuntime) -> None:
        probe = getattr(rt.state, "alert_probe", None)
        if probe is not None:
            await probe.stop()

    @runtime.subscribe_all_events(durable="alerts")
    async def _on_event(event: Event) -> None:
        await runtime.state.alerts.handle(event)

    @runtime.command(GetAlerts)
    async def get_alerts(req: GetAlertsRequest, ctx: CallContext) -> AlertPage:
        return await ctx.state.alerts.list(req)

    @runtime.command(DismissAlert)
    async def dismiss_alert(req: DismissAlertRequest, ctx: CallContext) -> AlertView:
        return await ctx.state.alerts.dismiss(req, ctx.principal)

    @runtime.command(ClearAlerts)
    async def clear_alerts(req: ClearAlertsRequest, ctx: CallContext) -> Any:
        return await ctx.state.alerts.clear(req, ctx.principal)


async def create_indexes(db: Any) -> None:
    """The `alerts` collection (one open alert per fold key), burst marks and the probe lease."""
    await _create_indexes(db)


__all__ = ["AlertService", "AlertStore", "ServiceProbe", "Signal", "create_indexes", "register"]
