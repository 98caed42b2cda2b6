"""Campaign's migrations on a real database server: a database that ran migration 4 before its list
grew gets the missing ad indexes from migration 5, and running everything again changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tgm_campaign.migrations import MIGRATIONS
from tgm_runtime.migrations import MigrationRunner

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
async def db(mongo_server: Any) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = f"cmig_{uuid.uuid4().hex[:8]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def index_names(db: Any, collection: str) -> set[str]:
    return {i["name"] async for i in await db[collection].list_indexes()}


async def test_an_old_migration_4_gets_the_ad_indexes_it_lacked(db: Any) -> None:
    # A database as migration 4 left it before `ad_replies` and `ad_runs.planned` were in its list.
    old = [m for m in MIGRATIONS if m.number <= 4]
    assert await MigrationRunner(db, old).run() == [1, 2, 3, 4]
    await db["ad_runs"].drop_index("planned")
    await db["ad_replies"].drop()
    assert "planned" not in await index_names(db, "ad_runs")

    runner = MigrationRunner(db, MIGRATIONS)
    assert [p["number"] for p in (await runner.status())["pending"]] == [5]
    assert await runner.run() == [5]
    assert "planned" in await index_names(db, "ad_runs")
    assert "campaign_at" in await index_names(db, "ad_replies")
    status = await runner.status()
    assert status["current"] == status["latest"] == MIGRATIONS[-1].number and status["pending"] == []
    assert await MigrationRunner(db, MIGRATIONS).run() == []


async def test_a_new_database_runs_every_migration(db: Any) -> None:
    assert await MigrationRunner(db, MIGRATIONS).run() == [m.number for m in MIGRATIONS]
    assert {"planned", "campaign_phase"} <= await index_names(db, "ad_runs")
