"""List totals counted once until a write (counts.py), on the real database server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from tgm_runtime import counts
from tgm_runtime.counts import COUNTS, WriteWatch, cached_count, canonical

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest_asyncio.fixture
async def clients(mongo_server: Any) -> AsyncIterator[tuple[Any, Any]]:
    """The service's client (with the runtime's listener) and an outsider's (another replica)."""
    ours: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, event_listeners=[WriteWatch()])
    theirs: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri)
    name = f"counts_{uuid.uuid4().hex[:8]}"
    try:
        yield ours[name]["rows"], theirs[name]["rows"]
    finally:
        await ours.drop_database(name)
        await ours.close()
        await theirs.close()


async def test_a_count_is_read_once_until_this_process_writes(clients) -> None:
    rows, _ = clients
    await rows.insert_many([{"n": i, "even": i % 2 == 0} for i in range(10)])
    before = COUNTS.misses
    assert await cached_count(rows, {"even": True}) == 5
    assert await cached_count(rows, {"even": True}) == 5
    assert await cached_count(rows, {}) == 10
    assert COUNTS.misses - before == 2  # one per filter
    await rows.insert_one({"n": 10, "even": True})
    assert await cached_count(rows, {"even": True}) == 6
    await rows.update_many({"n": {"$lt": 4}}, {"$set": {"even": False}})
    assert await cached_count(rows, {"even": True}) == 4
    await rows.find_one_and_delete({"n": 10})
    await rows.delete_many({"n": 9})
    assert await cached_count(rows, {"even": True}) == 3
    assert await cached_count(rows, {}) == 9


async def test_another_processes_write_shows_within_the_ttl(clients, monkeypatch) -> None:
    rows, outsider = clients
    monkeypatch.setattr(counts, "TTL", 0.3)
    await rows.insert_many([{"n": i} for i in range(3)])
    assert await cached_count(rows, {}) == 3
    await outsider.insert_one({"n": 3})  # not seen by this process's listener
    assert await cached_count(rows, {}) == 3  # up to TTL old, as documented
    await asyncio.sleep(0.35)  # the TTL itself is what is tested
    assert await cached_count(rows, {}) == 4


async def test_a_count_that_ran_beside_a_write_is_not_kept(clients, monkeypatch) -> None:
    rows, _ = clients
    await rows.insert_many([{"n": i} for i in range(3)])
    real = rows.count_documents
    wrote = asyncio.Event()

    async def during_a_write(query: dict[str, Any]) -> int:
        value = await real(query)
        await rows.insert_one({"n": 99})  # lands after the count read, before it is kept
        wrote.set()
        return value

    monkeypatch.setattr(rows, "count_documents", during_a_write)
    assert await cached_count(rows, {}) == 3
    monkeypatch.setattr(rows, "count_documents", real)
    assert wrote.is_set() and await cached_count(rows, {}) == 4


async def test_concurrent_callers_share_one_count(clients, monkeypatch) -> None:
    rows, _ = clients
    await rows.insert_many([{"n": i} for i in range(5)])
    real, calls = rows.count_documents, []

    async def counted(query: dict[str, Any]) -> int:
        calls.append(query)
        return await real(query)

    monkeypatch.setattr(rows, "count_documents", counted)
    assert await asyncio.gather(*(cached_count(rows, {"n": {"$gte": 0}}) for _ in range(8))) == [5] * 8
    assert len(calls) == 1


def test_equal_filters_make_one_key_whatever_their_order() -> None:
    assert canonical({"a": 1, "b": {"$in": [1, 2]}}) == canonical({"b": {"$in": [1, 2]}, "a": 1})
    assert canonical({"a": 1}) != canonical({"a": "1"}) != canonical({"a": True})
    assert canonical({"a": [1, 2]}) != canonical({"a": [2, 1]})


async def test_a_caller_after_a_write_does_not_share_a_count_begun_before_it(clients, monkeypatch) -> None:
    rows, _ = clients
    await rows.insert_many([{"n": i} for i in range(3)])
    real, counting, release = rows.count_documents, asyncio.Event(), asyncio.Event()

    async def slow(query: dict[str, Any]) -> int:
        value = await real(query)
        counting.set()
        await release.wait()  # the count is still under way when the write ends
        return value

    monkeypatch.setattr(rows, "count_documents", slow)
    early = asyncio.create_task(cached_count(rows, {}))
    await asyncio.wait_for(counting.wait(), 10)
    await rows.insert_one({"n": 3})
    monkeypatch.setattr(rows, "count_documents", real)
    assert await cached_count(rows, {}) == 4  # its own count, not the one begun before the write
    release.set()
    assert await early == 3
