"""Alerts on a real nats-server and database: the durable all-events consumer, and the service probe
asking real `sys.info` subjects (a campaign runtime that stops and comes back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tgm_analytics.bootstrap import build
from tgm_analytics.settings import AnalyticsSettings
from tgm_contracts import Service
from tgm_contracts.commands.analytics import GetAlertsRequest
from tgm_contracts.events_session import AccountStatusChanged
from tgm_runtime import ServiceRuntime

from .conftest import RealBus, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_probe_and_events_over_real_nats(
    nats_server: Any, mongo_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_SECONDS", "0.3")
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_TIMEOUT_SECONDS", "0.5")
    bus = RealBus(nats_server, mongo_server, tmp_path, "al")
    analytics = build(AnalyticsSettings(runtime=bus.settings("analytics")))
    campaign = ServiceRuntime(Service.CAMPAIGN, "test", settings=bus.settings("campaign"))
    try:
        await bus.start(campaign, analytics)

        async def down(service: Service, dismissed: bool | None = None) -> list[Any]:
            page = await analytics.app.alerts.list(GetAlertsRequest(code="service.down", service=service))
            return [a for a in page.items if dismissed is None or a.dismissed is dismissed]

        # Nothing serves the gateway, tg-session or ai here: two misses each, then critical alerts.
        [gw] = await eventually(lambda: down(Service.GATEWAY), timeout=15)
        assert gw.level == "critical" and gw.count == 1
        assert await down(Service.CAMPAIGN) == []  # campaign answers its sys.info

        await bus.stop(campaign)
        [alert] = await eventually(lambda: down(Service.CAMPAIGN, dismissed=False), timeout=15)
        back = ServiceRuntime(Service.CAMPAIGN, "test", settings=bus.settings("campaign"))
        await bus.start(back)
        [resolved] = await eventually(lambda: down(Service.CAMPAIGN, dismissed=True), timeout=15)
        assert resolved.id == alert.id and resolved.dismissed_by == "system"

        # The durable consumer of every event raises account alerts from what tg-session publishes.
        await back.publish(
            AccountStatusChanged(account_id="acc1", state="unauthorized", previous_state="active")
        )

        async def unauthorized() -> list[Any]:
            return (await analytics.app.alerts.list(GetAlertsRequest(code="account.unauthorized"))).items

        [acc] = await eventually(unauthorized, timeout=15)
        assert acc.account_id == "acc1" and acc.level == "critical"
    finally:
        await bus.close()
