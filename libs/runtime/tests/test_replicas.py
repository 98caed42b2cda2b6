"""TGM_JS_REPLICAS on streams and buckets that already exist (issue 17 finding 2): raised on a 3-node
nats-server cluster (three processes on loopback), left alone when equal, and a refused change (more
replicas than nodes) logged without stopping the service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import StreamConfig
from tgm_runtime.replicas import ensure_replicas
from tgm_testing.procs import free_port
from tgm_testing.servers import NatsServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    routes = [free_port() for _ in range(3)]
    servers = []
    for i, route in enumerate(routes):
        others = ",".join(f"nats://127.0.0.1:{r}" for r in routes if r != route)
        servers.append(
            NatsServer(
                tmp_path / f"n{i}",
                log_path=tmp_path / f"n{i}.log",
                server_name=f"tgm-n{i}",
                extra_args=[
                    "--cluster_name",
                    "tgm",
                    "--cluster",
                    f"nats://127.0.0.1:{route}",
                    "--routes",
                    others,
                ],
            )
        )
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop()


async def until_ok(op: Any, timeout: float = 30.0) -> Any:
    """`op()` once the cluster has elected its JetStream meta leader (it refuses until then)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await op()
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def test_existing_streams_and_buckets_are_raised_to_three_copies(cluster: list[NatsServer]) -> None:
    nc = await nats.connect([s.url for s in cluster])
    try:
        js = nc.jetstream()
        # What a deployment that ran with TGM_JS_REPLICAS=1 left behind.
        await until_ok(lambda: js.add_stream(StreamConfig(name="OLD", subjects=["old.>"], num_replicas=1)))
        await js.create_key_value(bucket="leases", ttl=15, replicas=1)
        for i in range(5):
            await js.publish("old.x", f"m{i}".encode())

        async def raised(name: str) -> bool:
            # A cluster that just formed may not know all three peers yet ("no suitable peers for
            # placement"): ensure_replicas answers False and is asked again.
            if not await ensure_replicas(js, name, 3):
                raise RuntimeError(f"{name} not raised yet")
            return True

        assert await until_ok(lambda: raised("OLD")) and await until_ok(lambda: raised("KV_leases"))
        info = await js.stream_info("OLD")
        assert (
            info.config.num_replicas == 3 and info.config.subjects == ["old.>"] and info.state.messages == 5
        )
        assert (await js.stream_info("KV_leases")).config.num_replicas == 3
        assert (await js.stream_info("KV_leases")).config.max_age == 15
    finally:
        await nc.close()


async def test_equal_replicas_change_nothing_and_a_refused_change_is_logged(
    nats_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="ONE", subjects=["one.>"], num_replicas=1))
        assert await ensure_replicas(js, "ONE", 1)
        with caplog.at_level(logging.ERROR, logger="tgm.runtime.replicas"):
            assert not await ensure_replicas(js, "ONE", 3)  # one node cannot hold 3 copies
        assert "stream ONE keeps 1 copies: changing it to 3 failed" in caplog.text
        assert (await js.stream_info("ONE")).config.num_replicas == 1
    finally:
        await js.delete_stream("ONE")
        await nc.close()
