"""The inbound hot path's write budget (bench/automation/decision.py measures its latency):

- a group message with no hit writes nothing per message: its group's `last_message_at` is kept in
  memory and written by `GroupService.flush_seen` (every second, and at stop), the latest time wins;
- a matched message counts its keywords in small counter documents (`keyword_counts`), never in the
  set document (which keeps its `rev`, so no save has to retry), exact under concurrency, added to
  the counts a set document embeds from before, and forgotten with the set.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_campaign.automation.matcher import Hit
from tgm_campaign.testing import FleetChat
from tgm_contracts.commands import automation as A

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_last_message_time_batched_and_match_counts_immediate(campaign: Any) -> None:
    campaign.fleet.chats.append(FleetChat(chat_id=-100301, title="Hot", username="hotpath"))
    ks = await campaign.data(A.AddKeywordSet, {"name": "Hot", "keywords": ["price"]})
    group = await campaign.data(A.AddGroup, {"group": -100301, "keywordSetIds": [ks["id"]]})
    groups = campaign.m.groups
    coll = campaign.rt.db["groups"]
    t0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    await groups.seen_message(group["id"], t0 + timedelta(seconds=5))
    await groups.seen_message(group["id"], t0)  # an older copy does not move it back
    doc = await coll.find_one({"_id": group["id"]})
    assert doc["last_message_at"] is None and doc["match_count"] == 0  # nothing written yet

    assert await groups.flush_seen() == 1
    doc = await coll.find_one({"_id": group["id"]})
    assert doc["last_message_at"] == t0 + timedelta(seconds=5) and doc["match_count"] == 0
    assert await groups.flush_seen() == 0  # nothing kept any more

    # a matched message is written at once (counted exactly, once per message by the claim)
    await groups.seen_message(group["id"], t0 + timedelta(seconds=9), "-100301:7")
    await groups.seen_message(group["id"], t0 + timedelta(seconds=9), "-100301:7")  # a redelivery
    doc = await coll.find_one({"_id": group["id"]})
    assert doc["match_count"] == 1 and doc["last_match_at"] == t0 + timedelta(seconds=9)
    assert doc["last_message_at"] == t0 + timedelta(seconds=9)


async def test_keyword_counters_in_their_own_documents(campaign: Any) -> None:
    ks = await campaign.data(A.AddKeywordSet, {"name": "Counted", "keywords": ["alpha", "beta"]})
    alpha, beta = ks["keywords"]
    sets = campaign.rt.db["keyword_sets"]
    rev = (await sets.find_one({"_id": ks["id"]}))["rev"]
    # a set document from before the counter documents: its embedded counts are kept and added to
    await sets.update_one(
        {"_id": ks["id"], "keywords.id": alpha["id"]},
        {"$set": {"keywords.$.match_count": 3, "total_matches": 3}},
    )
    at = datetime(2025, 7, 1, tzinfo=UTC)

    def hits(*ids: str) -> list[Hit]:
        return [Hit(ks["id"], i, "x", "contains", 0, 1) for i in ids]

    await asyncio.gather(
        *(
            campaign.m.keyword_sets.count_matches(hits(alpha["id"], alpha["id"]), at, f"a{i}")
            for i in range(10)
        ),
        *(
            campaign.m.keyword_sets.count_matches(hits(beta["id"]), at + timedelta(hours=1), f"b{i}")
            for i in range(5)
        ),
        # redeliveries of messages already counted (or being counted): each message counts once
        *(
            campaign.m.keyword_sets.count_matches(hits(beta["id"]), at + timedelta(hours=1), f"b{i}")
            for i in range(5)
        ),
    )
    assert (await sets.find_one({"_id": ks["id"]}))["rev"] == rev  # the set document is not written
    view = (await campaign.data(A.GetKeywordSets, {"ids": [ks["id"]]}))["items"][0]
    by_text = {k["keyword"]: k for k in view["keywords"]}
    # a keyword twice in one message is one occurrence per hit listed: the store counts what it is given
    assert by_text["alpha"]["matchCount"] == 3 + 20 and by_text["beta"]["matchCount"] == 5
    assert by_text["beta"]["lastMatchedAt"].startswith("2025-07-01T01:00")
    assert view["totalMatches"] == 3 + 15

    # a save keeps the keyword ids, hence their counters
    saved = await campaign.data(
        A.SaveKeywordSet, {"id": ks["id"], "name": "Counted", "keywords": ["alpha", "gamma"]}
    )
    kept = {k["keyword"]: k for k in saved["keywords"]}
    assert kept["alpha"]["id"] == alpha["id"] and kept["alpha"]["matchCount"] == 23
    assert kept["gamma"]["matchCount"] == 0 and saved["totalMatches"] == 18

    # deleted with its set
    await campaign.data(A.DeleteKeywordSet, {"id": ks["id"]})
    assert await campaign.rt.db["keyword_counts"].count_documents({"set_id": ks["id"]}) == 0
