"""SingleFlight: concurrent callers of one key share one call, its answer and its failure; a
cancelled owner leaves the call to a waiter; a call answered without suspending never registers."""

from __future__ import annotations

import asyncio

import pytest
from tgm_runtime.single_flight import SingleFlight

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


async def test_concurrent_callers_share_one_call() -> None:
    flight, calls, gate = SingleFlight(), [], asyncio.Event()

    async def read() -> int:
        calls.append(1)
        await gate.wait()
        return len(calls)

    tasks = [asyncio.ensure_future(flight.run("k", read)) for _ in range(10)]
    other = asyncio.ensure_future(flight.run("other", read))  # another key: its own call
    await asyncio.sleep(0)
    assert len(calls) == 2 and len(flight) == 2
    gate.set()
    assert {await t for t in tasks} == {2} and await other == 2
    assert len(flight) == 0
    assert await flight.run("k", read) == 3  # nothing running: a new call


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    flight, gate = SingleFlight(), asyncio.Event()

    async def boom() -> int:
        await gate.wait()
        raise ValueError("database away")

    tasks = [asyncio.ensure_future(flight.run("k", boom)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    async def fine() -> int:
        return 7

    assert await flight.run("k", fine) == 7


async def test_a_cancelled_owner_leaves_the_call_to_a_waiter() -> None:
    flight, calls = SingleFlight(), []

    async def read() -> int:
        calls.append(1)
        await asyncio.sleep(0.05)
        return len(calls)

    owner = asyncio.ensure_future(flight.run("k", read))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(flight.run("k", read))
    await asyncio.sleep(0.01)
    owner.cancel()
    assert await waiter == 2 and len(calls) == 2  # the waiter made the call itself
    with pytest.raises(asyncio.CancelledError):
        await owner
    # a waiter cancelled itself is cancelled, and the owner's call goes on for the others
    slow = asyncio.ensure_future(flight.run("j", read))
    await asyncio.sleep(0)
    impatient = asyncio.ensure_future(flight.run("j", read))
    await asyncio.sleep(0.01)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert await slow == 3
