"""Component-test wiring shared by the analytics domains: the real analytics runtime (built by
`tgm_analytics.bootstrap.build` per test) on FastStream's in-memory broker with a real database
(`mongo_server` of tgm_testing).

- `client`: a `RuntimeClient`; `await publish(client, event, ...)` puts events on TGM_EVENTS the way the
  other services do (every durable consumer of analytics sees them).
- `analytics()`: a fresh runtime, built after the test's environment is set (tests that listen on the
  bus add their subscribers to it before it starts).
- `ok` / `err`: call a command and return `data`, or assert the error code.
- `eventually`: wait for a condition instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from tgm_analytics.app import Runtime
from tgm_analytics.bootstrap import build
from tgm_contracts.events import Event
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
