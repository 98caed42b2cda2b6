"""The per-key rate limit is one budget for every gateway replica (issue 13): two limiters on one
NATS KV bucket together let a key through at its rate, not twice it; with the bus away each limits
on its own instead of refusing or letting everything through."""

from __future__ import annotations

import time
import uuid
from typing import Any

import nats
import pytest
from tgm_contracts import streams
from tgm_gateway.keys.limiter import SharedKeyRate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_two_replicas_share_one_budget_per_key(nats_server: Any) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        spec = streams.KEY_RATE  # as the gateway declares it (another test's gateway may have already)
        kv = await js.create_key_value(
            bucket=spec.bucket, ttl=spec.ttl_seconds, history=spec.history, description=spec.description
        )

        async def bucket() -> Any:
            return kv

        rate, burst = 20.0, 30
        a, b = SharedKeyRate(rate, burst, bucket), SharedKeyRate(rate, burst, bucket)
        key, other = f"k{uuid.uuid4().hex[:8]}", f"k{uuid.uuid4().hex[:8]}"
        started = time.time()
        allowed = 0
        for i in range(200):  # both replicas, alternately, as a load balancer would spread them
            allowed += (await (a if i % 2 else b).take(key)) == 0
        elapsed = time.time() - started
        # never more than the burst plus what refilled meanwhile (one replica alone would allow 30+)
        assert allowed <= burst + rate * elapsed + 1, (allowed, elapsed)
        # and at most a lease per replica lost to the other: still nearly the whole burst
        assert allowed >= burst - 2 * a.chunk, (allowed, elapsed)
        # once the budget is spent a take waits at most one refill (under load the loop above may
        # have run long enough to refill a token or two: those are taken first, as they should be)
        refused = 0.0
        for _ in range(burst):
            if (refused := await a.take(key)) > 0:
                break
        assert 0 < refused <= 1 / rate + 0.01
        # another key has a budget of its own
        assert await b.take(other) == 0
    finally:
        await nc.close()


async def test_without_the_bus_each_replica_limits_locally() -> None:
    async def away() -> Any:
        raise ConnectionError("no NATS")

    limiter = SharedKeyRate(1.0, 3, away)
    results = [await limiter.take("k1") for _ in range(4)]
    assert results[:3] == [0.0, 0.0, 0.0] and results[3] > 0
