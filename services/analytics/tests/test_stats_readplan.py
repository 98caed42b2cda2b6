"""Both ways of reading facts (through the time index, or one unfiltered pass filtered in Python) give
identical statistics, on the component scenario and on windows, filters and zones that exercise every
part of the fact query (kinds, account, chat, chat list, the private-only reply look-back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_analytics.stats.queries import SCAN_FRACTION, GeneralZone, StatsQueries, _matcher
from tgm_analytics.stats.store import FACTS, FactStore
from tgm_contracts.commands import analytics as A

from .conftest import publish
from .test_stats_component import T0, scenario

pytestmark = [pytest.mark.timeout(60)]

WINDOWS = [
    {"since": T0, "until": T0 + timedelta(hours=3), "bucket": "hour", "timezone": "UTC"},
    # the send of minute 10 lies in the reply look-back, its reply (minute 30) in the window
    {"since": T0 + timedelta(minutes=20), "until": T0 + timedelta(hours=3), "bucket": "hour"},
    {"since": T0 + timedelta(minutes=45), "until": T0 + timedelta(hours=2), "bucket": "hour"},
    {
        "since": T0 - timedelta(days=2),
        "until": T0 + timedelta(days=1),
        "bucket": "day",
        "timezone": "Asia/Kolkata",
    },
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"account_id": "a1"},
    {"account_id": "a2"},
    {"chat_id": 101},
    {"chat_id": -500},
    {"chat_kind": "private"},
    {"chat_kind": "group"},
    {"campaign_id": "c1"},
]


METRICS = [
    "messages_sent",
    "messages_received",
    "messages_failed",
    "flood_wait_seconds",
    "replies_received",
    "active_users",
    "new_users",
    "keyword_matches",
    "members_extracted",
    "ai_replies",
]


def requests() -> list[Any]:
    out: list[Any] = []
    for w in WINDOWS:
        out.append(A.DashboardRequest(**w))
        out.append(A.GroupStatsRequest(**w))
        out.append(A.GroupStatsRequest(**w, chat_ids=[-500, -501]))
        out.append(A.GroupStatsRequest(**w, account_id="a1"))
        for f in FILTERS:
            out.append(A.MessageStatsRequest(**w, **f))
            if "chat_kind" in f:
                continue  # only get-message-stats has a chat kind filter
            out.append(A.UserStatsRequest(**w, **f))
            for group_by in ("none", "account", "campaign", "chat", "service"):
                out.append(A.GetAnalyticsRequest(**w, **f, metrics=METRICS, group_by=group_by))
    return out


def dump(result: Any) -> dict[str, Any]:
    data = result.model_dump()
    data.pop("generated_at", None)
    data.pop("generatedAt", None)
    return data


@pytest.mark.component
async def test_index_and_scan_read_plans_give_identical_statistics(client) -> None:
    await publish(client, *scenario())
    db = client.runtime.db
    facts = FactStore(db)
    zones = GeneralZone(facts)
    index = StatsQueries(facts, zones, read_plan="index")
    scan = StatsQueries(facts, zones, read_plan="scan")
    method = {
        A.DashboardRequest: "dashboard",
        A.MessageStatsRequest: "messages",
        A.UserStatsRequest: "users",
        A.GroupStatsRequest: "groups",
        A.GetAnalyticsRequest: "analytics",
    }
    compared = 0
    for req in requests():
        name = method[type(req)]
        a = await getattr(index, name)(req)
        b = await getattr(scan, name)(req)
        assert dump(a) == dump(b), (name, req)
        compared += 1
    # the scenario really produced figures (a comparison of empty results proves nothing)
    first = await index.messages(A.MessageStatsRequest(**WINDOWS[0]))
    assert first.totals.sent == 4 and first.totals.replies_received == 2
    look_back = await scan.messages(A.MessageStatsRequest(**WINDOWS[1]))
    assert look_back.totals.sent == 3 and look_back.totals.replies_received >= 1
    assert compared == len(requests())


@pytest.mark.component
async def test_auto_plan_scans_only_for_windows_covering_most_facts(client) -> None:
    await publish(client, *scenario())
    db = client.runtime.db
    # the facts' span (the scenario's, and any alert the alerts feature raised meanwhile) up to now
    times = sorted([d["t"] async for d in db[FACTS].find({}, {"t": 1})])
    lo = times[0]
    now = T0 + timedelta(hours=24)
    q = StatsQueries(FactStore(db), GeneralZone(FactStore(db)), clock=lambda: now)
    assert not await q._scan_is_cheaper(lo - timedelta(days=30), now)  # no estimate yet: the index
    assert await q.refresh_span() == lo
    span = now - lo
    assert await q._scan_is_cheaper(lo - timedelta(days=30), now + timedelta(days=1))
    assert await q._scan_is_cheaper(lo, lo + span / 2)
    assert not await q._scan_is_cheaper(lo, lo + span / 10)
    assert not await q._scan_is_cheaper(now - span / 10, now + timedelta(days=30))
    assert not await q._scan_is_cheaper(lo - timedelta(days=2), lo - timedelta(days=1))
    assert 0 < SCAN_FRACTION < 1


@pytest.mark.component
async def test_auto_plan_on_an_empty_collection_reads_through_the_index(client) -> None:
    facts = FactStore(client.runtime.db)
    q = StatsQueries(facts, GeneralZone(facts))
    await client.runtime.db[FACTS].delete_many({})
    assert await q.refresh_span() is None
    assert not await q._scan_is_cheaper(T0, T0 + timedelta(days=1))
    data = await q.messages(A.MessageStatsRequest(since=T0, until=T0 + timedelta(days=1), bucket="day"))
    assert data.totals.sent == 0


@pytest.mark.unit
@pytest.mark.timeout(5)
def test_matcher_follows_the_servers_semantics_for_the_fact_query() -> None:
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    q = {"t": {"$gte": t, "$lt": t + timedelta(hours=1)}, "k": {"$in": ["received", "sent"]}, "a": "a1"}
    match = _matcher({**q, "ch": {"$in": [5, 6]}, "ck": "private"})
    base = {"t": t, "k": "sent", "a": "a1", "ch": 5, "ck": "private"}
    assert match(base)
    assert match({**base, "t": t + timedelta(minutes=59), "k": "received", "ch": 6})
    assert not match({**base, "t": t + timedelta(hours=1)})  # until is excluded
    assert not match({**base, "t": t - timedelta(microseconds=1)})
    assert not match({**base, "k": "failed"})
    assert not match({**base, "a": "a2"})
    assert not match({k: v for k, v in base.items() if k != "a"})  # an absent field matches no value
    assert not match({**base, "ch": 7})
    assert not match({k: v for k, v in base.items() if k != "ch"})
    assert not match({**base, "ck": "group"})
    with pytest.raises(ValueError, match="unsupported"):
        _matcher({"t": {"$ne": t}})
