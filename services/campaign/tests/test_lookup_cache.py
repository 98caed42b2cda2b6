"""`Fresh`: the one value a hot path reads on every event (the chats of running scripted runs and
swarms) is read at most once per TTL however many events are in flight, read again at once after
`clear()`, and a read under way when it was cleared is not kept."""

from __future__ import annotations

import asyncio

import pytest
from tgm_campaign.messaging.lookup_cache import Fresh

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Source:
    """A read that waits until released (as a query in flight does) and counts its calls."""

    def __init__(self) -> None:
        self.reads = 0
        self.value = {1}
        self.release = asyncio.Event()

    async def read(self) -> set[int]:
        self.reads += 1
        value = set(self.value)
        await self.release.wait()
        return value


async def test_concurrent_readers_share_one_read_then_the_value_is_kept() -> None:
    src = Source()
    fresh = Fresh(src.read, ttl=60)
    readers = [asyncio.ensure_future(fresh.get()) for _ in range(32)]
    await asyncio.sleep(0)
    assert src.reads == 1  # 32 events in flight, one query
    src.release.set()
    assert all(v == {1} for v in await asyncio.gather(*readers))
    src.value = {2}
    assert await fresh.get() == {1} and src.reads == 1  # within the TTL: no read


async def test_due_after_the_ttl() -> None:
    src = Source()
    src.release.set()
    fresh = Fresh(src.read, ttl=0.05)
    assert await fresh.get() == {1}
    src.value = {2}
    await asyncio.sleep(0.06)
    assert await fresh.get() == {2} and src.reads == 2


async def test_clear_reads_again_and_a_read_under_way_is_not_kept() -> None:
    src = Source()
    fresh = Fresh(src.read, ttl=60)
    before = asyncio.ensure_future(fresh.get())  # reads {1}, still in flight
    await asyncio.sleep(0)
    src.value = {2}  # a run starts here ...
    fresh.clear()  # ... and says so
    after = asyncio.ensure_future(fresh.get())  # does not join the read that predates the change
    await asyncio.sleep(0)
    assert src.reads == 2
    src.release.set()
    assert await before == {1} and await after == {2}
    assert await fresh.get() == {2} and src.reads == 2  # the newer read is the one kept


async def test_a_failed_read_raises_to_its_readers_and_is_tried_again() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return 7

    fresh = Fresh(read, ttl=60)
    with pytest.raises(ConnectionError):
        await fresh.get()
    assert await fresh.get() == 7 and calls == 2
