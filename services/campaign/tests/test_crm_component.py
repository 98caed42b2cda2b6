"""The 14 contacts commands through the real handlers on the in-memory broker with a real database:
content, bad input, NOT_FOUND, idempotency, events; tg-session's events fed to the CRM consumer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_campaign.bootstrap import build
from tgm_campaign.settings import CampaignSettings
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_campaign import KeywordMatched
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

CONTACTS = [
    CRM.AddLead,
    CRM.AssignLead,
    CRM.DeleteLead,
    CRM.GetFunnelStats,
    CRM.GetFunnelUsers,
    CRM.GetLeadDetails,
    CRM.GetLeads,
    CRM.GetTrackedUsers,
    CRM.GetUserActivity,
    CRM.TrackUser,
    CRM.UntrackUser,
    CRM.UpdateFunnelStage,
    CRM.UpdateLead,
    CRM.UpdateLeadStage,
]


@pytest.fixture
def rt(monkeypatch):
    monkeypatch.setenv("TGM_CAMPAIGN_SCHEDULER", "false")
    return build(CampaignSettings(runtime=RuntimeSettings(replica_id="campaign-crm")))


class Events:
    """Records what the use cases publish (the in-memory broker has no stream to read back)."""

    def __init__(self, rt: Any) -> None:
        self.items: list[Any] = []
        original = rt.publish

        async def publish(event: Any) -> None:
            self.items.append(event)
            await original(event)

        rt.publish = publish  # what `runtime.emit` publishes through

    def named(self, name: str) -> list[Any]:
        return [e for e in self.items if name == e.NAME]


def code(reply: dict) -> str:
    assert not reply["ok"], reply
    return reply["error"]["code"]


async def test_every_contacts_command_is_served(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        for cmd in CONTACTS:
            reply = await client.call(cmd, {"bogusField": 1})
            # answered by a handler: the request model refused the unknown field
            assert code(reply) == "VALIDATION_ERROR", cmd.NAME


async def test_leads_add_update_stage_assign_delete(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        ev = Events(rt)
        assert code(await client.call(CRM.AddLead, {"firstName": "Nobody"})) == "VALIDATION_ERROR"
        assert code(await client.call(CRM.AddLead, {"userId": -5})) == "VALIDATION_ERROR"
        lead = await client.data(
            CRM.AddLead,
            {
                "userId": 501,
                "username": "@Alice_W",
                "firstName": "Alice",
                "sourceType": "keyword",
                "sourceChatTitle": "Crypto TW",
                "tags": ["vip", "vip", "tw"],
                "customFields": {"budget": 500},
            },
        )
        assert lead["stage"] == "new" and lead["username"] == "Alice_W" and lead["tags"] == ["vip", "tw"]
        assert lead["customFields"] == {"budget": 500} and lead["sourceType"] == "keyword"
        (captured,) = ev.named("lead-captured")  # told from the stored lead
        assert (captured.lead_id, captured.user_id, captured.username, captured.first_name) == (
            lead["id"],
            501,
            "Alice_W",
            "Alice",
        )
        assert (captured.source_type, captured.stage, captured.source_group_title) == ("keyword", "new", None)
        assert [(e.entity, e.action) for e in ev.named("entity-changed")] == [("lead", "created")]
        # duplicates per ifExists: the same user by id or by username (any case)
        dup = await client.call(CRM.AddLead, {"username": "alice_w"})
        assert code(dup) == "CONFLICT" and dup["error"]["details"]["leadId"] == lead["id"]
        same = await client.data(CRM.AddLead, {"userId": 501, "ifExists": "return", "notes": "ignored"})
        assert same["id"] == lead["id"] and same["notes"] is None
        merged = await client.data(
            CRM.AddLead, {"userId": 501, "ifExists": "merge", "notes": "met at expo", "tags": ["hot"]}
        )
        assert merged["notes"] == "met at expo" and merged["tags"] == ["vip", "tw", "hot"]
        assert len(ev.named("lead-captured")) == 1

        # update: a patch; null clears; customFields merged, null deletes; stale expectedUpdatedAt
        assert code(await client.call(CRM.UpdateLead, {"leadId": lead["id"]})) == "VALIDATION_ERROR"
        assert code(await client.call(CRM.UpdateLead, {"leadId": "nope", "notes": "x"})) == "NOT_FOUND"
        up = await client.data(
            CRM.UpdateLead,
            {
                "leadId": lead["id"],
                "notes": None,
                "intentScore": 80,
                "intentLevel": "hot",
                "customFields": {"budget": None, "city": "Taipei"},
                "expectedUpdatedAt": merged["updatedAt"],
            },
        )
        assert up["notes"] is None and up["intentScore"] == 80 and up["intentLevel"] == "hot"
        assert up["customFields"] == {"city": "Taipei"} and up["tags"] == ["vip", "tw", "hot"]
        stale = await client.call(
            CRM.UpdateLead, {"leadId": lead["id"], "notes": "x", "expectedUpdatedAt": merged["updatedAt"]}
        )
        assert code(stale) == "CONFLICT"
        other = await client.data(CRM.AddLead, {"userId": 502, "firstName": "Bob"})
        taken = await client.call(CRM.UpdateLead, {"leadId": other["id"], "username": "ALICE_w"})
        assert code(taken) == "CONFLICT"

        # stage: recorded with who and why, published; the same stage again changes nothing
        assert code(await client.call(CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "won"})) == (
            "VALIDATION_ERROR"
        )
        assert (
            code(await client.call(CRM.UpdateLeadStage, {"leadId": "zz", "stage": "replied"})) == "NOT_FOUND"
        )
        moved = await client.data(
            CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "replied", "reason": "answered the ad"}
        )
        assert moved["stage"] == "replied" and moved["stageChangedAt"] >= moved["createdAt"]
        again = await client.data(CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "replied"})
        assert again["updatedAt"] == moved["updatedAt"]
        changes = ev.named("lead-stage-changed")
        assert [(c.from_stage, c.to_stage, c.by, c.reason) for c in changes] == [
            ("new", "replied", None, "answered the ad")
        ]
        details = await client.data(CRM.GetLeadDetails, {"leadId": lead["id"]})
        assert [(h["fromStage"], h["toStage"], h["reason"]) for h in details["stageHistory"]] == [
            (None, "new", "added"),
            ("new", "replied", "answered the ad"),
        ]
        assert details["tracked"] is False and details["recentJobs"] == [] and details["recentMessages"] == []
        assert code(await client.call(CRM.GetLeadDetails, {"leadId": "nope"})) == "NOT_FOUND"

        # many at once, by lead ids or by Telegram user ids
        assert code(await client.call(CRM.UpdateFunnelStage, {"stage": "contacted"})) == "VALIDATION_ERROR"
        bulk = await client.data(
            CRM.UpdateFunnelStage, {"userIds": [501, 502, 999], "stage": "follow_up", "reason": "weekly"}
        )
        assert bulk == {"affected": 2, "unchanged": 0, "missing": ["999"]}
        bulk = await client.data(
            CRM.UpdateFunnelStage, {"leadIds": [lead["id"], other["id"], "gone"], "stage": "follow_up"}
        )
        assert bulk == {"affected": 0, "unchanged": 2, "missing": ["gone"]}

        # assign: account and/or owner; null clears, omitted keeps
        assert code(await client.call(CRM.AssignLead, {"leadIds": [lead["id"]]})) == "VALIDATION_ERROR"
        res = await client.data(
            CRM.AssignLead,
            {"leadIds": [lead["id"], other["id"], "gone"], "accountId": "acct1", "assignee": "amy"},
        )
        assert res == {"affected": 2, "unchanged": 0, "missing": ["gone"]}
        res = await client.data(CRM.AssignLead, {"leadIds": [lead["id"]], "assignee": "amy"})
        assert res["unchanged"] == 1 and res["affected"] == 0
        await client.data(CRM.AssignLead, {"leadIds": [other["id"]], "accountId": None})
        got = {x["id"]: x for x in (await client.data(CRM.GetLeads, {}))["items"]}
        assert got[lead["id"]]["assignedAccountId"] == "acct1" and got[lead["id"]]["assignee"] == "amy"
        assert got[other["id"]]["assignedAccountId"] is None and got[other["id"]]["assignee"] == "amy"

        # delete: its waiting jobs are cancelled; then NOT_FOUND
        await client.data(M.PauseQueue, {"scope": "all"})
        q = await client.data(M.QueueMessage, {"text": "hi", "recipients": [{"leadId": other["id"]}]})
        assert q["jobs"][0]["state"] == "pending"
        assert (await rt.db["jobs"].find_one({"_id": q["jobs"][0]["jobId"]})).get("account_id") is None
        assert (await client.data(CRM.DeleteLead, {"leadId": other["id"]}))["affected"] == 1
        job = await rt.db["jobs"].find_one({"_id": q["jobs"][0]["jobId"]})
        assert job["state"] == "cancelled" and job["last_error"] == "lead deleted"
        assert code(await client.call(CRM.DeleteLead, {"leadId": other["id"]})) == "NOT_FOUND"
        assert ("lead", other["id"], "deleted") in [
            (e.entity, e.entity_id, e.action) for e in ev.named("entity-changed")
        ]
        # do-not-contact skips the lead's waiting jobs
        q = await client.data(M.QueueMessage, {"text": "hi", "recipients": [{"leadId": lead["id"]}]})
        # (the account it was assigned sends to it)
        assert (await rt.db["jobs"].find_one({"_id": q["jobs"][0]["jobId"]}))["account_id"] == "acct1"
        await client.data(CRM.UpdateLead, {"leadId": lead["id"], "doNotContact": True})
        job = await rt.db["jobs"].find_one({"_id": q["jobs"][0]["jobId"]})
        assert job["state"] == "skipped" and job["reason"] == "do_not_contact"
        details = await client.data(CRM.GetLeadDetails, {"leadId": lead["id"]})
        assert [j["jobId"] for j in details["recentJobs"]] == [q["jobs"][0]["jobId"]]
        # a user banned before becoming a lead is a blacklisted lead
        await client.data(CRM.BlacklistUser, {"userId": 503})
        banned = await client.data(CRM.AddLead, {"userId": 503})
        assert banned["blacklisted"] is True and lead["blacklisted"] is False


async def test_get_leads_filters_sorting_and_cursor(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        ids = []
        for i in range(7):
            lead = await client.data(
                CRM.AddLead,
                {
                    "userId": 600 + i,
                    "firstName": f"User{i}",
                    "tags": ["even"] if i % 2 == 0 else ["odd"],
                    "sourceType": "manual" if i < 5 else "import",
                    "notes": "likes tea" if i == 3 else None,
                },
            )
            ids.append(lead["id"])
            if i in (1, 2, 4):
                await client.data(CRM.UpdateLead, {"leadId": lead["id"], "intentScore": 10 * i})
        await client.data(CRM.UpdateLead, {"leadId": ids[6], "doNotContact": True})
        await client.data(CRM.UpdateLeadStage, {"leadId": ids[0], "stage": "closed_won"})

        async def all_pages(payload: dict) -> tuple[list[str], int]:
            seen: list[str] = []
            cursor = None
            while True:
                page = await client.data(CRM.GetLeads, {**payload, "limit": 2, "cursor": cursor})
                total = page["total"]
                seen += [x["id"] for x in page["items"]]
                cursor = page["nextCursor"]
                if cursor is None:
                    return seen, total

        newest, total = await all_pages({})
        assert newest == ids[::-1] and total == 7
        oldest, _ = await all_pages({"descending": False})
        assert oldest == ids
        by_score, _ = await all_pages({"sort": "intent_score"})
        assert by_score[:3] == [ids[4], ids[2], ids[1]] and set(by_score[3:]) == {
            ids[0],
            ids[3],
            ids[5],
            ids[6],
        }
        up_score, _ = await all_pages({"sort": "intent_score", "descending": False})
        assert up_score[-3:] == [ids[1], ids[2], ids[4]] and len(up_score) == 7
        evens, total = await all_pages({"tags": ["even"], "includeDoNotContact": False})
        assert set(evens) == {ids[0], ids[2], ids[4]} and total == 3
        assert (await all_pages({"stages": ["closed_won"]}))[0] == [ids[0]]
        assert (await all_pages({"search": "TEA"}))[0] == [ids[3]]
        assert set((await all_pages({"sourceType": "import"}))[0]) == {ids[5], ids[6]}
        bad = await client.call(CRM.GetLeads, {"cursor": "!!"})
        assert code(bad) == "VALIDATION_ERROR"
        assert code(await client.call(CRM.GetLeads, {"sort": "name"})) == "VALIDATION_ERROR"
        page = await client.data(CRM.GetLeads, {"limit": 2})
        wrong = await client.call(CRM.GetLeads, {"sort": "updated_at", "cursor": page["nextCursor"]})
        assert code(wrong) == "VALIDATION_ERROR"


async def test_funnel_stats_and_users(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        leads = [
            (await client.data(CRM.AddLead, {"userId": 700 + i, "firstName": f"F{i}", "tags": ["x"]}))["id"]
            for i in range(5)
        ]
        imported = await client.data(
            CRM.AddLead, {"userId": 799, "sourceType": "import", "stage": "contacted"}
        )
        for lid in leads[:4]:
            await client.data(CRM.UpdateLeadStage, {"leadId": lid, "stage": "contacted"})
        for lid in leads[:2]:
            await client.data(CRM.UpdateLeadStage, {"leadId": lid, "stage": "replied"})
        await client.data(CRM.UpdateLeadStage, {"leadId": leads[0], "stage": "closed_won"})
        await client.data(CRM.UpdateLeadStage, {"leadId": leads[4], "stage": "closed_lost"})
        stats = await client.data(CRM.GetFunnelStats, {})
        by = {s["stage"]: s for s in stats["stages"]}
        assert [s["stage"] for s in stats["stages"]] == [
            "new",
            "contacted",
            "replied",
            "follow_up",
            "closed_won",
            "closed_lost",
        ]
        assert stats["total"] == 6 and stats["newLast7Days"] == 6
        assert {k: v["count"] for k, v in by.items()} == {
            "new": 0,
            "contacted": 3,
            "replied": 1,
            "follow_up": 0,
            "closed_won": 1,
            "closed_lost": 1,
        }
        # reached: won walked the whole path; lost from new reached only new
        assert {k: v["reached"] for k, v in by.items()} == {
            "new": 6,
            "contacted": 5,
            "replied": 2,
            "follow_up": 1,
            "closed_won": 1,
            "closed_lost": 1,
        }
        assert by["new"]["conversionFromPrevious"] is None
        assert by["contacted"]["conversionFromPrevious"] == pytest.approx(5 / 6)
        assert by["replied"]["conversionFromPrevious"] == pytest.approx(2 / 5)
        assert by["closed_lost"]["conversionFromPrevious"] == pytest.approx(1 / 6)
        assert stats["conversionRate"] == pytest.approx(1 / 6)
        assert stats["bySource"] == {"manual": 5, "import": 1}
        assert by["contacted"]["avgHoursInStage"] is not None and by["contacted"]["avgHoursInStage"] >= 0
        # a window that excludes every lead
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        empty = await client.data(CRM.GetFunnelStats, {"since": future})
        assert empty["total"] == 0 and empty["conversionRate"] is None
        assert (
            code(await client.call(CRM.GetFunnelStats, {"since": "2026-01-01T00:00:00"}))
            == "VALIDATION_ERROR"
        )

        # users of one stage, longest in stage first, by cursor
        page = await client.data(CRM.GetFunnelUsers, {"stage": "contacted", "limit": 2})
        assert page["total"] == 3 and len(page["items"]) == 2 and page["nextCursor"]
        rest = await client.data(CRM.GetFunnelUsers, {"stage": "contacted", "cursor": page["nextCursor"]})
        order = [u["leadId"] for u in page["items"] + rest["items"]]
        assert order == [imported["id"], leads[2], leads[3]]  # in contacted since creation, then as moved
        named = page["items"][1]
        assert named["displayName"] == "F2" and named["daysInStage"] >= 0 and named["stage"] == "contacted"
        assert page["items"][0]["displayName"] is None and page["items"][0]["userId"] == 799
        assert (await client.data(CRM.GetFunnelUsers, {"staleDays": 1}))["items"] == []
        await client.data(CRM.UpdateLead, {"leadId": leads[1], "intentScore": 90})
        hot = await client.data(CRM.GetFunnelUsers, {"minIntentScore": 50})
        assert [u["leadId"] for u in hot["items"]] == [leads[1]] and hot["items"][0]["intentScore"] == 90
        bad = await client.call(CRM.GetFunnelUsers, {"minIntentScore": 60, "maxIntentScore": 10})
        assert code(bad) == "VALIDATION_ERROR"


def received(account: str, chat_id: int, sender: int, text: str, message_id: int, kind: str = "private"):
    return MessageReceived(
        account_id=account,
        chat_kind=kind,
        chat_id=chat_id,
        chat_title="Crypto TW" if kind != "private" else None,
        message_id=message_id,
        sender_id=sender,
        sender=TelegramUser(user_id=sender, first_name="Carol", username="carol_c"),
        text=text,
        date=datetime.now(UTC),
    )


async def test_tracked_users_and_activity(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        ev = Events(rt)

        async def hear(evt: MessageReceived) -> None:  # as the two durable consumers do
            await rt.app.history.on_received(evt)
            await rt.app.crm_consumers.on_received(evt)

        crm = rt.app.crm_consumers
        assert code(await client.call(CRM.TrackUser, {"notes": "x"})) == "VALIDATION_ERROR"
        t = await client.data(CRM.TrackUser, {"userId": 801, "valueLevel": "high", "source": "manual"})
        assert t["valueLevel"] == "high" and t["status"] == "active" and t["messageCount"] == 0
        again = await client.data(CRM.TrackUser, {"userId": 801, "username": "carol_c", "notes": "whale"})
        assert again["id"] == t["id"] and again["notes"] == "whale" and again["valueLevel"] == "high"
        assert again["username"] == "carol_c"
        same = await client.data(CRM.TrackUser, {"username": "@CAROL_C"})
        assert same["id"] == t["id"]
        assert [e.action for e in ev.named("entity-changed") if e.entity == "tracked_user"] == [
            "created",
            "updated",
        ]
        other = await client.data(CRM.TrackUser, {"userId": 802, "valueLevel": "low"})

        # what campaign hears: a group message of the tracked user (twice: two listeners), a private one
        await hear(received("acct0", -100500, 801, "anyone selling USDT?", 42, "supergroup"))
        await hear(received("acct1", -100500, 801, "anyone selling USDT?", 42, "supergroup"))
        await hear(received("acct0", -100500, 803, "not tracked", 43, "supergroup"))
        await client.data(
            M.SaveChatHistory,
            {
                "accountId": "acct0",
                "peer": 801,
                "messages": [{"direction": "out", "text": "hello Carol", "date": _ago(120), "messageId": 1}],
            },
        )
        await hear(received("acct0", 801, 801, "hi, price?", 2))
        await rt.app.crm_consumers.on_received(received("acct0", 801, 801, "hi, price?", 2))  # redelivered
        listed = await client.data(CRM.GetTrackedUsers, {})
        assert [u["id"] for u in listed["items"]] == [t["id"], other["id"]] and listed["total"] == 2
        carol = listed["items"][0]
        assert carol["groupsSeen"] == 1 and carol["messageCount"] == 2 and carol["lastSeenAt"]
        assert (await client.data(CRM.GetTrackedUsers, {"valueLevel": "low"}))["items"][0]["id"] == other[
            "id"
        ]
        assert (await client.data(CRM.GetTrackedUsers, {"search": "whale"}))["total"] == 1
        page = await client.data(CRM.GetTrackedUsers, {"limit": 1})
        nxt = await client.data(CRM.GetTrackedUsers, {"limit": 1, "cursor": page["nextCursor"]})
        assert [page["items"][0]["id"], nxt["items"][0]["id"]] == [t["id"], other["id"]] and not nxt[
            "nextCursor"
        ]

        # a lead for the user: a reply moved it to replied; the timeline combines every source
        lead = await client.data(CRM.AddLead, {"userId": 801, "stage": "contacted"})
        # the page's tracked users name their leads (one read of the page's leads, not one per row)
        views = {u["id"]: u.get("leadId") for u in (await client.data(CRM.GetTrackedUsers, {}))["items"]}
        assert views == {t["id"]: lead["id"], other["id"]: None}, views
        await hear(received("acct0", 801, 801, "ok send me details", 3))
        after = await client.data(CRM.GetLeadDetails, {"leadId": lead["id"]})
        assert after["stage"] == "replied" and after["tracked"] is True and after["lastRepliedAt"]
        assert after["stageHistory"][-1]["by"] == "system"
        assert [m["text"] for m in after["recentMessages"]][:2] == ["ok send me details", "hi, price?"]
        await crm.on_keyword(
            KeywordMatched(
                group_id="g1", user_id=801, keyword_set_id="ks1", keyword="USDT", match_type="contains"
            )
        )
        await client.data(CRM.BlacklistUser, {"userId": 801, "reason": "spam"})
        act = await client.data(CRM.GetUserActivity, {"userId": 801, "limit": 100})
        kinds = [a["kind"] for a in act["items"]]
        assert kinds[0] == "blacklisted" and "keyword_match" in kinds
        assert {"group_message", "private_in", "private_out", "lead_captured", "stage_change"} <= set(kinds)
        stamps = [datetime.fromisoformat(a["at"]) for a in act["items"]]
        assert stamps == sorted(stamps, reverse=True)
        group_msg = next(a for a in act["items"] if a["kind"] == "group_message")
        assert group_msg["groupTitle"] == "Crypto TW" and group_msg["text"] == "anyone selling USDT?"
        assert kinds.count("group_message") == 1
        by_lead = await client.data(CRM.GetUserActivity, {"leadId": lead["id"], "limit": 100})
        assert [a["kind"] for a in by_lead["items"]] == kinds
        lead_details = await client.data(CRM.GetLeadDetails, {"leadId": lead["id"]})
        assert lead_details["matchedKeywords"] == ["USDT"] and lead_details["blacklisted"] is True
        # pages of 2 walk the same timeline
        walked: list[str] = []
        cursor = None
        while True:
            p = await client.data(CRM.GetUserActivity, {"userId": 801, "limit": 2, "cursor": cursor})
            walked += [a["kind"] + a["at"] for a in p["items"]]
            cursor = p["nextCursor"]
            if not cursor:
                break
        assert walked == [a["kind"] + a["at"] for a in act["items"]]
        only = await client.data(CRM.GetUserActivity, {"userId": 801, "kinds": ["private_in"]})
        assert [a["text"] for a in only["items"]] == ["ok send me details", "hi, price?"]
        bad = await client.call(CRM.GetUserActivity, {"userId": 801, "leadId": lead["id"]})
        assert code(bad) == "VALIDATION_ERROR"
        assert code(await client.call(CRM.GetUserActivity, {"leadId": "nope"})) == "NOT_FOUND"
        assert (await client.data(CRM.GetUserActivity, {"userId": 123456}))["items"] == []

        # untrack: forgets the kept group messages on request; untracking again is NOT_FOUND
        res = await client.data(CRM.UntrackUser, {"userId": 801, "forgetActivity": True})
        assert res["affected"] == 1
        assert code(await client.call(CRM.UntrackUser, {"username": "carol_c"})) == "NOT_FOUND"
        act = await client.data(CRM.GetUserActivity, {"userId": 801, "kinds": ["group_message"]})
        assert act["items"] == []
        assert (await client.data(CRM.GetTrackedUsers, {}))["total"] == 1


def _ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
