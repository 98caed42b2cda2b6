"""Alerts through the real analytics runtime on the in-memory broker with a real database: events of the
other services go in, commands and alert events come out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.nats import JStream, NatsMessage
from tgm_analytics.alerts.probe import ServiceProbe
from tgm_contracts import Service
from tgm_contracts.commands.analytics import ClearAlerts, DismissAlert, GetAlerts
from tgm_contracts.events_ai import AiProviderFailed
from tgm_contracts.events_campaign import JobStateChanged
from tgm_contracts.events_session import AccountStatusChanged, FloodWaitRecorded, LoginFailed
from tgm_runtime.testing import RuntimeClient, runtime_client

from .conftest import analytics

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

#: analytics events published during the current test: (name, body).
PUBLISHED: list[tuple[str, dict[str, Any]]] = []


async def _collect(msg: NatsMessage) -> None:
    PUBLISHED.append((msg.raw_message.subject.split(".")[3], json.loads(msg.body)))


def published(name: str) -> list[dict[str, Any]]:
    return [body for n, body in PUBLISHED if n == name]


@pytest.fixture
async def client(mongo_server: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RuntimeClient]:
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_SECONDS", "0")  # probed by hand below
    monkeypatch.setenv("TGM_ANALYTICS_SCHEDULER_SECONDS", "0")
    PUBLISHED.clear()
    runtime = analytics()
    runtime.broker.subscriber("tgm.analytics.evt.*.v1", stream=JStream("TGM_EVENTS", declare=False))(_collect)
    async with runtime_client(runtime, mongo_server.uri) as c:
        yield c


async def alerts(client: RuntimeClient, **filters: Any) -> dict[str, Any]:
    return await client.data(GetAlerts, filters)


async def test_account_alert_folds_ignores_redelivery_and_reopens_after_dismissal(
    client: RuntimeClient,
) -> None:
    first = AccountStatusChanged(account_id="a1", phone="+15550001", state="banned", previous_state="active")
    await client.runtime.publish(first)
    page = await alerts(client)
    [alert] = page["items"]
    assert (alert["level"], alert["code"], alert["accountId"], alert["count"]) == (
        "critical",
        "account.banned",
        "a1",
        1,
    )
    assert page["unresolvedByLevel"] == {"critical": 1} and page["total"] == 1

    await client.runtime.publish(first)  # redelivered: the count must not grow
    assert (await alerts(client))["items"][0]["count"] == 1
    assert len(published("alert-raised")) == 1

    again = AccountStatusChanged(account_id="a1", state="banned", previous_state="disconnected")
    await client.runtime.publish(again)
    [alert] = (await alerts(client))["items"]
    assert alert["count"] == 2 and alert["sourceEventId"] == again.event_id
    raised = published("alert-raised")
    assert [r["repeat"] for r in raised] == [False, True] and raised[1]["count"] == 2

    dismissed = await client.data(DismissAlert, {"alertId": alert["id"], "note": "appealed"})
    assert dismissed["dismissed"] is True and dismissed["note"] == "appealed" and dismissed["dismissedAt"]
    twice = await client.data(DismissAlert, {"id": alert["id"]})
    assert twice["dismissed"] is True and twice["note"] == "appealed"
    assert len(published("alert-dismissed")) == 1

    await client.runtime.publish(first)  # an old event delivered again after dismissal opens nothing
    assert (await alerts(client))["total"] == 1
    await client.runtime.publish(
        AccountStatusChanged(account_id="a1", state="banned", previous_state="active")
    )
    page = await alerts(client)
    assert page["total"] == 2
    assert page["items"][0]["id"] != alert["id"] and page["items"][0]["count"] == 1
    assert page["unresolvedByLevel"] == {"critical": 1}

    missing = await client.call(DismissAlert, {"alertId": "nope"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_flood_wait_rate_uses_the_setting_and_a_sliding_hour(client: RuntimeClient) -> None:
    assert client.runtime.settings_store is not None
    await client.runtime.settings_store.save("analytics", {"alertFloodWaitsPerHour": 3}, None)
    now = datetime.now(UTC)

    def wait(at: datetime) -> FloodWaitRecorded:
        return FloodWaitRecorded(account_id="a2", seconds=20, until=at, category="send", occurred_at=at)

    await client.runtime.publish(wait(now - timedelta(hours=2)))  # outside the hour: not counted
    for i in range(3):
        await client.runtime.publish(wait(now - timedelta(minutes=30 - i)))
    assert (await alerts(client))["total"] == 0
    fourth = wait(now)
    await client.runtime.publish(fourth)
    [alert] = (await alerts(client))["items"]
    assert alert["code"] == "flood_wait.rate" and alert["level"] == "warning" and alert["count"] == 1
    await client.runtime.publish(fourth)
    assert (await alerts(client))["items"][0]["count"] == 1
    await client.runtime.publish(wait(now + timedelta(seconds=1)))
    assert (await alerts(client))["items"][0]["count"] == 2
    # another account has its own hour
    await client.runtime.publish(FloodWaitRecorded(account_id="a3", seconds=5, until=now, category="send"))
    assert (await alerts(client))["total"] == 1


async def test_job_bursts_logins_and_providers(client: RuntimeClient) -> None:
    for i in range(4):
        await client.runtime.publish(
            JobStateChanged(job_id=f"j{i}", state="failed", peer=5, campaign_id="c1")
        )
    assert (await alerts(client, code="campaign.jobs_failed"))["total"] == 0
    await client.runtime.publish(
        JobStateChanged(job_id="j5", state="failed", peer=5, campaign_id="c1", error="PEER_FLOOD")
    )
    [burst] = (await alerts(client, code="campaign.jobs_failed"))["items"]
    assert burst["subject"] == "c1" and burst["level"] == "error" and "PEER_FLOOD" in burst["message"]

    await client.runtime.publish(
        LoginFailed(account_id="a5", method="code", error="PHONE_CODE_INVALID", message="x")
    )
    await client.runtime.publish(
        LoginFailed(
            account_id="a5", method="code", error="PHONE_NUMBER_BANNED", message="x", recoverable=False
        )
    )
    [login] = (await alerts(client, code="login.failed"))["items"]
    assert login["accountId"] == "a5" and login["level"] == "error"

    for _ in range(2):
        await client.runtime.publish(
            AiProviderFailed(provider="openai", code="UNAUTHORIZED", message="401", operation="chat")
        )
    [key] = (await alerts(client, code="ai.provider_key_rejected"))["items"]
    assert key["count"] == 2 and key["service"] == "ai" and key["subject"] == "openai"


async def test_list_filters_pagination_and_clear(client: RuntimeClient) -> None:
    base = datetime.now(UTC) - timedelta(minutes=10)
    states = ["banned", "frozen", "peer_flood", "proxy_error", "unauthorized"] * 2
    for i, state in enumerate(states):
        await client.runtime.publish(
            AccountStatusChanged(
                account_id=f"acc{i}",
                state=state,
                previous_state="active",
                occurred_at=base + timedelta(seconds=i),
            )
        )
    everything = await alerts(client)
    assert everything["total"] == 10
    stamps = [a["lastSeenAt"] for a in everything["items"]]
    assert stamps == sorted(stamps, reverse=True)
    seen: list[str] = []
    cursor = None
    while True:
        page = await alerts(client, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += [a["id"] for a in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [a["id"] for a in everything["items"]]
    assert everything["unresolvedByLevel"] == {"warning": 4, "error": 2, "critical": 4}

    assert (await alerts(client, minLevel="error"))["total"] == 6
    assert (await alerts(client, level=["warning"], accountId="acc2"))["total"] == 1
    assert (await alerts(client, service="tg-session"))["total"] == 10
    assert (await alerts(client, service="ai"))["total"] == 0
    window = await alerts(
        client,
        since=(base + timedelta(seconds=3)).isoformat(),
        until=(base + timedelta(seconds=5)).isoformat(),
    )
    assert window["total"] == 2

    for bad in ({"cursor": "not-a-cursor"}, {"level": ["loud"]}, {"limit": 0}, {"extra": 1}):
        reply = await client.call(GetAlerts, bad)
        assert reply["error"]["code"] == "VALIDATION_ERROR", bad
    assert (await client.call(ClearAlerts, {"confirm": True, "mode": "wipe"}))["error"][
        "code"
    ] == "VALIDATION_ERROR"

    dismissed = await client.data(ClearAlerts, {"confirm": True, "mode": "dismiss", "level": ["warning"]})
    assert dismissed["affected"] == 4
    assert (await alerts(client, unresolvedOnly=True))["total"] == 6
    assert (await alerts(client))["unresolvedByLevel"] == {"error": 2, "critical": 4}
    deleted = await client.data(ClearAlerts, {"confirm": True, "dismissedOnly": True})
    assert deleted["affected"] == 4 and (await alerts(client))["total"] == 6
    assert [c["affected"] for c in published("alerts-cleared")] == [4, 4]
    gone = await client.data(ClearAlerts, {"confirm": True})
    assert gone["affected"] == 6 and (await alerts(client))["total"] == 0


async def test_account_back_to_active_resolves_its_alerts(client: RuntimeClient) -> None:
    await client.runtime.publish(
        AccountStatusChanged(account_id="a7", state="peer_flood", previous_state="active")
    )
    await client.runtime.publish(
        AccountStatusChanged(account_id="a7", state="active", previous_state="peer_flood")
    )
    [alert] = (await alerts(client))["items"]
    assert alert["dismissed"] is True and alert["dismissedBy"] == "system"


async def test_service_probe_raises_after_two_misses_and_resolves_on_answer(client: RuntimeClient) -> None:
    up = {Service.CAMPAIGN: True, Service.AI: True}

    async def ask(service: Service) -> bool | None:
        return up[service]

    probe = ServiceProbe(client.runtime.app.alerts, ask, list(up), "replica-a", interval=30)
    other = ServiceProbe(client.runtime.app.alerts, ask, list(up), "replica-b", interval=30)
    assert await probe.round() is True
    assert await other.round() is False  # one prober at a time
    up[Service.CAMPAIGN] = False
    await probe.round()
    assert (await alerts(client))["total"] == 0  # one miss is not an outage
    await probe.round()
    [down] = (await alerts(client))["items"]
    assert (down["code"], down["level"], down["service"]) == ("service.down", "critical", "campaign")
    await probe.round()  # still down: no new alert, no growing count every round
    assert (await alerts(client))["items"][0]["count"] == 1
    up[Service.CAMPAIGN] = True
    await probe.round()
    [resolved] = (await alerts(client))["items"]
    assert resolved["dismissed"] is True and resolved["dismissedBy"] == "system"
    await probe.release()
    assert await other.round() is True  # the lease was released
