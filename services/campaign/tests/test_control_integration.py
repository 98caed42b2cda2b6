"""Pause, resume and clear by scope; queue status and progress; replicas sharing the queue; claims of
a dead replica returning to the queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from tgm_campaign.messaging.clock import utc
from tgm_contracts.commands import messaging as M

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def count_states(docs):
    return Counter(d["state"] for d in docs)


async def test_pause_resume_and_clear_by_scope(campaign) -> None:
    await campaign.data(M.PauseQueue, {"scope": "campaign", "campaignId": "spring"})
    paused_acct = await campaign.data(
        M.PauseQueue, {"scope": "account", "accountId": "acct1", "reason": "check"}
    )
    assert paused_acct["paused"] and {p["scope"] for p in paused_acct["pauses"]} == {"campaign", "account"}
    await campaign.data(
        M.QueueMessage,
        {"text": "a", "recipients": [{"peer": 100 + i} for i in range(3)], "campaignId": "spring"},
    )
    await campaign.data(
        M.QueueMessage,
        {"text": "b", "recipients": [{"peer": 200 + i} for i in range(2)], "accountId": "acct1"},
    )
    await campaign.data(M.QueueMessage, {"text": "c", "recipients": [{"peer": 300}], "accountId": "acct0"})
    await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 1)
    later = datetime.now(UTC) + timedelta(hours=2)
    await campaign.data(
        M.QueueMessage,
        {"text": "d", "recipients": [{"peer": 400}], "notBefore": later.isoformat(), "campaignId": "spring"},
    )
    status = await campaign.data(
        M.GetQueueStatus, {"campaignId": "spring", "includeJobs": True, "states": ["scheduled"]}
    )
    assert status["totals"]["pending"] == 3 and status["totals"]["scheduled"] == 1
    assert [j["peer"] for j in status["jobs"]["items"]] == [400]
    assert status["campaigns"][0]["paused"] is True
    cleared = await campaign.data(
        M.ClearQueue, {"confirm": True, "scope": "campaign", "campaignId": "spring", "states": ["pending"]}
    )
    assert cleared["cancelled"] == 3
    docs = await campaign.rt.db["jobs"].find({"campaign_id": "spring"}).to_list()
    assert count_states(docs) == Counter({"cancelled": 3, "scheduled": 1})
    assert all(d["reason"] == "cleared" for d in docs if d["state"] == "cancelled")
    await campaign.data(M.ResumeQueue, {"scope": "account", "accountId": "acct1"})
    await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 3)
    assert {d.peer for d in campaign.fleet.deliveries} == {300, 200, 201}
    r = await campaign.call(M.PauseQueue, {"scope": "account"})
    assert r["error"]["code"] == "VALIDATION_ERROR"
    evt = await campaign.wait_event(lambda e: e["_subject"].endswith("queue-cleared.v1"))
    assert evt["cancelled"] == 3


async def test_clear_never_touches_jobs_in_flight(campaign) -> None:
    campaign.fleet.latency = 1.0
    await campaign.data(
        M.QueueMessage,
        {"text": "x", "recipients": [{"peer": 500 + i} for i in range(4)], "accountId": "acct0"},
    )
    await campaign.wait_jobs(lambda d: count_states(d)["in_flight"] == 1)
    cleared = await campaign.data(M.ClearQueue, {"confirm": True, "scope": "account", "accountId": "acct0"})
    assert cleared == {"cancelled": 3, "inFlightUntouched": 1}
    docs = await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 1)
    assert count_states(docs) == Counter({"sent": 1, "cancelled": 3})


async def test_timed_pause_ends_by_itself(campaign) -> None:
    until = datetime.now(UTC) + timedelta(seconds=2)
    await campaign.data(M.PauseQueue, {"scope": "all", "until": until.isoformat()})
    out = await campaign.data(M.SendMessage, {"peer": 601, "text": "x", "waitSeconds": 1})
    assert out["state"] == "pending"
    docs = await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 1, timeout=15)
    assert docs[0]["sent_at"] >= until - timedelta(milliseconds=5)
    await campaign.wait_event(
        lambda e: e["_subject"].endswith("queue-pause-changed.v1") and e["paused"] is False
    )


async def test_status_progress_and_metrics(campaign) -> None:
    await campaign.data(M.QueueMessage, {"text": "x", "recipients": [{"peer": 700 + i} for i in range(6)]})
    await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 6)
    status = await campaign.data(M.GetQueueStatus, {"includeJobs": True, "limit": 4})
    assert status["totals"]["sent"] == 6 and status["sendsLastMinute"] == 6
    assert {a["accountId"] for a in status["accounts"]} == {"acct0", "acct1", "acct2"}
    assert sum(a["sent"] for a in status["accounts"]) == 6 and all(
        a["sentToday"] >= 1 for a in status["accounts"]
    )
    page2 = await campaign.data(
        M.GetQueueStatus, {"includeJobs": True, "limit": 4, "cursor": status["jobs"]["nextCursor"]}
    )
    ids = [j["jobId"] for j in status["jobs"]["items"] + page2["jobs"]["items"]]
    assert len(ids) == 6 == len(set(ids)) and page2["jobs"]["nextCursor"] is None
    progress = await campaign.wait_event(lambda e: e["_subject"].endswith("queue-progress.v1"), timeout=15)
    assert "totals" in progress
    text = generate_latest(campaign.rt.registry).decode()
    assert 'tgm_campaign_dispatch_total{outcome="sent"} 6.0' in text
    assert "tgm_campaign_jobs{" in text and "tgm_campaign_send_seconds_count 6.0" in text


async def test_two_replicas_never_dispatch_the_same_job(campaign) -> None:
    second = await campaign.replica("campaign-t2")
    second.app.scheduler.send_timeout = 2.0
    await campaign.settings("pacing", {"perAccountPerMinute": 60}, rt=second)
    campaign.fleet.latency = 0.02
    out = await campaign.data(
        M.QueueMessage, {"text": "x", "recipients": [{"peer": 800 + i} for i in range(60)]}
    )
    assert out["created"] == 60
    await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 60, timeout=60)
    per_job = Counter(a[1] for a in campaign.fleet.attempts)
    assert set(per_job.values()) == {1}  # each job handed to tg-session exactly once
    assert len(campaign.fleet.deliveries) == 60
    owners = Counter(
        h["account_id"] for d in await campaign.rt.db["jobs"].find({}).to_list() for h in d["history"]
    )
    assert sum(owners.values()) == 60
    first = campaign.rt.app.scheduler
    assert first.rounds > 0 and second.app.scheduler.rounds > 0


async def test_claims_of_a_dead_replica_return_to_the_queue_pinned_to_their_account(campaign) -> None:
    # A job a dead replica had claimed and handed to acct2 (which delivered it).
    now = datetime.now(UTC)
    await campaign.data(M.PauseQueue, {"scope": "all"})
    out = await campaign.data(M.SendMessage, {"peer": 901, "text": "once", "waitSeconds": 0})
    job = await campaign.rt.db["jobs"].find_one({"_id": out["jobId"]})
    await campaign.rt.db["jobs"].update_one(
        {"_id": job["_id"]},
        {
            "$set": {
                "state": "in_flight",
                "account_id": "acct2",
                "pinned": True,
                "text": "once",
                "attempts": 1,
                "claim": {
                    "owner": "campaign-dead:1",
                    "replica": "campaign-dead",
                    "token": "t",
                    "until": utc(now.timestamp() + 1),
                },
            }
        },
    )
    from tgm_contracts.rpc_session import SendRequest

    first = await campaign.rt.request(
        "tgm.acct.acct2.send.v1",
        SendRequest(job_id=job["_id"], peer=901, text="once").model_dump(by_alias=True),
        __import__("tgm_contracts.rpc_session", fromlist=["SendResult"]).SendResult,
    )
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    docs = await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 1, timeout=20)
    assert docs[0]["message_id"] == first.message_id and docs[0]["account_id"] == "acct2"
    assert [h["outcome"] for h in docs[0]["history"]][-2:] == ["requeued", "sent"]
    assert len(campaign.fleet.deliveries) == 1
    assert [a[2] for a in campaign.fleet.attempts] == ["sent", "duplicate"]


async def test_a_restarted_replica_takes_back_its_own_claims_at_once(campaign) -> None:
    await campaign.data(M.PauseQueue, {"scope": "all"})
    out = await campaign.data(M.SendMessage, {"peer": 902, "text": "x", "waitSeconds": 0})
    await campaign.rt.db["jobs"].update_one(
        {"_id": out["jobId"]},
        {
            "$set": {
                "state": "in_flight",
                "account_id": "acct1",
                "pinned": True,
                "text": "x",
                "attempts": 1,
                "claim": {
                    "owner": "campaign-t:old",
                    "replica": "campaign-t",
                    "token": "t",
                    "until": utc(datetime.now(UTC).timestamp() + 3600),
                },
            }
        },
    )
    n = await campaign.m.scheduler.recover_own_claims()
    assert n == 1
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    docs = await campaign.wait_jobs(lambda d: count_states(d)["sent"] == 1)
    assert docs[0]["account_id"] == "acct1"
    await asyncio.sleep(0)
