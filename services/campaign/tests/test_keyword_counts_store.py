"""Keyword match counters read for a whole list of sets (keyword_store.match_counts), on the real
database server: one range per set for a few sets, every counter for many, the same answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tgm_campaign.automation import keyword_store
from tgm_campaign.automation.keyword_store import KeywordSetStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_many_sets_and_a_few_read_the_same_counts(mongo_server: Any) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    name = f"kwcounts_{uuid.uuid4().hex[:8]}"
    try:
        store = KeywordSetStore(client[name])
        at = datetime.now(UTC).replace(microsecond=0)
        sets = [f"ks_{i:03d}" for i in range(keyword_store.OR_RANGES_MAX + 8)]
        for i, set_id in enumerate(sets):
            for m in range(i % 3):
                await store.count(set_id, ["kw_a", "kw_a", None], at, f"msg-{i}-{m}")
        await store.count("ks_not_listed", ["kw_a"], at, "other")
        many = await store.match_counts(sets)
        assert set(many) == set(sets)
        for i, set_id in enumerate(sets):
            expected = {"": (i % 3, at), "kw_a": (2 * (i % 3), at)} if i % 3 else {}
            assert many[set_id] == expected, set_id
        few = await store.match_counts(sets[:3])
        assert few == {s: many[s] for s in sets[:3]}
    finally:
        await client.drop_database(name)
        await client.close()
