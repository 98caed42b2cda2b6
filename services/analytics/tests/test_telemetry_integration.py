"""The real stream path: a second service runtime ships its logs and samples over a real nats-server to
TGM_TELEMETRY, the analytics runtime consumes them durably, and get-logs / get-performance (called
over NATS as the gateway would) show them."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from pydantic import Field
from pymongo import AsyncMongoClient
from tgm_analytics.bootstrap import build
from tgm_analytics.settings import AnalyticsSettings
from tgm_contracts import Headers, Service
from tgm_contracts.base import Request, Response
from tgm_contracts.commands import analytics as A
from tgm_runtime import RuntimeSettings, ServiceRuntime
from tgm_runtime.telemetry import TelemetrySettings
from tgm_runtime.testing import signed_headers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class PingRequest(Request):
    n: int = Field(ge=0)


class PingResponse(Response):
    n: int


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s: {last!r}")


async def test_logs_and_samples_travel_from_a_service_to_get_logs_and_get_performance(
    nats_server: Any, mongo_server: Any
) -> None:
    prefix = f"tl{uuid.uuid4().hex[:6]}_"

    def settings(name: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=nats_server.url, mongodb_uri=mongo_server.uri, database_prefix=prefix, replica_id=name
        )

    # The whole analytics service as bootstrap.py builds it, on this test's bus and database.
    analytics = build(AnalyticsSettings(runtime=settings("an-1")))
    analytics.telemetry.settings = TelemetrySettings(log_ship=False, perf_sample_seconds=0)

    svc = ServiceRuntime(Service.AI, "test", settings=settings(f"ai-{uuid.uuid4().hex[:4]}"))
    svc.telemetry.settings = TelemetrySettings(log_ship=True, log_ship_interval=0.1, perf_sample_seconds=0.3)
    marker = uuid.uuid4().hex[:8]
    svc_log = logging.getLogger("tgm.ai.ping")

    @svc.handler(f"test.{marker}.ping", "ping", PingRequest, PingResponse)
    async def ping(req: PingRequest, ctx: Any) -> PingResponse:
        if req.n == 13:
            raise RuntimeError("unlucky")
        svc_log.warning("ping %s #%d apiHash=%s", marker, req.n, "deadbeefcafe")
        return PingResponse(n=req.n)

    await analytics.start()
    await svc.start()
    nc = await nats.connect(nats_server.url)

    async def call(cmd: Any, payload: dict[str, Any]) -> Any:
        data = json.dumps(payload).encode()
        headers = signed_headers(svc, cmd.SUBJECT, data)
        msg = await nc.request(cmd.SUBJECT, data, timeout=10, headers=headers)
        reply = json.loads(msg.data)
        assert reply["ok"], reply
        return reply["data"]

    try:
        for n in (1, 2, 3, 13):
            headers = {Headers.REQUEST_ID: f"req-{marker}-{n}"}
            await nc.request(f"test.{marker}.ping", json.dumps({"n": n}).encode(), timeout=5, headers=headers)

        async def shipped() -> Any:
            page = await call(A.GetLogs, {"search": marker, "service": ["ai"], "order": "asc"})
            return page if len(page["items"]) == 3 else None

        page = await until(shipped)
        assert [e["message"].split(" apiHash")[0] for e in page["items"]] == [
            f"ping {marker} #{n}" for n in (1, 2, 3)
        ]
        entry = page["items"][0]
        assert entry["level"] == "warning" and entry["replicaId"] == svc.settings.replica_id
        assert entry["requestId"] == f"req-{marker}-1" and "deadbeefcafe" not in entry["message"]
        failed = await call(A.GetLogs, {"requestId": f"req-{marker}-13"})
        assert failed["items"][0]["level"] == "error" and "unlucky" in failed["items"][0]["message"]

        async def sampled() -> Any:
            report = await call(A.GetPerformance, {"services": ["ai"]})
            ai = report["services"][0]
            ops = {o["name"]: o for o in ai["operations"]}
            return report if ops.get("ping", {}).get("count") == 4 else None

        report = await until(sampled)
        ai = report["services"][0]
        # Other tests of the session may have run ai runtimes on the same server: at least ours.
        assert ai["up"] is True and ai["replicas"] >= 1
        ping_op = next(o for o in ai["operations"] if o["name"] == "ping")
        assert ping_op["kind"] == "rpc" and ping_op["errors"] == 1 and ping_op["latency"]["p95Ms"] is not None
        assert ai["requests"] >= 4 and ai["errors"] >= 1
    finally:
        await nc.close()
        await svc.stop()
        await analytics.stop()
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri)
        await client.drop_database(prefix + Service.ANALYTICS.database)
        await client.drop_database(prefix + Service.AI.database)
        await client.close()
