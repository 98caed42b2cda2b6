"""A durable event consumer whose handler fails gets the event again, later: nothing is lost."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tgm_contracts.events_ai import KnowledgeChanged
from tgm_runtime.testing import bare_runtime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_a_failing_handler_gets_the_event_again_with_a_growing_delay(
    nats_server: Any, mongo_server: Any
) -> None:
    rt = bare_runtime(nats_url=nats_server.url, mongo_uri=mongo_server.uri, tag="retry")
    durable = f"retry_{uuid.uuid4().hex[:6]}"
    seen: list[tuple[str, float]] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    evt = KnowledgeChanged(scope="global", action="added", count=1)

    @rt.subscribe_events(KnowledgeChanged, durable=durable)
    async def handle(got: KnowledgeChanged) -> None:
        if got.event_id != evt.event_id:
            return  # a new durable starts at the stream's start: earlier tests' events of this type
        seen.append((got.event_id, loop.time()))
        if len(seen) < 3:
            raise ConnectionError("database briefly away")
        done.set()

    await rt.start()
    try:
        await rt.publish(evt)
        await asyncio.wait_for(done.wait(), 30)
        assert [e for e, _ in seen] == [evt.event_id] * 3
        first, second, third = (t for _, t in seen)
        assert second - first >= 0.9 and third - second >= 1.9  # 1 s, then 2 s
    finally:
        await rt.stop()
