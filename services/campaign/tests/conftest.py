"""The campaign service on a real nats-server and database, with `FakeFleet` standing in for
tg-session's send path (fixtures `campaign`, helpers to call commands and collect events)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
import pytest_asyncio
from tgm_campaign.bootstrap import build
from tgm_campaign.settings import CampaignSettings
from tgm_campaign.testing import FakeFleet
from tgm_contracts import Command
from tgm_runtime import RuntimeSettings, ServiceRuntime
from tgm_runtime.testing import signed_headers

FAST = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.0,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "safetyMarginSeconds": 0.2,
    "perChatMinIntervalSeconds": 0.0,
    "perAccountPerMinute": 60,
    "perAccountPerHour": 2000,
    "perAccountDailyNonContacts": 1000,
    "retryBaseSeconds": 1.0,
    "retryMaxSeconds": 2.0,
}


@dataclass
class Campaign:
    rt: ServiceRuntime
    fleet: FakeFleet
    nc: Any
    nats_url: str
    mongo_uri: str
    prefix: str
    events: list[dict[str, Any]] = field(default_factory=list)
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)
    extra: list[ServiceRuntime] = field(default_factory=list)

    @property
    def m(self) -> Any:
        return self.rt.app

    async def call(
        self, cmd: type[Command], payload: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict:
        data = json.dumps(payload or {}).encode()
        headers = signed_headers(self.rt, cmd.SUBJECT, data)  # as the gateway sends it
        msg = await self.nc.request(cmd.SUBJECT, data, timeout=timeout, headers=headers)
        return json.loads(msg.data)

    async def data(
        self, cmd: type[Command], payload: dict[str, Any] | None = None, timeout: float = 30
    ) -> Any:
        reply = await self.call(cmd, payload, timeout)
        assert reply["ok"], reply
        return reply["data"]

    async def settings(self, section: str, values: dict[str, Any], rt: ServiceRuntime | None = None) -> None:
        for r in [rt] if rt else [self.rt, *self.extra]:
            assert r.settings_store is not None
            await r.settings_store.save(section, values, None)

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict:
        async def find() -> dict:
            async with self._cond:
                while True:
                    for e in self.events:
                        if predicate(e):
                            return e
                    await self._cond.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_jobs(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20) -> list:
        """Wait until the jobs (read from the database after each job event) satisfy `predicate`."""

        async def jobs() -> list[dict[str, Any]]:
            return await self.rt.db["jobs"].find({}).to_list()

        async def loop() -> list:
            async with self._cond:
                while True:
                    docs = await jobs()
                    if predicate(docs):
                        return docs
                    await _wait(self._cond, 1.0)

        return await asyncio.wait_for(loop(), timeout)

    async def replica(self, replica_id: str) -> ServiceRuntime:
        rt = build(
            CampaignSettings(
                runtime=RuntimeSettings(
                    nats_url=self.nats_url,
                    mongodb_uri=self.mongo_uri,
                    database_prefix=self.prefix,
                    replica_id=replica_id,
                )
            )
        )
        await rt.start()
        self.extra.append(rt)
        return rt


async def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Re-run the async `check` until it returns something truthy. Only for effects that announce
    themselves with no event (e.g. history written by a durable consumer)."""

    async def loop() -> Any:
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(interval)

    return await asyncio.wait_for(loop(), timeout)


async def _wait(cond: asyncio.Condition, timeout: float) -> None:
    # Re-check at least every `timeout`: jobs can change without an event (e.g. a retry's backoff ends).
    try:
        await asyncio.wait_for(cond.wait(), timeout)
    except TimeoutError:
        pass


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    return eventually


@pytest_asyncio.fixture
async def campaign(nats_server: Any, mongo_server: Any) -> AsyncIterator[Campaign]:
    prefix = f"c{uuid.uuid4().hex[:8]}_"
    fleet = FakeFleet(
        nats_server.url, mongo_server.uri, ["acct0", "acct1", "acct2"], database_prefix=prefix + "fleet_"
    )
    await fleet.start()
    rt = build(
        CampaignSettings(
            runtime=RuntimeSettings(
                nats_url=nats_server.url,
                mongodb_uri=mongo_server.uri,
                database_prefix=prefix,
                replica_id="campaign-t",
            )
        )
    )
    await rt.start()
    nc = await nats.connect(nats_server.url)
    c = Campaign(rt, fleet, nc, nats_server.url, mongo_server.uri, prefix)

    async def on_event(msg: Any) -> None:
        data = json.loads(msg.data)
        data["_subject"] = msg.subject
        async with c._cond:
            c.events.append(data)
            c._cond.notify_all()

    await nc.subscribe("tgm.campaign.evt.>", cb=on_event)
    await c.settings("pacing", FAST)
    rt.app.scheduler.send_timeout = 2.0
    try:
        yield c
    finally:
        for extra in c.extra:
            await extra.stop()
        await rt.stop()
        await fleet.stop()
        await nc.close()
        client = mongo_server.client()
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
        client.close()
