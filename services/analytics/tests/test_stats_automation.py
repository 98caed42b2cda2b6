"""Automation in the statistics: trigger decisions, AI suggestions, leads captured by triggers and
campaign figures, from campaign's events on the real analytics runtime (in-memory broker, real
database), exact figures back on get-dashboard-stats and get-analytics, redeliveries and late
snapshots changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from tgm_analytics.stats.store import CAMPAIGNS, sweep
from tgm_contracts import events_campaign as cp
from tgm_contracts.commands import analytics as A
from tgm_contracts.events import Event
from tgm_contracts.models.campaign import CampaignStatus

from .conftest import eventually, ok, publish, swept_at_start

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
T0 = NOW - timedelta(hours=24)
WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=3)).isoformat(), "timezone": "UTC"}


def at(minutes: float) -> dict[str, Any]:
    return {"occurred_at": T0 + timedelta(minutes=minutes)}


def fired(rule: str, minutes: float, outcome: str = "fired", **kw: Any) -> Event:
    return cp.TriggerFired(
        rule_id=rule, rule_name=rule.upper(), actions=["reply_template"], outcome=outcome, **kw, **at(minutes)
    )


def progress(campaign: str, minutes: float, sent: int, **kw: Any) -> Event:
    return cp.CampaignProgress(
        campaign_id=campaign, name=campaign.upper(), targets=10, queued=10, sent=sent, **kw, **at(minutes)
    )


def state(
    campaign: str,
    status: CampaignStatus,
    minutes: float,
    kind: Literal["campaign", "ad_campaign"] = "campaign",
) -> Event:
    return cp.CampaignStateChanged(campaign_id=campaign, kind=kind, status=status, **at(minutes))


def scenario() -> list[Event]:
    """Two rules in one group over three hours, an AI rule in semi mode, two campaigns."""
    first = fired("r1", 10, group_id="g1", user_id=7, lead_id="L1")
    return [
        cp.KeywordMatched(
            group_id="g1",
            chat_id=-500,
            user_id=7,
            keyword_set_id="ks",
            keyword="price",
            match_type="contains",
            listener_account_id="a1",
            **at(9),
        ),
        first,
        first,  # redelivered: counted once
        fired("r1", 20, group_id="g1", user_id=8, lead_id="L2"),
        fired("r1", 25, group_id="g1", user_id=8, lead_id="L2"),  # the same lead again: one lead
        fired("r1", 30, "cooldown", group_id="g1", user_id=8),
        fired("r2", 70, "daily_limit", group_id="g2", user_id=9),
        fired("r2", 80, "condition_failed", group_id="g2", user_id=9),
        fired("r2", 130, "error", group_id="g2", user_id=10, detail="ai unavailable"),
        fired("r2", 200, group_id="g2", user_id=11, lead_id="L9"),  # after the window
        cp.ReplySuggested(
            rule_id="r3", group_id="g1", chat_id=-500, user_id=7, account_id="a1", text="hi", **at(40)
        ),
        state("c1", CampaignStatus.RUNNING, 5),
        progress("c1", 30, 4),
        progress("c1", 60, 9, failed=1, percent=100),
        progress("c1", 50, 7),  # an older snapshot arriving late: changes nothing
        state("c1", CampaignStatus.COMPLETED, 61),
        state("c2", CampaignStatus.RUNNING, 100),
        progress("c2", 110, 3, skipped=2, replied=1, percent=50),
        state("ad1", CampaignStatus.RUNNING, 100, kind="ad_campaign"),  # an ad campaign: not counted here
    ]


@pytest.fixture
async def loaded(client):
    await publish(client, *scenario())
    return client


async def test_dashboard_shows_triggers_suggestions_leads_and_campaigns(loaded) -> None:
    data = await ok(loaded, A.GetDashboardStats, WINDOW)
    auto = data["automation"]
    assert auto["keywordMatches"] == 1
    assert auto["triggers"] == {
        "fired": 3,
        "skipped": {"cooldown": 1, "daily_limit": 1, "condition_failed": 1},
        "errors": 1,
        "leads": 2,
        "suggestions": 1,
    }
    campaigns = auto["campaigns"]
    assert (campaigns["started"], campaigns["completed"], campaigns["running"]) == (2, 1, 1)
    # the latest snapshot of each (c1's late older one ignored): 9+3 sent, 1 failed, 2 skipped
    assert (campaigns["targets"], campaigns["sent"], campaigns["failed"], campaigns["skipped"]) == (
        20,
        12,
        1,
        2,
    )
    assert campaigns["replied"] == 1
    assert [
        (c["campaignId"], c["name"], c["status"], c["sent"], c["percent"]) for c in campaigns["items"]
    ] == [
        ("c2", "C2", "running", 3, 50),
        ("c1", "C1", "completed", 9, 100),
    ]


async def test_a_window_without_automation_lists_only_running_campaigns(loaded) -> None:
    later = {
        "since": (T0 + timedelta(hours=5)).isoformat(),
        "until": (T0 + timedelta(hours=6)).isoformat(),
        "timezone": "UTC",
    }
    auto = (await ok(loaded, A.GetDashboardStats, later))["automation"]
    assert auto["triggers"] == {"fired": 0, "skipped": {}, "errors": 0, "leads": 0, "suggestions": 0}
    assert (auto["campaigns"]["started"], auto["campaigns"]["running"]) == (0, 1)
    assert [c["campaignId"] for c in auto["campaigns"]["items"]] == ["c2"]  # still running


async def test_get_analytics_automation_metrics_buckets_and_grouping(loaded) -> None:
    metrics = [
        "triggers_fired",
        "triggers_skipped",
        "trigger_errors",
        "trigger_leads",
        "ai_suggestions",
        "campaigns_started",
        "campaigns_completed",
        "keyword_matches",
    ]
    data = await ok(loaded, A.GetAnalytics, {**WINDOW, "bucket": "hour", "metrics": metrics})
    got = {s["metric"]: (s["total"], [p["value"] for p in s["points"]]) for s in data["series"]}
    assert got == {
        "triggers_fired": (3, [3, 0, 0]),
        "triggers_skipped": (3, [1, 2, 0]),
        "trigger_errors": (1, [0, 0, 1]),
        "trigger_leads": (2, [2, 0, 0]),
        "ai_suggestions": (1, [1, 0, 0]),
        "campaigns_started": (2, [1, 1, 0]),
        "campaigns_completed": (1, [0, 1, 0]),
        "keyword_matches": (1, [1, 0, 0]),
    }
    by_campaign = await ok(
        loaded, A.GetAnalytics, {**WINDOW, "metrics": ["campaigns_started"], "groupBy": "campaign"}
    )
    assert sorted((s["key"], s["total"]) for s in by_campaign["series"]) == [("c1", 1), ("c2", 1)]
    # a firing takes its group's chat from the keyword match (g1 -> -500); g2 was never matched
    by_chat = await ok(loaded, A.GetAnalytics, {**WINDOW, "metrics": ["triggers_fired"], "groupBy": "chat"})
    assert [(s["key"], s["total"]) for s in by_chat["series"]] == [("-500", 3)]
    one_chat = await ok(loaded, A.GetAnalytics, {**WINDOW, "metrics": ["triggers_skipped"], "chatId": -500})
    assert one_chat["series"][0]["total"] == 1  # r1's cooldown; r2's skips were in g2


async def test_redelivered_events_and_late_snapshots_change_nothing(client) -> None:
    events = scenario()
    await publish(client, *events)
    before = (await ok(client, A.GetDashboardStats, WINDOW))["automation"]
    await publish(client, *reversed(events))  # every event again, newest first
    after = (await ok(client, A.GetDashboardStats, WINDOW))["automation"]
    assert after == before


async def test_campaign_figures_follow_retention(client) -> None:
    await swept_at_start(client, "stats-retention")
    await publish(client, state("old", CampaignStatus.COMPLETED, -200 * 24 * 60), progress("c1", 30, 4))
    db = client.runtime.db

    async def both() -> bool:
        return await db[CAMPAIGNS].count_documents({}) == 2

    assert await eventually(both)
    removed = await sweep(db, 90)
    assert removed["campaigns"] == 1
    assert [d["_id"] async for d in db[CAMPAIGNS].find({})] == ["c1"]
