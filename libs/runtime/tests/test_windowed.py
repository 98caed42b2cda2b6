"""Windowed newest-first pages (windowed.py) equal the plain keyset read, on the real database server."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from pymongo import DESCENDING, AsyncMongoClient
from tgm_runtime import windowed
from tgm_runtime.cursor import Keyset
from tgm_runtime.windowed import read_newest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ORDER = Keyset(("at", "_id"), descending=True)


@pytest_asyncio.fixture
async def rows(mongo_server: Any) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = f"windowed_{uuid.uuid4().hex[:8]}"
    col = client[name]["rows"]
    await col.create_index([("at", DESCENDING), ("_id", DESCENDING)])
    try:
        yield col
    finally:
        await client.drop_database(name)
        await client.close()


def times(now: datetime) -> list[datetime]:
    """A dense run a second apart, a burst sharing one instant, a gap of two years, a row older than
    the floor, rows in the future, and a sparse tail a day apart."""
    out = [now - timedelta(seconds=i) for i in range(120)]
    out += [now - timedelta(minutes=30)] * 37
    out += [now - timedelta(days=730 + i) for i in range(5)]
    out += [datetime(2001, 5, 1, tzinfo=UTC), now + timedelta(hours=2), now + timedelta(days=1)]
    out += [now - timedelta(days=i, hours=3) for i in range(1, 40)]
    return out


def count_returned(col: Any, monkeypatch: Any) -> list[int]:
    """From now on, how many documents each find of `col` returns."""
    returned: list[int] = []
    find = col.find

    def counting(query: Any, *args: Any, **kwargs: Any) -> Any:
        cursor = find(query, *args, **kwargs)
        real = cursor.to_list

        async def to_list(*a: Any, **k: Any) -> Any:
            out = await real(*a, **k)
            returned.append(len(out))
            return out

        cursor.to_list = to_list
        return cursor

    monkeypatch.setattr(col, "find", counting)
    return returned


async def plain(col: Any, query: dict[str, Any], cursor: str | None, limit: int) -> Any:
    docs = await col.find(ORDER.where(query, cursor)).sort(ORDER.sort()).limit(limit + 1).to_list()
    return ORDER.page(docs, limit)


async def walk(col: Any, query: dict[str, Any], limit: int, read: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        items, cursor = await read(col, query, cursor, limit)
        pages.append([d["_id"] for d in items])
        if cursor is None:
            return pages
        assert len(pages) < 500


@pytest.mark.parametrize("limit", [1, 7, 50])
async def test_every_page_equals_the_plain_keyset_read(rows, limit) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(limit)
    docs = [{"_id": f"r{i:04d}", "at": at, "kind": rng.choice(["a", "b"])} for i, at in enumerate(times(now))]
    rng.shuffle(docs)
    await rows.insert_many(docs)

    async def windowed_read(col: Any, query: dict[str, Any], cursor: str | None, n: int) -> Any:
        return await read_newest(col, ORDER, query, cursor, n)

    for query in ({}, {"kind": "a"}, {"kind": "none"}):
        expected = await walk(rows, query, limit, plain)
        assert await walk(rows, query, limit, windowed_read) == expected, query
        assert sum(map(len, expected)) == sum(1 for d in docs if query.get("kind", d["kind"]) == d["kind"])


async def test_a_filter_it_cannot_window_is_read_the_plain_way(rows) -> None:
    now = datetime.now(UTC)
    await rows.insert_many([{"_id": f"r{i}", "at": now - timedelta(seconds=i), "n": i} for i in range(30)])
    for query in ({"$or": [{"n": 1}, {"n": {"$gt": 20}}]}, {"at": {"$lt": now - timedelta(seconds=5)}}):
        got = await read_newest(rows, ORDER, query, None, 5)
        assert got == await plain(rows, query, None, 5)


async def test_the_next_pages_window_is_sized_by_what_it_saw(rows, monkeypatch) -> None:
    """After the first page the windows hold about a page: few documents read per page."""
    now = datetime.now(UTC)
    await rows.insert_many([{"_id": f"r{i:05d}", "at": now - timedelta(seconds=i)} for i in range(3000)])
    returned = count_returned(rows, monkeypatch)
    items, cursor = await read_newest(rows, ORDER, {}, None, 50)
    assert len(items) == 50 and sum(returned) >= 51  # the first window: an hour, 3,000 rows
    for _ in range(10):
        returned.clear()
        items, cursor = await read_newest(rows, ORDER, {}, cursor, 50)
        assert len(items) == 50 and sum(returned) <= 200, returned
    assert windowed._learnt  # learnt


async def test_a_first_page_starts_from_the_newest_row_it_saw_and_still_shows_newer_ones(
    rows, monkeypatch
) -> None:
    """A list whose newest row is hours old: the next first page reads about a page, not the hours
    of rows the widening windows would reach; a row added since is on it all the same."""
    old = datetime.now(UTC) - timedelta(hours=5)
    await rows.insert_many([{"_id": f"r{i:05d}", "at": old - timedelta(seconds=i)} for i in range(3000)])
    first, _ = await read_newest(rows, ORDER, {}, None, 20)
    assert [d["_id"] for d in first] == [f"r{i:05d}" for i in range(20)]
    returned = count_returned(rows, monkeypatch)
    again, _ = await read_newest(rows, ORDER, {}, None, 20)
    assert again == first and sum(returned) <= 100, returned
    await rows.insert_one({"_id": "fresh", "at": datetime.now(UTC)})
    fresh, _ = await read_newest(rows, ORDER, {}, None, 20)
    assert fresh[0]["_id"] == "fresh" and [d["_id"] for d in fresh[1:]] == [d["_id"] for d in first[:19]]


async def test_rows_older_than_the_floor_sharing_one_instant_are_all_paged(rows) -> None:
    """Past `FLOOR` the rest is one sorted read; at a cursor inside a run of rows sharing its instant
    that read must start after the cursor, not at the instant (the rows before it would fill it)."""
    old = datetime(2010, 1, 1, tzinfo=UTC)
    await rows.insert_many([{"_id": f"r{i:03d}", "at": old} for i in range(20)])
    await rows.insert_many(
        [{"_id": f"n{i:03d}", "at": datetime.now(UTC) - timedelta(seconds=i)} for i in range(3)]
    )

    async def windowed_read(col: Any, query: dict[str, Any], cursor: str | None, n: int) -> Any:
        return await read_newest(col, ORDER, query, cursor, n)

    expected = await walk(rows, {}, 5, plain)
    assert sum(map(len, expected)) == 23
    assert await walk(rows, {}, 5, windowed_read) == expected
