"""The six statistics commands on the real analytics runtime (in-memory broker, real database): events
published as the other services publish them, exact figures back, duplicates counted once, bad input
refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_analytics.stats.store import FACTS, LEADS, sweep
from tgm_contracts import events_ai as ai
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts
from tgm_contracts import events_system as sy
from tgm_contracts.commands import analytics as A
from tgm_contracts.events import Event
from tgm_contracts.models.campaign import JobReason, JobState, LeadStage
from tgm_contracts.models.session import AccountState, TelegramUser

from .conftest import err, ok, publish

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
T0 = NOW - timedelta(hours=24)
WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=3)).isoformat(), "timezone": "UTC"}


def at(minutes: float) -> dict[str, Any]:
    return {"occurred_at": T0 + timedelta(minutes=minutes)}


def sent(account: str, chat: int, minutes: float, job: str | None = None, kind: str = "private") -> Event:
    return ts.MessageSent(
        account_id=account,
        chat_kind=kind,
        chat_id=chat,
        message_id=int(minutes * 10) + 1,
        job_id=job,
        sent_at=T0 + timedelta(minutes=minutes),
        **at(minutes),
    )


def received(
    account: str, chat: int, minutes: float, kind: str = "private", sender: int | None = None
) -> Event:
    return ts.MessageReceived(
        account_id=account,
        chat_kind=kind,
        chat_id=chat,
        chat_title="Sales" if kind != "private" else None,
        message_id=int(minutes * 10) + 2,
        sender_id=sender if sender is not None else chat,
        date=T0 + timedelta(minutes=minutes),
        **at(minutes),
    )


def stage(lead: str, to: LeadStage, minutes: float) -> Event:
    return cp.LeadStageChanged(lead_id=lead, to_stage=to, **at(minutes))


def scenario() -> list[Event]:
    """A small day: 3 accounts, a campaign of two jobs, replies, failures, a group, leads, AI."""
    first = sent("a1", 101, 10, job="j1")
    return [
        ts.AccountAdded(account_id="a1", phone="+1000001", **at(-60)),
        ts.AccountAdded(account_id="a2", phone="+1000002", **at(-60)),
        ts.AccountAdded(account_id="a3", phone="+1000003", **at(-60)),
        ts.AccountStatusChanged(account_id="a1", state=AccountState.ACTIVE, **at(-50)),
        ts.AccountStatusChanged(account_id="a2", state=AccountState.FLOOD_WAIT, **at(150)),
        ts.AccountRemoved(account_id="a3", phone="+1000003", **at(-40)),
        # a user contacted 4 days earlier: not new in the window, and no longer answerable
        sent("a1", 106, -4 * 24 * 60),
        cp.MessageQueued(
            batch_id="b1",
            job_ids=["j2"],
            created=1,
            priority="normal",
            campaign_id="c1",
            lead_id="L3",
            **at(5),
        ),
        first,
        first,  # delivered twice: counted once
        cp.MessageSent(
            job_id="j1",
            account_id="a1",
            peer="101",
            message_id=1,
            campaign_id="c1",
            lead_id="L2",
            sent_at=T0,
            **at(10.1),
        ),
        sent("a1", 102, 20, job="j2"),
        received("a1", 101, 30),  # answers the send of minute 10 (campaign c1)
        received("a1", 101, 40),  # the same send again: not another reply
        ts.MessageSendFailed(
            account_id="a1", peer="105", error_code="TELEGRAM_ERROR", telegram_error="PEER_FLOOD", **at(50)
        ),
        sent("a2", 103, 70),
        sent("a1", -500, 80, kind="supergroup"),
        received("a2", 103, 120),  # a reply, to a send of no campaign
        received("a1", 104, 130),  # wrote first: a new inbound user, not a reply
        received("a1", -500, 140, kind="supergroup", sender=7),
        received("a1", 106, 160),  # last send was 4 days ago: active, not a reply, not new
        ts.MessageReceived(
            account_id="a1",
            chat_kind="private",
            chat_id=101,
            message_id=9,
            date=T0,
            is_outgoing=True,
            **at(161),
        ),
        ts.MessageSendFailed(account_id="a2", peer="@someone", error_code="FLOOD_WAIT", **at(150)),
        # the jobs of those attempts failed for good (what `failed` counts)
        *(
            cp.JobStateChanged(job_id=job, state=JobState.FAILED, reason=why, account_id=a, peer=p, **at(m))
            for job, why, a, p, m in (
                ("j5", JobReason.ATTEMPTS_EXHAUSTED, "a1", "105", 50),
                ("j6", JobReason.TEMPLATE_ERROR, "a2", "@someone", 150),
            )
        ),
        ts.FloodWaitRecorded(account_id="a2", seconds=30, until=T0, category="send", **at(150)),
        cp.UserOptedOut(user_id=104, account_id="a1", stop_word="stop", **at(131)),
        cp.UserBlacklisted(user_id=101, blacklisted=True, **at(45)),
        ts.ExtractionFinished(
            job_id="x1",
            account_id="a1",
            chat_id=-500,
            state="completed",
            scanned=30,
            collected=25,
            duration_seconds=3,
            **at(100),
        ),
        ts.GroupJoined(account_id="a1", chat_id=-500, chat_kind="supergroup", title="Sales", **at(5)),
        ts.GroupLeft(account_id="a2", chat_id=-600, **at(6)),
        ts.MemberJoined(
            account_id="a1",
            chat_id=-500,
            user=TelegramUser(user_id=9),
            joined_at=T0,
            chat_title="Sales",
            **at(60),
        ),
        cp.KeywordMatched(
            group_id="g1",
            chat_id=-500,
            user_id=7,
            keyword_set_id="ks",
            keyword="price",
            match_type="contains",
            listener_account_id="a1",
            **at(140),
        ),
        cp.MonitoringStateChanged(active=True, groups_watched=3, **at(1)),
        cp.LeadCaptured(lead_id="L1", user_id=7, source_type="keyword", source_group_id="g1", **at(141)),
        cp.LeadCaptured(lead_id="L2", user_id=101, source_type="campaign", **at(15)),
        stage("L2", LeadStage.CONTACTED, 16),
        stage("L2", LeadStage.REPLIED, 31),
        stage("L2", LeadStage.CLOSED_WON, 135),
        cp.LeadCaptured(lead_id="L3", user_id=102, source_type="campaign", **at(20)),
        stage("L3", LeadStage.CONTACTED, 21),
        stage("L3", LeadStage.CLOSED_LOST, 60),
        cp.LeadCaptured(lead_id="L4", user_id=110, source_type="import", **at(-2 * 24 * 60)),
        stage("L4", LeadStage.CLOSED_WON, 90),
        ai.AiResponseGenerated(
            account_id="a1",
            user_id="101",
            provider="local",
            model="m",
            confidence=0.9,
            handoff=False,
            **at(31),
        ),
        ai.AiResponseGenerated(
            account_id="a1",
            user_id="104",
            provider="local",
            model="m",
            confidence=0.9,
            handoff=False,
            **at(131),
        ),
        ai.AiResponseGenerated(
            account_id="a1",
            user_id="104",
            provider="local",
            model="m",
            confidence=0.1,
            handoff=True,
            **at(132),
        ),
    ]


@pytest.fixture
async def loaded(client):
    await publish(client, *scenario())
    return client


async def test_message_stats_exact_figures_buckets_accounts_and_errors(loaded) -> None:
    data = await ok(loaded, A.GetMessageStats, {**WINDOW, "bucket": "hour"})
    assert data["window"] == {
        "since": T0.isoformat().replace("+00:00", "Z"),
        "until": (T0 + timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
        "bucket": "hour",
        "timezone": "UTC",
    }
    assert data["totals"] == {
        "sent": 4,
        "received": 6,
        "failed": 2,
        "floodWaits": 1,
        "repliesReceived": 2,
        "replyRate": 0.5,
        "failedAttempts": 2,
        "sentByOrigin": {"queue": 4, "automation": 0, "external": 0},
        "receivedByOrigin": {"people": 6, "fleet": 0},
    }
    assert [(b["sent"], b["received"], b["failed"], b["floodWaits"]) for b in data["buckets"]] == [
        (2, 2, 1, 0),
        (2, 0, 0, 0),
        (0, 4, 1, 1),
    ]
    assert data["byAccount"] == [
        {"accountId": "a1", "sent": 3, "received": 5, "failed": 1, "floodWaits": 0},
        {"accountId": "a2", "sent": 1, "received": 1, "failed": 1, "floodWaits": 1},
    ]
    assert data["failuresByError"] == {"attempts_exhausted": 1, "template_error": 1}
    assert data["attemptFailuresByError"] == {"PEER_FLOOD": 1, "FLOOD_WAIT": 1}


async def test_message_filters_narrow_every_figure(loaded) -> None:
    async def totals(**filters: Any) -> dict[str, Any]:
        return (await ok(loaded, A.GetMessageStats, {**WINDOW, **filters}))["totals"]

    # the campaign's two sends (linked through their jobs) and the reply to the first
    assert await totals(campaignId="c1") == {
        "sent": 2,
        "received": 0,
        "failed": 0,
        "floodWaits": 0,
        "repliesReceived": 1,
        "replyRate": 0.5,
        "failedAttempts": 0,
        "sentByOrigin": {"queue": 2, "automation": 0, "external": 0},
        "receivedByOrigin": {"people": 0, "fleet": 0},
    }
    private = await totals(chatKind="private")
    assert (private["sent"], private["received"], private["failed"], private["floodWaits"]) == (3, 5, 1, 0)
    assert private["repliesReceived"] == 2
    group = await totals(chatKind="group")
    assert (group["sent"], group["received"], group["repliesReceived"]) == (1, 1, 0)
    a2 = await totals(accountId="a2")
    assert (a2["sent"], a2["received"], a2["failed"], a2["floodWaits"], a2["repliesReceived"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    chat = await totals(chatId=101)
    assert (chat["sent"], chat["received"], chat["repliesReceived"]) == (1, 2, 1)
    none = await totals(accountId="nobody")
    assert none["sent"] == 0 and none["replyRate"] is None


async def test_dashboard(loaded) -> None:
    data = await ok(loaded, A.GetDashboardStats, WINDOW)
    assert data["accounts"] == {"total": 2, "byState": {"active": 1, "flood_wait": 1}, "connected": 2}
    assert data["messages"]["sent"] == 4 and data["messages"]["repliesReceived"] == 2
    assert data["leads"] == {"new": 3, "total": 4, "converted": 2}
    assert data["ai"] == {"replies": 2, "tokens": 0, "handoffs": 1}
    assert (data["groupsJoined"], data["membersExtracted"]) == (1, 25)
    assert [(b["sent"], b["received"], b["failed"], b["newLeads"]) for b in data["buckets"]] == [
        (2, 2, 1, 2),
        (2, 0, 0, 0),
        (0, 4, 1, 1),
    ]
    assert data["window"]["bucket"] == "hour"


async def test_user_stats(loaded) -> None:
    data = await ok(loaded, A.GetUserStats, {**WINDOW, "bucket": "hour"})
    assert data["totals"] == {
        "newUsers": 4,
        "activeUsers": 4,
        "repliedUsers": 2,
        "optedOut": 1,
        "blacklisted": 1,
        "collected": 25,
    }
    assert data["bySource"] == {"campaign": 2, "outbound": 1, "inbound": 1}
    assert [(b["newUsers"], b["activeUsers"], b["repliedUsers"]) for b in data["buckets"]] == [
        (2, 1, 1),
        (1, 0, 0),
        (1, 3, 1),
    ]
    c1 = (await ok(loaded, A.GetUserStats, {**WINDOW, "campaignId": "c1"}))["totals"]
    assert (c1["newUsers"], c1["repliedUsers"], c1["activeUsers"]) == (2, 1, 0)


async def test_group_stats(loaded) -> None:
    data = await ok(loaded, A.GetGroupStats, {**WINDOW, "bucket": "hour"})
    assert data["totals"] == {
        "groupsWatched": 3,
        "groupsJoined": 1,
        "groupsLeft": 1,
        "messages": 1,
        "keywordMatches": 1,
        "leads": 1,
        "membersJoined": 1,
    }
    assert data["groups"] == [
        {
            "chatId": -500,
            "title": "Sales",
            "messages": 1,
            "activeUsers": 1,
            "keywordMatches": 1,
            "leads": 1,
            "membersJoined": 1,
        }
    ]
    assert [
        (b["messages"], b["keywordMatches"], b["leads"], b["membersJoined"]) for b in data["buckets"]
    ] == [
        (0, 0, 0, 0),
        (0, 0, 0, 1),
        (1, 1, 1, 0),
    ]
    other = await ok(loaded, A.GetGroupStats, {**WINDOW, "chatIds": [-999]})
    assert other["groups"] == [] and other["totals"]["messages"] == 0 and other["totals"]["leads"] == 0


async def test_conversion_funnel(loaded) -> None:
    data = await ok(loaded, A.GetConversionStats, {**WINDOW, "bucket": "hour"})
    assert [(s["stage"], s["count"], s["rateFromPrevious"]) for s in data["stages"]] == [
        ("new", 3, None),
        ("contacted", 2, 0.6667),
        ("replied", 1, 0.5),
        ("follow_up", 1, 1.0),
        ("closed_won", 1, 1.0),
        ("closed_lost", 1, None),
    ]
    assert (data["leads"], data["converted"], data["conversionRate"]) == (3, 1, 0.3333)
    assert data["avgHoursToConvert"] == 2.0
    assert [(b["leads"], b["contacted"], b["replied"], b["converted"]) for b in data["buckets"]] == [
        (2, 2, 1, 0),
        (0, 0, 0, 1),
        (1, 0, 0, 1),
    ]
    assert data["byCampaign"] == [{"campaignId": "c1", "leads": 2, "converted": 1, "conversionRate": 0.5}]
    keyword = await ok(loaded, A.GetConversionStats, {**WINDOW, "source": "keyword"})
    assert (keyword["leads"], keyword["converted"]) == (1, 0)
    by_chat = await ok(loaded, A.GetConversionStats, {**WINDOW, "chatId": -500})
    assert by_chat["leads"] == 1  # L1, captured in the group -500 (through its keyword match)


async def test_get_analytics_every_metric_and_grouping(loaded) -> None:
    metrics = list(A.MetricName.__args__)  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for i in range(0, len(metrics), 10):
        data = await ok(loaded, A.GetAnalytics, {**WINDOW, "bucket": "hour", "metrics": metrics[i : i + 10]})
        for s in data["series"]:
            assert s["key"] is None and len(s["points"]) == 3
            totals[s["metric"]] = s["total"]
    assert set(totals) == set(metrics)
    assert totals == {
        "messages_sent": 4,
        "messages_received": 6,
        "messages_failed": 2,
        "replies_received": 2,
        "flood_waits": 1,
        "flood_wait_seconds": 30,
        "logins": 0,
        "login_failures": 0,
        "account_state_changes": 1,
        "group_joins": 1,
        "group_leaves": 1,
        "members_joined": 1,
        "members_extracted": 25,
        "keyword_matches": 1,
        "leads_created": 3,
        "leads_converted": 2,
        "new_users": 4,
        "active_users": 4,
        "ai_replies": 2,
        "ai_tokens": 0,
        "alerts_raised": 0,
        # automation figures: the scenario has no trigger rules or campaigns (test_stats_automation.py)
        "triggers_fired": 0,
        "triggers_skipped": 0,
        "trigger_errors": 0,
        "trigger_leads": 0,
        "ai_suggestions": 0,
        "campaigns_started": 0,
        "campaigns_completed": 0,
    }
    grouped = await ok(
        loaded,
        A.GetAnalytics,
        {**WINDOW, "metrics": ["messages_sent", "replies_received"], "groupBy": "account"},
    )
    assert [(s["metric"], s["key"], s["total"]) for s in grouped["series"]] == [
        ("messages_sent", "a1", 3),
        ("messages_sent", "a2", 1),
        ("replies_received", "a1", 1),
        ("replies_received", "a2", 1),
    ]
    top = await ok(
        loaded, A.GetAnalytics, {**WINDOW, "metrics": ["messages_sent"], "groupBy": "account", "top": 1}
    )
    assert [(s["key"], s["total"]) for s in top["series"]] == [("a1", 3)]
    by_campaign = await ok(
        loaded,
        A.GetAnalytics,
        {**WINDOW, "metrics": ["messages_sent", "replies_received"], "groupBy": "campaign"},
    )
    assert [(s["metric"], s["key"], s["total"]) for s in by_campaign["series"]] == [
        ("messages_sent", "c1", 2),
        ("replies_received", "c1", 1),
    ]
    by_service = await ok(
        loaded, A.GetAnalytics, {**WINDOW, "metrics": ["messages_sent"], "groupBy": "service"}
    )
    assert [(s["key"], s["total"]) for s in by_service["series"]] == [("tg-session", 4)]
    by_chat = await ok(
        loaded,
        A.GetAnalytics,
        {**WINDOW, "metrics": ["messages_received"], "groupBy": "chat", "accountId": "a2"},
    )
    assert [(s["key"], s["total"]) for s in by_chat["series"]] == [("103", 1)]


async def test_day_buckets_in_a_zone_and_empty_days(client) -> None:
    # 2026-03-29: Europe/Berlin springs forward, so that local day lasts 23 hours.
    since = datetime(2026, 3, 27, 23, tzinfo=UTC)  # 2026-03-28 00:00 Berlin
    until = datetime(2026, 3, 30, 22, tzinfo=UTC)  # 2026-03-31 00:00 Berlin
    evts = [
        ts.MessageSent(
            account_id="a1",
            chat_kind="private",
            chat_id=5,
            message_id=i,
            sent_at=t,
            occurred_at=t,
        )
        for i, t in enumerate(
            [datetime(2026, 3, 28, 22, 30, tzinfo=UTC), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)]
        )
    ]
    await publish(client, *evts)
    req = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket": "day",
        "timezone": "Europe/Berlin",
    }
    data = await ok(client, A.GetMessageStats, req)
    assert [(b["start"], b["sent"]) for b in data["buckets"]] == [
        ("2026-03-27T23:00:00Z", 1),  # 22:30 UTC on the 28th is 23:30 CET: still the 28th
        ("2026-03-28T23:00:00Z", 0),  # the 29th, 23 hours long, with nothing: a zero, not a gap
        ("2026-03-29T22:00:00Z", 1),  # 22:00 UTC on the 29th is 00:00 CEST on the 30th
    ]
    assert data["totals"]["sent"] == 2


async def test_duplicates_and_out_of_order_events_change_nothing(client) -> None:
    evt = sent("a1", 5, 10)
    await publish(client, evt, evt, evt)
    # the account's later state arrives before its earlier one, and both twice
    late = ts.AccountStatusChanged(account_id="a9", state=AccountState.BANNED, **at(20))
    early = ts.AccountStatusChanged(account_id="a9", state=AccountState.ACTIVE, **at(10))
    await publish(client, late, early, late, early)
    data = await ok(client, A.GetDashboardStats, WINDOW)
    assert data["messages"]["sent"] == 1
    assert data["accounts"]["byState"] == {"banned": 1}
    kinds = sorted([d["k"] async for d in client.runtime.db[FACTS].find({"k": {"$ne": "alert"}})])
    assert kinds == ["sent", "state_change", "state_change"]  # (the alerts feature may raise one too)


async def test_general_timezone_from_the_gateways_settings_events(client) -> None:
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(days=2)).isoformat(), "bucket": "day"}
    data = await ok(client, A.GetMessageStats, window)
    assert data["window"]["timezone"] == "UTC"  # no gateway here: UTC
    await publish(
        client, sy.SettingsChanged(section="general", version=2, values={"timezone": "Asia/Taipei"})
    )
    await publish(
        client, sy.SettingsChanged(section="general", version=1, values={"timezone": "Europe/Paris"})
    )
    data = await ok(client, A.GetMessageStats, window)
    assert data["window"]["timezone"] == "Asia/Taipei"  # the older version came late and lost
    assert data["buckets"][0]["start"].endswith("T16:00:00Z")  # local midnight in Taipei (UTC+8)
    explicit = await ok(client, A.GetMessageStats, {**window, "timezone": "UTC"})
    assert explicit["window"]["timezone"] == "UTC"  # the request's zone wins


async def test_bad_input_is_a_validation_error(client) -> None:
    t = T0.isoformat()
    await err(client, A.GetMessageStats, {"since": t, "until": t}, "VALIDATION_ERROR")
    future = (NOW + timedelta(days=2)).isoformat()
    await err(client, A.GetDashboardStats, {"since": future}, "VALIDATION_ERROR")
    await err(client, A.GetUserStats, {**WINDOW, "timezone": "Mars/Olympus"}, "VALIDATION_ERROR")
    long = {"since": (T0 - timedelta(days=100)).isoformat(), "until": t, "bucket": "hour"}
    await err(client, A.GetAnalytics, {**long, "metrics": ["messages_sent"]}, "VALIDATION_ERROR")
    await err(client, A.GetAnalytics, {**WINDOW, "metrics": []}, "VALIDATION_ERROR")
    await err(client, A.GetAnalytics, {**WINDOW, "metrics": ["bogus"]}, "VALIDATION_ERROR")
    await err(client, A.GetGroupStats, {**WINDOW, "top": 0}, "VALIDATION_ERROR")


async def test_alert_counts_and_retention(client) -> None:
    db = client.runtime.db
    await db["alerts"].insert_many(
        [
            {"_id": "x1", "level": "critical", "dismissed": False, "fold_key": "k1"},
            {"_id": "x2", "level": "warning", "dismissed": False, "fold_key": "k2"},
            {"_id": "x3", "level": "critical", "dismissed": True, "fold_key": "k3"},
        ]
    )
    data = await ok(client, A.GetDashboardStats, {})
    assert (data["unresolvedAlerts"], data["criticalAlerts"]) == (2, 1)
    old = NOW - timedelta(days=10)
    await publish(
        client,
        sent("a1", 5, 0),
        ts.MessageSent(
            account_id="a1", chat_kind="private", chat_id=6, message_id=1, sent_at=old, occurred_at=old
        ),
        cp.LeadCaptured(lead_id="old", source_type="manual", occurred_at=old),
    )
    assert client.runtime.settings_store is not None
    await client.runtime.settings_store.save("analytics", {"eventRetentionDays": 7}, None)
    days = (await client.runtime.settings_section("analytics")).event_retention_days
    removed = await sweep(db, days)
    assert removed == {"facts": 1, "leads": 1, "jobs": 0, "campaigns": 0}
    assert await db[FACTS].count_documents({}) == 1 and await db[LEADS].count_documents({}) == 0
