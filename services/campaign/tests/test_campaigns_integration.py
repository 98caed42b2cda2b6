"""Automation campaigns against a real nats-server and database, with FakeFleet as tg-session: the
audience resolved once per recipient, steps through messaging's queue (blacklisted and opted-out
recipients skipped there), stop / restart / remove, the schedule window, the daily limit, a crash
between enqueue and bookkeeping, and stats that equal the jobs and the fleet's deliveries."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_contracts.commands import automation as A
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def iso(at: datetime) -> str:
    return at.isoformat()


async def add_leads(campaign: Any, n: int, base: int, tags: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        lead = await campaign.data(
            CRM.AddLead, {"userId": base + i, "firstName": f"L{i}", "tags": tags, "sourceType": "manual"}
        )
        out.append(lead)
    return out


async def status_event(campaign: Any, cid: str, status: str, timeout: float = 30) -> dict[str, Any]:
    return await campaign.wait_event(
        lambda e: (
            e.get("campaignId") == cid
            and e["_subject"].endswith("campaign-state-changed.v1")
            and e.get("status") == status
        ),
        timeout,
    )


def deliveries_to(campaign: Any) -> Counter[Any]:
    return Counter(d.peer for d in campaign.fleet.deliveries)


async def stats_of(campaign: Any, cid: str, **extra: Any) -> dict[str, Any]:
    report = await campaign.data(A.GetCampaignStats, {"campaignId": cid, **extra})
    assert len(report["items"]) == 1
    item: dict[str, Any] = report["items"][0]
    return item


async def test_campaign_reaches_its_audience_once_and_its_stats_equal_the_deliveries(campaign: Any) -> None:
    leads = await add_leads(campaign, 12, 5000, ["vip"])
    await add_leads(campaign, 3, 6000, ["other"])  # not in the audience
    # one blacklisted lead, one opted-out peer, one peer that is also a lead (one target, not two)
    await campaign.data(CRM.BlacklistUser, {"userId": 5000, "reason": "test"})
    await campaign.m.compliance.opted_out(7001, "acct0", "STOP", ["id:7001"])
    peers = [7000, 7001, 7002, 5003]
    cmp = await campaign.data(
        A.AddCampaign,
        {
            "name": "Spring promo",
            "audience": {"leadTags": ["vip"], "peers": peers},
            "steps": [{"text": "{Hi|Hello}, spring offer"}],
            "accountId": "acct1",
        },
    )
    assert cmp["status"] == "draft" and cmp["counters"]["targets"] == 0
    cid = cmp["id"]
    started = await campaign.data(A.StartCampaign, {"campaignId": cid})
    assert started["status"] == "running"
    await status_event(campaign, cid, "completed")
    expected = {lead["userId"] for lead in leads} | {7000, 7001, 7002}
    assert len(expected) == 15
    got = deliveries_to(campaign)
    assert set(got) == expected - {5000, 7001}, sorted(got)
    assert set(got.values()) == {1}  # exactly once each
    assert {d.account_id for d in campaign.fleet.deliveries} == {"acct1"}
    jobs = await campaign.rt.db["jobs"].find({"campaign_id": cid}).to_list()
    assert len(jobs) == 15 and all(j["key"].startswith(f"cmp:{cid}:") for j in jobs)
    item = await stats_of(campaign, cid, byDay=True)
    c = item["counters"]
    assert (c["targets"], c["sent"], c["skipped"], c["failed"], c["queued"]) == (15, 13, 2, 0, 0)
    assert item["skippedByReason"] == {"blacklisted": 1, "opted_out": 1}
    assert item["status"] == "completed"
    assert [s["step"] for s in item["byStep"]] == [0] and item["byStep"][0]["sent"] == 13
    per_account = Counter(d.account_id for d in campaign.fleet.deliveries)
    assert {a["accountId"]: a["sent"] for a in item["byAccount"]} == dict(per_account)
    assert sum(d["sent"] for d in item["byDay"]) == 13
    page = await campaign.data(A.GetCampaigns, {"statuses": ["completed"]})
    assert [v["id"] for v in page["items"]] == [cid] and page["items"][0]["counters"]["sent"] == 13
    assert (await campaign.m.campaigns.counts()).model_dump() == {"total": 1, "active": 0}
    progress = [e for e in campaign.events if e["_subject"].endswith("campaign-progress.v1")]
    assert progress and progress[-1]["campaignId"] == cid and progress[-1]["sent"] <= 13


async def test_later_steps_wait_their_delay_and_stop_once_the_lead_replied(campaign: Any) -> None:
    a, b = await add_leads(campaign, 2, 8000, ["seq"])
    cmp = await campaign.data(
        A.AddCampaign,
        {
            "name": "Two steps",
            "audience": {"leadIds": [a["id"], b["id"]]},
            "steps": [
                {"text": "step one"},
                {"text": "step two", "delaySeconds": 3, "stopIfReplied": True},
            ],
        },
    )
    cid = cmp["id"]
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    await campaign.wait_jobs(lambda d: sum(j["state"] == "sent" for j in d) == 2)
    # a replies (the CRM keeps last_replied_at from their private message)
    await campaign.rt.db["leads"].update_one(
        {"_id": a["id"]}, {"$set": {"last_replied_at": datetime.now(UTC) + timedelta(milliseconds=50)}}
    )
    await status_event(campaign, cid, "completed")
    texts = [(d.peer, d.text) for d in campaign.fleet.deliveries]
    assert sorted(texts) == sorted([(8000, "step one"), (8001, "step one"), (8001, "step two")])
    jobs = await campaign.rt.db["jobs"].find({"campaign_id": cid}).sort("created_at", 1).to_list()
    second = [j for j in jobs if j["key"].endswith(":1")]
    assert len(second) == 1
    firsts = [j for j in jobs if j["key"].endswith(":0") and j["peer"] == 8001]
    gap = (second[0]["created_at"] - firsts[0]["sent_at"]).total_seconds()
    assert gap >= 2.9, gap  # the step's delay runs from the previous step's send
    item = await stats_of(campaign, cid)
    assert item["counters"]["sent"] == 3 and item["counters"]["replied"] == 1
    assert {s["step"]: (s["sent"], s["replied"]) for s in item["byStep"]} == {0: (2, 1), 1: (1, 0)}
    assert item["replyRate"] == 0.5
    target = await campaign.rt.db["campaign_targets"].find_one({"lead_id": a["id"]})
    assert target["outcome"] == "replied"


async def test_stop_cancels_what_waits_and_start_resumes_without_a_duplicate(campaign: Any) -> None:
    peers = [9100 + i for i in range(8)]
    cmp = await campaign.data(
        A.AddCampaign, {"name": "Stop me", "audience": {"peers": peers}, "steps": [{"text": "hello"}]}
    )
    cid = cmp["id"]
    await campaign.data(M.PauseQueue, {"scope": "campaign", "campaignId": cid})
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    await campaign.wait_jobs(lambda d: sum(j.get("campaign_id") == cid for j in d) == 8)
    stopped = await campaign.data(A.StopCampaign, {"campaignId": cid})
    assert stopped["status"] == "stopped" and stopped["counters"]["cancelled"] == 8
    assert not campaign.fleet.deliveries
    await campaign.data(M.ResumeQueue, {"scope": "campaign", "campaignId": cid})
    again = await campaign.data(A.StartCampaign, {"campaignId": cid})
    assert again["status"] == "running"
    await status_event(campaign, cid, "completed")
    got = deliveries_to(campaign)
    assert set(got) == set(peers) and set(got.values()) == {1}
    item = await stats_of(campaign, cid)
    assert item["counters"]["sent"] == 8 and item["counters"]["cancelled"] == 8
    # starting a completed campaign again sends nothing new (every target is done)
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    await status_event(campaign, cid, "completed")
    assert sum(deliveries_to(campaign).values()) == 8


async def test_a_crash_between_enqueue_and_bookkeeping_makes_no_second_job(campaign: Any) -> None:
    peers = [9300 + i for i in range(30)]
    cmp = await campaign.data(
        A.AddCampaign, {"name": "Crashy", "audience": {"peers": peers}, "steps": [{"text": "once"}]}
    )
    cid = cmp["id"]
    store = campaign.m.campaigns.store
    real = store.update_target
    crashes = {"n": 0}

    async def crash_once(target: Any, set_: Any) -> bool:
        if "job_id" in set_ and set_["job_id"] and crashes["n"] == 0:
            crashes["n"] += 1
            raise RuntimeError("killed after the enqueue, before the bookkeeping")
        return await real(target, set_)

    store.update_target = crash_once
    try:
        await campaign.data(A.StartCampaign, {"campaignId": cid})
        await status_event(campaign, cid, "completed")
    finally:
        store.update_target = real
    assert crashes["n"] == 1
    jobs = await campaign.rt.db["jobs"].find({"campaign_id": cid}).to_list()
    assert len(jobs) == 30 and len({j["key"] for j in jobs}) == 30
    got = deliveries_to(campaign)
    assert set(got) == set(peers) and set(got.values()) == {1}


async def test_schedule_window_starts_by_itself_and_its_end_cancels_the_rest(campaign: Any) -> None:
    now = datetime.now(UTC)
    cmp = await campaign.data(
        A.AddCampaign,
        {
            "name": "Window",
            "audience": {"peers": [9500, 9501, 9502]},
            "steps": [{"text": "in the window"}],
            "startAt": iso(now + timedelta(seconds=2)),
            "endAt": iso(now + timedelta(seconds=6)),
        },
    )
    cid = cmp["id"]
    assert cmp["status"] == "scheduled"
    assert (await campaign.m.campaigns.counts()).active == 1
    await campaign.data(M.PauseQueue, {"scope": "campaign", "campaignId": cid})  # nothing goes out
    running = await status_event(campaign, cid, "running", 15)
    assert running["previousStatus"] == "scheduled"
    await campaign.wait_jobs(lambda d: sum(j.get("campaign_id") == cid for j in d) == 3)
    done = await status_event(campaign, cid, "completed", 20)
    assert done["reason"] == "endAt reached"
    jobs = await campaign.rt.db["jobs"].find({"campaign_id": cid}).to_list()
    assert {(j["state"], j["reason"]) for j in jobs} == {("cancelled", "campaign_stopped")}
    refused = await campaign.call(A.StartCampaign, {"campaignId": cid})
    assert not refused["ok"] and refused["error"]["code"] == "VALIDATION_ERROR"


async def test_daily_limit_holds_the_rest_for_tomorrow(campaign: Any) -> None:
    cmp = await campaign.data(
        A.AddCampaign,
        {
            "name": "Capped",
            "audience": {"peers": [9600 + i for i in range(6)]},
            "steps": [{"text": "capped"}],
            "dailyLimit": 4,
        },
    )
    cid = cmp["id"]
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    await campaign.wait_jobs(
        lambda d: sum(j["state"] == "sent" and j.get("campaign_id") == cid for j in d) == 4
    )
    # several more rounds: still four
    for _ in range(3):
        await campaign.m.campaigns.tick()
    assert await campaign.rt.db["jobs"].count_documents({"campaign_id": cid}) == 4
    view = (await campaign.data(A.GetCampaigns, {"search": "capp"}))["items"][0]
    assert view["status"] == "running" and view["counters"]["targets"] == 6 and view["counters"]["sent"] == 4


async def test_definitions_are_validated_redefined_and_removed(campaign: Any) -> None:
    bad = await campaign.call(
        A.AddCampaign,
        {"name": "x", "audience": {"peers": [1]}, "steps": [{"templateId": "tmissing"}]},
    )
    assert not bad["ok"] and bad["error"]["code"] == "NOT_FOUND"
    bad = await campaign.call(
        A.AddCampaign, {"name": "x", "audience": {"peers": [1]}, "steps": [{"text": "{oops"}]}
    )
    assert not bad["ok"] and bad["error"]["code"] == "VALIDATION_ERROR"
    bad = await campaign.call(A.AddCampaign, {"name": "x", "audience": {}, "steps": [{"text": "a"}]})
    assert not bad["ok"] and bad["error"]["code"] == "VALIDATION_ERROR"
    bad = await campaign.call(A.StartCampaign, {"campaignId": "cmp_nope"})
    assert not bad["ok"] and bad["error"]["code"] == "NOT_FOUND"
    peers = [9700 + i for i in range(5)]
    cmp = await campaign.data(
        A.AddCampaign, {"name": "Doomed", "audience": {"peers": peers}, "steps": [{"text": "v1"}]}
    )
    cid = cmp["id"]
    redefined = await campaign.data(
        A.AddCampaign, {"id": cid, "name": "Doomed", "audience": {"peers": peers}, "steps": [{"text": "v2"}]}
    )
    assert redefined["id"] == cid and redefined["steps"][0]["text"] == "v2"
    await campaign.data(M.PauseQueue, {"scope": "campaign", "campaignId": cid})
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    busy = await campaign.call(
        A.AddCampaign, {"id": cid, "name": "Doomed", "audience": {"peers": peers}, "steps": [{"text": "v3"}]}
    )
    assert not busy["ok"] and busy["error"]["code"] == "CONFLICT"
    await campaign.wait_jobs(lambda d: sum(j.get("campaign_id") == cid for j in d) == 5)
    ack = await campaign.data(A.RemoveCampaign, {"id": cid})
    # the definition and the waiting jobs (a runner round that ran meanwhile may cancel some first)
    assert 1 <= ack["affected"] <= 6
    assert await campaign.rt.db["campaigns"].count_documents({"_id": cid}) == 0
    jobs = await campaign.rt.db["jobs"].find({"campaign_id": cid}).to_list()
    assert len(jobs) == 5 and {j["state"] for j in jobs} == {"cancelled"}  # history stays
    gone = await campaign.call(A.GetCampaignStats, {"campaignId": cid})
    assert not gone["ok"] and gone["error"]["code"] == "NOT_FOUND"
    assert await campaign.rt.db["campaign_targets"].count_documents({"campaign_id": cid}) == 0


async def test_lead_followup_takes_in_leads_captured_while_it_runs(campaign: Any, monkeypatch: Any) -> None:
    from tgm_campaign.automation import campaign_runner

    monkeypatch.setattr(campaign_runner, "FOLLOW_SECONDS", 0.5)
    await add_leads(campaign, 2, 9800, ["hot"])
    cmp = await campaign.data(
        A.AddCampaign,
        {
            "name": "Follow-up",
            "type": "lead_followup",
            "audience": {"leadTags": ["hot"], "includeNewLeads": True},
            "steps": [{"text": "thanks for your interest"}],
        },
    )
    cid = cmp["id"]
    await campaign.data(A.StartCampaign, {"campaignId": cid})
    await campaign.wait_jobs(
        lambda d: sum(j["state"] == "sent" and j.get("campaign_id") == cid for j in d) == 2
    )
    await add_leads(campaign, 1, 9900, ["hot"])  # captured while it runs
    await campaign.wait_jobs(
        lambda d: sum(j["state"] == "sent" and j.get("campaign_id") == cid for j in d) == 3
    )
    assert set(deliveries_to(campaign)) == {9800, 9801, 9900}
    view = (await campaign.data(A.GetCampaigns, {"type": "lead_followup"}))["items"][0]
    assert view["status"] == "running" and view["counters"]["targets"] == 3  # runs until stopped
    stopped = await campaign.data(A.StopCampaign, {"campaignId": cid})
    assert stopped["status"] == "stopped" and stopped["counters"]["sent"] == 3
