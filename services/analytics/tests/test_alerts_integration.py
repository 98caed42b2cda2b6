"""Alerts on a real nats-server and database: the durable all-events consumer, and the service probe
asking real `sys.info` subjects (a campaign runtime that stops and comes back)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from tgm_analytics.bootstrap import build
from tgm_analytics.settings import AnalyticsSettings
from tgm_contracts import Service
from tgm_contracts.commands.analytics import GetAlertsRequest
from tgm_contracts.events_session import AccountStatusChanged
from tgm_runtime import RuntimeSettings, ServiceRuntime

from .conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_probe_and_events_over_real_nats(
    nats_server: Any, mongo_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_SECONDS", "0.3")
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_TIMEOUT_SECONDS", "0.5")
    prefix = f"al{uuid.uuid4().hex[:8]}_"

    def settings(name: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=nats_server.url,
            mongodb_uri=mongo_server.uri,
            database_prefix=prefix,
            data_dir=tmp_path,
            replica_id=f"{name}-{uuid.uuid4().hex[:4]}",
        )

    analytics = build(AnalyticsSettings(runtime=settings("analytics")))
    campaign = ServiceRuntime(Service.CAMPAIGN, "test", settings=settings("campaign"))
    started: list[ServiceRuntime] = []
    try:
        for rt in (campaign, analytics):
            await rt.start()
            started.append(rt)

        async def down(service: Service, dismissed: bool | None = None) -> list[Any]:
            page = await analytics.app.alerts.list(GetAlertsRequest(code="service.down", service=service))
            return [a for a in page.items if dismissed is None or a.dismissed is dismissed]

        # Nothing serves the gateway, tg-session or ai here: two misses each, then critical alerts.
        [gw] = await eventually(lambda: down(Service.GATEWAY), timeout=15)
        assert gw.level == "critical" and gw.count == 1
        assert await down(Service.CAMPAIGN) == []  # campaign answers its sys.info

        await campaign.stop()
        started.remove(campaign)
        [alert] = await eventually(lambda: down(Service.CAMPAIGN, dismissed=False), timeout=15)
        back = ServiceRuntime(Service.CAMPAIGN, "test", settings=settings("campaign"))
        await back.start()
        started.append(back)
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
        for rt in reversed(started):
            await rt.stop()
        client = mongo_server.client()
        try:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
        finally:
            client.close()
