"""Component-test wiring shared by the analytics domains: the real analytics runtime (built by
`tgm_analytics.bootstrap.build` per test) on FastStream's in-memory broker with a real database
(`mongo_server` of tgm_testing).

- `client`: a `RuntimeClient`; `await publish(client, event, ...)` puts events on TGM_EVENTS the way the
  other services do (every durable consumer of analytics sees them).
- `analytics()`: a fresh runtime, built after the test's environment is set (tests that listen on the
  bus add their subscribers to it before it starts).
- `ok` / `err`: call a command and return `data`, or assert the error code.
- `eventually`: wait for a condition instead of sleeping.
- `RealBus` (integration tests): runtimes on the real `nats_server` and `mongo_server` with a database
  prefix of their own, stopped and their databases dropped at the end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tgm_analytics.app import Runtime
from tgm_analytics.bootstrap import build
from tgm_contracts.events import Event
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import RuntimeClient, runtime_client


def analytics() -> Runtime:
    """The analytics runtime as `python -m tgm_analytics` builds it, reading the environment now."""
    return build()


@pytest.fixture
async def client(mongo_server: Any) -> AsyncIterator[RuntimeClient]:
    async with runtime_client(analytics(), mongo_server.uri) as c:
        yield c


async def publish(client: RuntimeClient, *events: Event) -> None:
    """Publish events on TGM_EVENTS through the runtime (the in-memory broker delivers them inline)."""
    for evt in events:
        await client.runtime.publish(evt)


async def ok(client: RuntimeClient, cmd: Any, payload: Any = None) -> Any:
    reply = await client.call(cmd, payload if payload is not None else {})
    assert reply["ok"], reply
    return reply["data"]


async def err(client: RuntimeClient, cmd: Any, payload: Any, code: str) -> dict[str, Any]:
    reply = await client.call(cmd, payload)
    assert not reply["ok"], reply
    assert reply["error"]["code"] == code, reply
    return reply["error"]


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Await `check()` until it returns something truthy (and return it), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def swept_at_start(client: RuntimeClient, job: str) -> None:
    """Wait for the retention job `job`'s round at start to end, so a test's old records are not
    taken by it before the test's own sweep (the race that made the retention tests flaky)."""
    sweeper = client.runtime.tasks.job(job)

    async def ended() -> bool:
        return sweeper.runs >= 1

    await eventually(ended)


class RealBus:
    """Settings for runtimes on a real nats-server and database (one prefix per test); `close()` stops
    the runtimes started through `start` (last first) and drops the prefix's databases."""

    def __init__(self, nats_server: Any, mongo_server: Any, data_dir: Any, tag: str) -> None:
        self.nats_server, self.mongo_server, self.data_dir = nats_server, mongo_server, data_dir
        self.prefix = f"{tag}{uuid.uuid4().hex[:8]}_"
        self.started: list[Any] = []

    def settings(self, name: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=self.nats_server.url,
            mongodb_uri=self.mongo_server.uri,
            database_prefix=self.prefix,
            data_dir=self.data_dir,
            replica_id=f"{name}-{uuid.uuid4().hex[:4]}",
        )

    async def start(self, *runtimes: Any) -> None:
        for rt in runtimes:
            await rt.start()
            self.started.append(rt)

    async def stop(self, rt: Any) -> None:
        await rt.stop()
        self.started.remove(rt)

    async def close(self) -> None:
        for rt in reversed(self.started):
            await rt.stop()
        client = self.mongo_server.client()
        try:
            for name in client.list_database_names():
                if name.startswith(self.prefix):
                    client.drop_database(name)
        finally:
            client.close()
