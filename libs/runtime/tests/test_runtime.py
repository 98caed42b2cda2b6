"""The runtime's envelope rules (component, on TestNatsBroker) and its stores (real database)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import Field
from pymongo import AsyncMongoClient
from tgm_contracts import Service
from tgm_contracts.base import Request, Response
from tgm_runtime import Conflict, Migration, NotFound, RuntimeSettings, ServiceRuntime
from tgm_runtime.errors import DomainError
from tgm_runtime.migrations import MigrationRunner
from tgm_runtime.settings_store import SettingsStore
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.timeout(60)]


class EchoRequest(Request):
    text: str = Field(min_length=1, max_length=10)


class EchoResponse(Response):
    text: str
    length: int


def make_runtime() -> ServiceRuntime:
    rt = ServiceRuntime(
        Service.ANALYTICS,
        "test",
        settings=RuntimeSettings(nats_url="nats://127.0.0.1:1", replica_id="r-test"),
    )

    @rt.handler("test.echo", "echo", EchoRequest, EchoResponse)
    async def echo(req: EchoRequest, ctx: Any) -> EchoResponse:
        if req.text == "boom":
            raise RuntimeError("secret internal detail")
        if req.text == "missing":
            raise NotFound("no such thing")
        if req.text == "wait":
            raise DomainError(Conflict("x").code, "busy", retry_after=3)
        return EchoResponse(text=req.text.upper(), length=len(req.text))

    return rt


@pytest.mark.component
async def test_envelopes(mongo_server: Any) -> None:
    rt = make_runtime()
    async with runtime_client(rt, mongo_server.uri) as client:
        ok = await client.request("test.echo", {"text": "hi"})
        assert ok == {"ok": True, "data": {"text": "HI", "length": 2}}
        bad = await client.request("test.echo", {"text": "", "extra": 1})
        assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
        assert {tuple(d["loc"]) for d in bad["error"]["details"]} == {("text",), ("extra",)}
        garbage = await client.request("test.echo", b"\xff{not json")
        assert garbage["error"]["code"] == "VALIDATION_ERROR"
        missing = await client.request("test.echo", {"text": "missing"})
        assert missing["error"] == {"code": "NOT_FOUND", "message": "no such thing"}
        wait = await client.request("test.echo", {"text": "wait"})
        assert wait["error"]["retry_after"] == 3
        boom = await client.request("test.echo", {"text": "boom"})
        assert (
            boom["error"]["code"] == "INTERNAL" and "secret internal detail" not in boom["error"]["message"]
        )
        info = await client.request("tgm.analytics.sys.info.v1", {})
        assert info["data"]["service"] == "analytics" and info["data"]["replicaId"] == "r-test"


@pytest.fixture
async def db(mongo_server: Any):
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = f"rt_{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.mark.integration
async def test_migrations_run_once_in_order(db: Any) -> None:
    ran: list[int] = []

    def step(n: int) -> Migration:
        async def apply(d: Any) -> None:
            ran.append(n)
            await d["things"].create_index("n")

        return Migration(n, f"step {n}", apply)

    runner = MigrationRunner(db, [step(1), step(2)])
    assert (await runner.status())["pending"] == [
        {"number": 1, "name": "step 1"},
        {"number": 2, "name": "step 2"},
    ]
    assert await runner.run() == [1, 2]
    assert await MigrationRunner(db, [step(1), step(2), step(3)]).run() == [3]
    assert ran == [1, 2, 3]
    status = await MigrationRunner(db, [step(1), step(2), step(3)]).status()
    assert status["current"] == status["latest"] == 3 and status["pending"] == []
    with pytest.raises(ValueError):
        MigrationRunner(db, [step(2), step(1)])


@pytest.mark.integration
async def test_settings_store_versions_and_validates(db: Any) -> None:
    store = SettingsStore(db, Service.CAMPAIGN)
    first = await store.get("pacing")
    assert first.version == 0 and first.values["perAccountPerMinute"] == 20
    saved = await store.save("pacing", {"perAccountPerMinute": 10}, expected_version=0)
    assert saved.version == 1 and saved.values["perAccountPerMinute"] == 10
    with pytest.raises(Conflict):
        await store.save("pacing", {"perAccountPerMinute": 11}, expected_version=0)
    with pytest.raises(DomainError) as info:
        await store.save("pacing", {"perAccountPerMinute": -1}, expected_version=None)
    assert info.value.code.value == "VALIDATION_ERROR"
    with pytest.raises(NotFound):
        await store.get("general")  # owned by the gateway
    reset = await store.reset("pacing")
    assert reset.version == 2 and reset.values["perAccountPerMinute"] == 20


@pytest.mark.component
async def test_info_counts_are_counted_at_most_once_a_minute(mongo_server: Any, monkeypatch: Any) -> None:
    """analytics' probe asks every few seconds; a count scans its collection on the embedded
    database, so `sys.info` answers with figures up to `COUNTS_MAX_AGE` old."""
    from tgm_contracts import sys as sysops
    from tgm_runtime import runtime as runtime_module

    calls = []

    async def counts(db: Any) -> dict[str, int]:
        calls.append(1)
        return {"things": len(calls)}

    rt = ServiceRuntime(
        Service.ANALYTICS,
        "test",
        counts=counts,
        settings=RuntimeSettings(nats_url="nats://127.0.0.1:1", replica_id="r-test"),
    )
    subject = sysops.Info.subject(Service.ANALYTICS)
    async with runtime_client(rt, mongo_server.uri) as client:
        first = await client.request(subject, {})
        second = await client.request(subject, {})
        assert first["data"]["counts"] == second["data"]["counts"] == {"things": 1} and len(calls) == 1
        monkeypatch.setattr(runtime_module, "COUNTS_MAX_AGE", 0.0)
        third = await client.request(subject, {})
        assert third["data"]["counts"] == {"things": 2} and len(calls) == 2
