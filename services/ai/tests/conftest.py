"""Component-test wiring: the ai runtime on FastStream's in-memory broker with a real database
(`mongo_server` of tgm_testing), and a collector of streamed chunks."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.nats import JStream, NatsMessage
from tgm_ai.app import Runtime
from tgm_ai.bootstrap import build
from tgm_contracts import subjects
from tgm_runtime.testing import RuntimeClient, runtime_client

#: stream id -> the chunks published on `tgm.stream.<id>`, in order.
STREAMS: dict[str, list[dict[str, Any]]] = defaultdict(list)

#: events the service published, in order: (event name, body).
EVENTS: list[tuple[str, dict[str, Any]]] = []


def collect(runtime: Runtime) -> None:
    """Subscribe the test's collectors of stream chunks and events on the runtime's broker."""

    @runtime.broker.subscriber("tgm.stream.*")
    async def _collect_stream(msg: NatsMessage) -> None:
        STREAMS[msg.raw_message.subject.rsplit(".", 1)[-1]].append(json.loads(msg.body))

    @runtime.broker.subscriber("tgm.ai.evt.*.v1", stream=JStream("TGM_EVENTS", declare=False))
    async def _collect_events(msg: NatsMessage) -> None:
        parsed = subjects.parse_service(msg.raw_message.subject)
        assert parsed is not None
        EVENTS.append((parsed.name, json.loads(msg.body)))


def events(name: str) -> list[dict[str, Any]]:
    return [body for n, body in EVENTS if n == name]


@pytest.fixture
def runtime() -> Runtime:
    rt = build()
    collect(rt)
    return rt


@pytest.fixture
async def client(runtime: Runtime, mongo_server: Any) -> AsyncIterator[RuntimeClient]:
    STREAMS.clear()
    EVENTS.clear()
    async with runtime_client(runtime, mongo_server.uri) as c:
        yield c


async def ok(client: RuntimeClient, cmd: Any, payload: Any = None, *, timeout: float = 30) -> Any:
    reply = await client.call(cmd, payload or {}, timeout=timeout)
    assert reply["ok"], reply
    return reply["data"]


async def err(client: RuntimeClient, cmd: Any, payload: Any, code: str) -> dict[str, Any]:
    reply = await client.call(cmd, payload)
    assert not reply["ok"], reply
    assert reply["error"]["code"] == code, reply
    return reply["error"]
