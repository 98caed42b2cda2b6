"""Ad campaigns against a real nats-server and database, with FakeFleet as tg-session: runs become
group posts through messaging's queue (one per target, keyed per run), accounts rotate per run, a
group that bans the account fails that post with its reason (and the next run gives the group to
another account), slow mode waits Telegram's time once, the group interval skips a group, a redone
queuing makes no second job, stop cancels what waits, stats equal the fleet's deliveries, previews
and the template list; bad input is refused with a clear error."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_contracts.commands import ads as AD
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_session import MessageReceived

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHATS = [-1001001, -1001002, -1001003, -1001004]
NOW = datetime.now(UTC).isoformat()  # a `once` run at a past startAt runs at start
BANNED = CHATS[2]  # bans acct0
SLOW = CHATS[3]  # slow mode for acct0's first post


async def ad_template(campaign: Any, name: str, content: str, category: str = "ad") -> str:
    res = await campaign.data(M.AddTemplate, {"name": name, "category": category, "content": content})
    return str(res["template"]["id"])


async def run_event(campaign: Any, cid: str, run: int, timeout: float = 30) -> dict[str, Any]:
    return await campaign.wait_event(
        lambda e: (
            e["_subject"].endswith("ad-run-completed.v1") and e["adCampaignId"] == cid and e["run"] == run
        ),
        timeout,
    )


def posts(campaign: Any) -> list[Any]:
    return [d for d in campaign.fleet.deliveries if d.peer in CHATS]


async def test_runs_rotate_accounts_and_record_refusals_and_stats_equal_the_deliveries(campaign: Any) -> None:
    t1 = await ad_template(campaign, "ad-a", "{Hello|Hi} group, see our offer A")
    t2 = await ad_template(campaign, "ad-b", "Offer B is here")
    campaign.fleet.fail("USER_BANNED_IN_CHANNEL", count=100, account="acct0", peer=BANNED)
    campaign.fleet.fail("SLOWMODE_WAIT_1", count=1, account="acct0", peer=SLOW)
    created = await campaign.data(
        AD.CreateAdCampaign,
        {
            "name": "Spring ads",
            "templateIds": [t1, t2],
            "targets": [{"chat": c} for c in CHATS],
            "schedule": {"type": "once", "startAt": NOW},
            "accounts": {"accountIds": ["acct0", "acct1", "acct2"]},
            "accountStrategy": "rotate",
            "minGroupIntervalMinutes": 1,
        },
    )
    cid = created["id"]
    assert created["status"] == "draft" and created["counters"]["runs"] == 0

    shown = await campaign.data(AD.PreviewAd, {"adCampaignId": cid, "seed": 3})
    assert shown["targets"] == 4 and len(shown["posts"]) == 4
    assert {p["accountId"] for p in shown["posts"]} == {"acct0"}  # run 1 of a rotation: the first
    assert [p["templateId"] for p in shown["posts"]] == [t1, t2, t1, t2]  # sequential per post
    assert not posts(campaign)  # a preview sends nothing

    started = await campaign.data(AD.StartAdCampaign, {"id": cid})
    assert started["status"] == "running"
    done1 = await run_event(campaign, cid, 1)
    assert (done1["posted"], done1["failed"], done1["skipped"]) == (3, 1, 0)
    first = posts(campaign)
    assert Counter(d.peer for d in first) == Counter({CHATS[0]: 1, CHATS[1]: 1, SLOW: 1})
    assert {d.account_id for d in first} == {"acct0"}
    jobs = await campaign.m.ads.store.jobs.c.find({"campaign_id": cid}).to_list()
    banned = next(j for j in jobs if j["peer"] == BANNED)
    assert banned["state"] == "failed" and banned["reason"] == "chat_write_forbidden"
    slow = next(j for j in jobs if j["peer"] == SLOW)
    assert slow["state"] == "sent" and any(h.get("outcome") == "requeued" for h in slow["history"])
    completed = await campaign.wait_event(
        lambda e: (
            e.get("campaignId") == cid and e.get("kind") == "ad_campaign" and e.get("status") == "completed"
        )
    )
    assert completed["previousStatus"] == "running"

    # Run 2 (a `once` campaign started again): the next account; the groups posted in less than a
    # minute ago are skipped; the group that banned acct0 gets acct1.
    await campaign.data(AD.StartAdCampaign, {"id": cid})
    done2 = await run_event(campaign, cid, 2)
    assert (done2["posted"], done2["failed"], done2["skipped"]) == (1, 0, 3)
    second = posts(campaign)[len(first) :]
    assert [(d.account_id, d.peer) for d in second] == [("acct1", BANNED)]

    every = posts(campaign)
    assert len({(d.peer, d.job_id) for d in every}) == len(every)  # one delivery per job
    stats = await campaign.data(AD.GetAdStats, {"adCampaignId": cid})
    assert stats["totals"]["posted"] == len(every) == 4
    assert stats["totals"]["failedByReason"] == {"chat_write_forbidden": 1}
    assert stats["totals"]["skippedByReason"] == {"group_interval": 3}
    by_account = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "account"})
    fleet = Counter(d.account_id for d in every)
    assert {r["key"]: r["posted"] for r in by_account["rows"] if r["posted"]} == dict(fleet)
    by_template = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "template"})
    assert {r["key"]: r["label"] for r in by_template["rows"] if r["key"] != "none"} == {
        t1: "ad-a",
        t2: "ad-b",
    }
    by_group = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "group"})
    assert sum(r["posted"] for r in by_group["rows"]) == 4
    assert next(r for r in by_group["rows"] if r["key"] == f"id:{BANNED}")["failed"] == 1

    listed = await campaign.data(AD.GetAdCampaigns, {"templateId": t1})
    assert [c["id"] for c in listed["items"]] == [cid]
    assert listed["items"][0]["counters"] == {"runs": 2, "posted": 4, "failed": 1, "skipped": 3}
    tpls = await campaign.data(AD.GetAdTemplates, {})
    by_id = {t["id"]: t for t in tpls["items"]}
    assert by_id[t1]["adCampaignIds"] == [cid]
    assert by_id[t1]["posted"] + by_id[t2]["posted"] == 4

    # Delete: the definition goes, the history stays for the stats.
    assert (await campaign.data(AD.DeleteAdCampaign, {"id": cid}))["affected"] == 1
    after = await campaign.data(AD.GetAdStats, {})
    assert after["totals"]["posted"] == 4
    gone = await campaign.call(AD.StartAdCampaign, {"id": cid})
    assert not gone["ok"] and gone["error"]["code"] == "NOT_FOUND"


async def test_queuing_again_makes_no_second_post_and_stop_cancels_what_waits(
    campaign: Any, eventually: Any
) -> None:
    t1 = await ad_template(campaign, "ad-c", "Offer C")
    created = await campaign.data(
        AD.CreateAdCampaign,
        {
            "name": "Relay ads",
            "templateIds": [t1],
            "targets": [{"chat": c} for c in CHATS],
            "schedule": {"type": "interval", "intervalMinutes": 60},
            "accounts": {"accountIds": ["acct0", "acct1", "acct2"]},
            "accountStrategy": "relay",
            "start": True,
        },
    )
    cid = created["id"]
    assert created["status"] == "running"
    runner = campaign.m.ads.runner

    async def planned() -> dict[str, Any] | None:
        run = await campaign.m.ads.store.get_run(cid, 1)
        return run if run and run["phase"] in ("queued", "done") else None

    run = await eventually(planned, 20)
    assert [e["account_id"] for e in run["plan"]] == ["acct0", "acct1", "acct2", "acct0"]  # relay
    # A crash between queuing and the phase change: the round queues the same plan again.
    await runner.enqueue(cid, run)
    await runner.enqueue(cid, run)
    jobs = await campaign.m.ads.store.jobs.c.find({"campaign_id": cid}).to_list()
    assert len(jobs) == 4 and len({j["key"] for j in jobs}) == 4
    await run_event(campaign, cid, 1)
    assert Counter(d.peer for d in posts(campaign)) == Counter(dict.fromkeys(CHATS, 1))
    view = (await campaign.data(AD.GetAdCampaigns, {"statuses": ["running"]}))["items"][0]
    assert view["nextRunAt"] is not None and view["counters"]["runs"] == 1
    stopped = await campaign.data(AD.StopAdCampaign, {"id": cid})
    assert stopped["status"] == "stopped" and stopped["nextRunAt"] is None
    state = await campaign.wait_event(
        lambda e: (
            e.get("campaignId") == cid and e.get("status") == "stopped" and e.get("kind") == "ad_campaign"
        )
    )
    assert state["previousStatus"] == "running"


def group_message(
    chat: int, message_id: int, reply_to: int | None, account: str, sender: int, **extra: Any
) -> MessageReceived:
    return MessageReceived(
        account_id=account,
        chat_kind="supergroup",
        chat_id=chat,
        message_id=message_id,
        sender_id=sender,
        text="how much?",
        date=datetime.now(UTC),
        reply_to_message_id=reply_to,
        **extra,
    )


async def test_replies_to_posts_are_counted_once_per_variant_group_and_account_and_clicks_are_absent(
    campaign: Any, eventually: Any
) -> None:
    t1 = await ad_template(campaign, "ad-r1", "Offer R1")
    t2 = await ad_template(campaign, "ad-r2", "Offer R2")
    lead = await campaign.data(CRM.AddLead, {"userId": 7001, "firstName": "Lena"})
    assert lead["userId"] == 7001
    created = await campaign.data(
        AD.CreateAdCampaign,
        {
            "name": "Reply ads",
            "templateIds": [t1, t2],
            "targets": [{"chat": c} for c in CHATS[:2]],
            "schedule": {"type": "once", "startAt": NOW},
            "accounts": {"accountIds": ["acct0", "acct1"]},
            "accountStrategy": "relay",
            "start": True,
        },
    )
    cid = created["id"]
    await run_event(campaign, cid, 1)
    sent = {d.peer: d for d in posts(campaign)}
    a, b = sent[CHATS[0]], sent[CHATS[1]]
    assert (a.account_id, b.account_id) == ("acct0", "acct1")
    publish = campaign.fleet.rt.publish
    # A reply to post A, heard by both accounts (two copies) and delivered again: one reply.
    for account in ("acct0", "acct1", "acct0"):
        await publish(group_message(CHATS[0], 9001, a.message_id, account, 7001))
    # Two people reply to post B; one message replies to something else, one to nothing, and the
    # posting account's own message (its copy says outgoing) is not a reply to count.
    await publish(group_message(CHATS[1], 9002, b.message_id, "acct0", 7002))
    await publish(group_message(CHATS[1], 9003, b.message_id, "acct0", 7001))
    await publish(group_message(CHATS[1], 9004, b.message_id + 1000, "acct0", 7003))
    await publish(group_message(CHATS[1], 9005, None, "acct0", 7003))
    await publish(group_message(CHATS[1], 9006, b.message_id, "acct1", 5, is_outgoing=True))

    async def counted() -> dict[str, Any] | None:
        stats = await campaign.data(AD.GetAdStats, {"adCampaignId": cid})
        return stats if stats["totals"]["replies"] >= 3 else None

    stats = await eventually(counted, 20)
    await publish(group_message(CHATS[1], 9002, b.message_id, "acct1", 7002))  # a late copy
    stats = await campaign.data(AD.GetAdStats, {"adCampaignId": cid})
    assert stats["totals"]["replies"] == 3
    assert stats["totals"]["leads"] == 1  # 7001 replied twice and is the one lead
    assert stats["totals"]["clicks"] is None
    assert await campaign.m.ads.store.replies.count_documents({"campaign_id": cid}) == 3
    by_group = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "group"})
    assert {r["key"]: r["replies"] for r in by_group["rows"]} == {f"id:{CHATS[0]}": 1, f"id:{CHATS[1]}": 2}
    by_account = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "account"})
    assert {r["key"]: r["replies"] for r in by_account["rows"]} == {"acct0": 1, "acct1": 2}
    by_template = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "groupBy": "template"})
    assert {r["key"]: (r["replies"], r["leads"]) for r in by_template["rows"]} == {t1: (1, 1), t2: (2, 1)}
    # The window: replies are counted on the day they were written.
    later = await campaign.data(AD.GetAdStats, {"adCampaignId": cid, "since": "2099-01-01T00:00:00Z"})
    assert later["totals"]["replies"] == 0


async def test_bad_input_is_refused_with_a_clear_error(campaign: Any) -> None:
    ad = await ad_template(campaign, "ad-d", "Offer D")
    other = await ad_template(campaign, "greeting", "Hello", category="greeting")
    base = {
        "name": "x",
        "templateIds": [ad],
        "targets": [{"chat": -1001}],
        "schedule": {"type": "once", "startAt": NOW},
    }
    cases = [
        ({**base, "templateIds": [other]}, "VALIDATION_ERROR"),
        ({**base, "templateIds": ["nope"]}, "NOT_FOUND"),
        ({**base, "targets": [{"chat": 12345}]}, "VALIDATION_ERROR"),
        ({**base, "targets": [{"chat": -1001}, {"chat": -1001}]}, "VALIDATION_ERROR"),
        ({**base, "targets": [{"groupId": "grp_missing"}]}, "NOT_FOUND"),
        ({**base, "schedule": {"type": "cron", "cron": "99 * * * *"}}, "VALIDATION_ERROR"),
        (
            {**base, "schedule": {"type": "daily", "times": ["09:00"], "timezone": "Mars/Base"}},
            "VALIDATION_ERROR",
        ),
        ({**base, "schedule": {"type": "interval", "intervalMinutes": 1}}, "VALIDATION_ERROR"),
        ({**base, "templateWeights": [1, 2]}, "VALIDATION_ERROR"),
        ({**base, "accounts": {"accountIds": ["ghost"]}}, "NOT_FOUND"),
        ({**base, "targets": "lots"}, "VALIDATION_ERROR"),
    ]
    for payload, code in cases:
        reply = await campaign.call(AD.CreateAdCampaign, payload)
        assert not reply["ok"] and reply["error"]["code"] == code, (payload, reply)
    for command, payload in [
        (AD.StartAdCampaign, {"id": "ad_nope"}),
        (AD.StopAdCampaign, {"id": "ad_nope"}),
        (AD.DeleteAdCampaign, {"id": "ad_nope"}),
        (AD.UpdateAdCampaign, {"id": "ad_nope", "name": "y"}),
        (AD.PreviewAd, {"adCampaignId": "ad_nope"}),
        (AD.GetAdStats, {"adCampaignId": "ad_nope"}),
    ]:
        reply = await campaign.call(command, payload)
        assert not reply["ok"] and reply["error"]["code"] == "NOT_FOUND", (command, reply)
    bad_cursor = await campaign.call(AD.GetAdCampaigns, {"cursor": "garbage!!"})
    assert not bad_cursor["ok"] and bad_cursor["error"]["code"] == "VALIDATION_ERROR"
    shown = await campaign.data(AD.PreviewAd, {"content": "{A|B|C} {first_name}", "samples": 5, "seed": 1})
    assert (
        shown["variants"] == 3 and shown["missingVariables"] == ["first_name"] and len(shown["samples"]) == 5
    )
    # A once campaign created and updated: the change is kept; done runs stay.
    cid = (await campaign.data(AD.CreateAdCampaign, base))["id"]
    updated = await campaign.data(
        AD.UpdateAdCampaign, {"id": cid, "name": "renamed", "minGroupIntervalMinutes": 5}
    )
    assert updated["name"] == "renamed" and updated["minGroupIntervalMinutes"] == 5
