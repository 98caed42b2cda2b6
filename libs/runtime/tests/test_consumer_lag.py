"""Consumer lag gauges (consumer_lag.py): a service's own durable consumers of the event stream, their
backlog, work in progress and redeliveries, read from JetStream; other services' consumers left out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from nats.js.api import AckPolicy, DeliverPolicy
from prometheus_client import CollectorRegistry
from tgm_contracts import streams
from tgm_contracts.events_ai import KnowledgeChanged
from tgm_runtime.consumer_lag import ConsumerLag
from tgm_runtime.testing import bare_runtime
from tgm_testing.procs import wait_for_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

STREAM = streams.EVENTS_STREAM.name


def gauge(registry: CollectorRegistry, name: str, consumer: str) -> float | None:
    return registry.get_sample_value(name, {"stream": STREAM, "consumer": consumer})


async def test_the_gauges_follow_a_consumers_backlog_work_and_redeliveries(
    nats_server: Any, mongo_server: Any
) -> None:
    rt = bare_runtime(nats_url=nats_server.url, mongo_uri=mongo_server.uri, tag="lag")
    durable = f"lag_{uuid.uuid4().hex[:6]}"
    consumer = f"analytics_{durable}"
    release = asyncio.Event()
    calls = 0

    @rt.subscribe_events(KnowledgeChanged, durable=durable)
    async def handle(evt: KnowledgeChanged) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the first delivery fails: it comes again")
        await release.wait()

    registry = CollectorRegistry()
    await rt.start()
    try:
        # another service's consumer on the same stream: not analytics'
        await rt.js.add_consumer(STREAM, durable_name=f"campaign_{durable}", filter_subject="tgm.nothing.>")
        lag = ConsumerLag(registry, "analytics_", lambda: rt.js, [STREAM, "TGM_NO_SUCH_STREAM"])
        await rt.publish(KnowledgeChanged(scope="global", action="added", count=1))

        async def in_work() -> bool:  # its second delivery, held by the handler
            await lag.sample()
            return calls == 2 and gauge(registry, "tgm_consumer_redelivered", consumer) == 1

        await wait_for_async(in_work, timeout=30, interval=0.2, message="no redelivery in work seen")
        assert gauge(registry, "tgm_consumer_ack_pending", consumer) == 1
        await rt.consumer_lag.sample()  # the runtime's own sampler (every 15 s while started)
        assert gauge(rt.registry, "tgm_consumer_ack_pending", consumer) == 1
        # The backlog, on a consumer of this service that nothing pulls: the running one's outstanding
        # fetch may take new events while its handler holds one (a pull request of 16 stays open at
        # the server until it expires), so its `pending` is not a stable figure to wait on.
        idle = f"analytics_{durable}_idle"
        await rt.js.add_consumer(
            STREAM,
            durable_name=idle,
            filter_subject=KnowledgeChanged.SUBJECT,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
        )
        for _ in range(2):
            await rt.publish(KnowledgeChanged(scope="global", action="added", count=1))

        async def backlog() -> bool:
            await lag.sample()
            return gauge(registry, "tgm_consumer_pending", idle) == 2

        await wait_for_async(backlog, timeout=30, interval=0.2, message="no backlog seen")
        assert gauge(registry, "tgm_consumer_ack_pending", idle) == 0
        assert gauge(registry, "tgm_consumer_pending", f"campaign_{durable}") is None

        release.set()

        async def drained() -> bool:
            await lag.sample()
            return all(
                gauge(registry, name, consumer) == 0
                for name in ("tgm_consumer_pending", "tgm_consumer_ack_pending", "tgm_consumer_redelivered")
            )

        await wait_for_async(drained, timeout=30, interval=0.2, message="the consumer did not drain")

        await rt.js.delete_consumer(STREAM, consumer)
        await lag.sample()
        assert gauge(registry, "tgm_consumer_pending", consumer) is None  # its series are gone
        assert gauge(registry, "tgm_consumer_pending", idle) == 2  # the other one's stay
        await rt.js.delete_consumer(STREAM, idle)
    finally:
        await rt.stop()
