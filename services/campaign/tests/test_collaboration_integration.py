"""Collaboration runs through the real campaign service (real nats-server and database), `FakeFleet`
standing in for tg-session (sends, describe-accounts, create-group), the target's group messages
published into the events stream as tg-session does.

- a three-role script in an existing group: the first stage plays, the target's reply starts the
  second, a keyword the third; the target writing STOP ends the run, opts them out and cancels the
  line waiting to be sent: nobody writes again;
- a crash between queueing a line and saving its job id (the run's runner lease held by a dead
  replica meanwhile): the round after queues the same key again and gets the same job, so every
  line is delivered once;
- a run in a new group: created with the target and the role accounts invited; the target who
  could not be added gets the invite link privately;
- bad input answers with an error envelope."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_contracts.commands import collaboration as C
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CHAT = -1001555
TARGET = 4242


def said(message_id: int, text: str, account: str = "acct0", sender: int = TARGET) -> MessageReceived:
    return MessageReceived(
        account_id=account,
        chat_kind="supergroup",
        chat_id=CHAT,
        chat_title="Club",
        message_id=message_id,
        sender_id=sender,
        sender=TelegramUser(user_id=sender, first_name="Tina", username="tina"),
        text=text,
        date=datetime.now(UTC),
    )


async def roles(campaign: Any) -> dict[str, str]:
    out = {}
    for slot, account in (("expert", "acct0"), ("buyer", "acct1"), ("support", "acct2")):
        role = await campaign.data(
            C.SaveRole,
            {"name": slot.title(), "boundAccountId": account, "aiConfig": {"typingSpeed": 2000}},
        )
        out[slot] = role["id"]
    return out


def ln(slot: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "slot": slot,
        "text": text,
        "delaySeconds": 0,
        "jitterSeconds": 0,
        "simulateTyping": False,
        **extra,
    }


SCRIPT = {
    "name": "three roles",
    "roles": [{"key": "expert"}, {"key": "buyer"}, {"key": "support"}],
    "stages": [
        {
            "name": "open",
            "lines": [ln("expert", "Hi all, {first_name} asked about it"), ln("buyer", "I use it daily")],
        },
        {"name": "answer", "trigger": {"type": "message"}, "lines": [ln("support", "Happy to help [s2]")]},
        {
            "name": "price",
            "trigger": {"type": "keyword", "keywords": ["price"]},
            # a slow typist: the line waits ~30 s in the queue (notBefore), so STOP finds it waiting
            "lines": [ln("expert", "It is 10 USD a month", simulateTyping=True)],
        },
        {"name": "close", "lines": [ln("buyer", "worth it")]},
    ],
}


async def run_of(campaign: Any, run_id: str) -> dict[str, Any]:
    page = await campaign.data(C.GetCollaborationStatus, {"runId": run_id})
    assert len(page["items"]) == 1
    return page["items"][0]


async def wait_run(campaign: Any, run_id: str, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """The run's view once `predicate` holds (read again after every event of the service)."""

    async def loop() -> dict[str, Any]:
        while True:
            view = await run_of(campaign, run_id)
            if predicate(view):
                return view
            try:
                await campaign.wait_event(
                    lambda e, n=len(campaign.events): campaign.events.index(e) >= n, 1.0
                )
            except TimeoutError:
                pass

    return await asyncio.wait_for(loop(), timeout)


def texts(campaign: Any) -> list[str]:
    return [d.text for d in campaign.fleet.deliveries if d.peer == CHAT]


async def test_three_roles_reply_advances_stop_ends(campaign: Any) -> None:
    r = await roles(campaign)
    # the expert types slowly in stage 3: 20 characters a minute
    await campaign.data(
        C.SaveRole,
        {"id": r["expert"], "name": "Expert", "boundAccountId": "acct0", "aiConfig": {"typingSpeed": 40}},
    )
    script = await campaign.data(C.SaveScript, SCRIPT)
    run = await campaign.data(
        C.StartCollaboration,
        {
            "scriptId": script["id"],
            "roleBindings": r,
            "chat": CHAT,
            "target": TARGET,
            "variables": {"first_name": "Tina"},
            "idempotencyKey": "run-1",
        },
    )
    assert run["status"] == "running" and run["messagesTotal"] == 5
    again = await campaign.data(
        C.StartCollaboration,
        {
            "scriptId": script["id"],
            "roleBindings": r,
            "chat": CHAT,
            "target": TARGET,
            "idempotencyKey": "run-1",
        },
    )
    assert again["id"] == run["id"]
    # stage 1 plays in order, each line by its role's account
    await campaign.fleet.wait_for(lambda f: len(texts(campaign)) >= 2, 20)
    assert texts(campaign) == ["Hi all, Tina asked about it", "I use it daily"]
    assert [d.account_id for d in campaign.fleet.deliveries] == ["acct0", "acct1"]
    view = await wait_run(campaign, run["id"], lambda v: v["waitingFor"] == "message")
    assert view["currentStage"] == 1 and view["messagesSent"] == 2
    # the run's chat is watched by tg-session (monitoring is off)
    chats = await campaign.rt.app.monitoring._snapshot()
    assert CHAT in chats[1]
    # a member who is not the target changes nothing; the target's reply (seen by two accounts) advances
    await campaign.fleet.rt.publish(said(10, "who are you?", sender=999))
    await campaign.fleet.rt.publish(said(11, "how does it work?", "acct0"))
    await campaign.fleet.rt.publish(said(11, "how does it work?", "acct1"))
    await campaign.fleet.wait_for(lambda f: len(texts(campaign)) >= 3, 20)
    assert texts(campaign)[2] == "Happy to help [s2]"
    view = await wait_run(campaign, run["id"], lambda v: v["waitingFor"] == "keyword")
    assert view["replies"] == 1 and view["currentStage"] == 2
    # the keyword starts stage 3: its line waits out the typing time in the queue
    await campaign.fleet.rt.publish(said(12, "and the price?"))
    jobs = await campaign.wait_jobs(lambda js: any(j["key"].endswith(":2:0") for j in js))
    line3 = next(j for j in jobs if j["key"] == f"col:{run['id']}:2:0")
    assert line3["state"] == "scheduled" and line3["account_id"] == "acct0"
    # STOP: the run ends, the target is opted out, the waiting line is cancelled
    await campaign.fleet.rt.publish(said(13, "STOP"))
    view = await wait_run(campaign, run["id"], lambda v: v["status"] == "stopped")
    assert view["outcome"] == "stopped" and "stop" in (view["lastError"] or "").lower()
    jobs = await campaign.wait_jobs(
        lambda js: any(j["key"] == line3["key"] and j["state"] == "cancelled" for j in js)
    )
    optout = await campaign.rt.db["blocked"].find_one({"_id": f"id:{TARGET}"})
    assert optout is not None and optout.get("opted_out")
    await campaign.wait_event(lambda e: e.get("runId") == run["id"] and e.get("status") == "stopped")
    # nobody writes again: the chat is no longer watched, a new start for the target is refused
    chats = await campaign.rt.app.monitoring._snapshot()
    assert CHAT not in chats[1]
    refused = await campaign.call(
        C.StartCollaboration, {"scriptId": script["id"], "roleBindings": r, "chat": CHAT, "target": TARGET}
    )
    assert not refused["ok"] and refused["error"]["code"] == "CONFLICT"
    for _ in range(2):  # runner rounds after the stop: nothing more is queued or sent
        await campaign.m.collaboration.tick()
    waiting = await campaign.rt.db["jobs"].count_documents(
        {"campaign_id": run["id"], "state": {"$in": ["pending", "scheduled", "in_flight"]}}
    )
    assert waiting == 0 and len(texts(campaign)) == 3
    assert Counter(d.job_id for d in campaign.fleet.deliveries).most_common(1)[0][1] == 1


async def test_crash_between_queue_and_save_sends_each_line_once(campaign: Any) -> None:
    r = await roles(campaign)
    spec = {
        "name": "crash",
        "roles": [{"key": "expert"}, {"key": "buyer"}, {"key": "support"}],
        "stages": [
            {"lines": [ln("expert", "one"), ln("buyer", "two"), ln("support", "three"), ln("expert", "four")]}
        ],
    }
    script = await campaign.data(C.SaveScript, spec)
    db = campaign.rt.db
    svc = campaign.m.collaboration
    # the runner's replica is dead: its lease is held and not renewed
    far = datetime.now(UTC) + timedelta(minutes=5)
    await db["leases"].update_one(
        {"_id": "collaboration-runs"}, {"$set": {"owner": "dead", "until": far}}, upsert=True
    )
    run = await campaign.data(
        C.StartCollaboration, {"scriptId": script["id"], "roleBindings": r, "chat": CHAT, "target": TARGET}
    )
    doc = await db["collaboration_runs"].find_one({"_id": run["id"]})
    await svc._round(doc, None)  # the line is saved as pending, then queued
    doc = await db["collaboration_runs"].find_one({"_id": run["id"]})
    first = doc["pending_job"]
    assert doc["state"]["pending"]["key"] == f"col:{run['id']}:0:0" and first
    # killed after the queue call, before its job id was saved
    await db["collaboration_runs"].update_one(
        {"_id": run["id"]}, {"$set": {"state.pending.job_id": None, "pending_job": None}, "$inc": {"rev": 1}}
    )
    doc = await db["collaboration_runs"].find_one({"_id": run["id"]})
    await svc._round(doc, None)  # the restarted runner queues the same key: the same job
    doc = await db["collaboration_runs"].find_one({"_id": run["id"]})
    assert doc["pending_job"] == first
    # the replica comes back (the lease expires): the run plays to its end
    await db["leases"].update_one({"_id": "collaboration-runs"}, {"$set": {"until": datetime.now(UTC)}})
    view = await wait_run(campaign, run["id"], lambda v: v["status"] == "completed", 30)
    assert view["messagesSent"] == 4 and view["outcome"] == "no_response"
    assert texts(campaign) == ["one", "two", "three", "four"]
    keys = Counter(j["key"] for j in await db["jobs"].find({"campaign_id": run["id"]}).to_list(None))
    assert sorted(keys) == sorted(f"col:{run['id']}:0:{i}" for i in range(4)) and set(keys.values()) == {1}
    assert Counter(d.job_id for d in campaign.fleet.deliveries).most_common(1)[0][1] == 1


async def test_new_group_invites_the_target(campaign: Any) -> None:
    r = await roles(campaign)
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "new group",
            "roles": [{"key": "expert"}, {"key": "buyer"}],
            "stages": [{"lines": [ln("expert", "welcome")]}],
        },
    )
    campaign.fleet.uninvitable.add(TARGET)
    run = await campaign.data(
        C.StartCollaboration,
        {
            "scriptId": script["id"],
            "roleBindings": {"expert": r["expert"], "buyer": r["buyer"]},
            "newGroup": {"title": "Club for {first_name}", "inviteMessage": "Join us here"},
            "target": TARGET,
            "variables": {"first_name": "Tina"},
        },
    )
    assert run["status"] == "creating" and run["chat"] is None
    view = await wait_run(campaign, run["id"], lambda v: v["status"] == "completed", 30)
    created = campaign.fleet.created
    assert len(created) == 1 and created[0].chat.title == "Club for Tina" and created[0].account_id == "acct0"
    assert view["chat"]["chatId"] == created[0].chat.chat_id
    sent = [(d.peer, d.text) for d in campaign.fleet.deliveries]
    assert (created[0].chat.chat_id, "welcome") in sent
    assert (TARGET, "Join us here\nhttps://t.me/+inv0") in sent


async def test_bad_input_is_an_error_envelope(campaign: Any) -> None:
    r = await roles(campaign)
    script = await campaign.data(C.SaveScript, {**SCRIPT, "name": "bad"})
    cases = [
        ({"scriptId": script["id"], "roleBindings": r, "chat": 5, "target": TARGET}, "VALIDATION_ERROR"),
        ({"scriptId": script["id"], "roleBindings": r, "chat": CHAT, "target": -100}, "VALIDATION_ERROR"),
        (
            {"scriptId": script["id"], "roleBindings": {"expert": r["expert"]}, "chat": CHAT, "target": 1},
            "VALIDATION_ERROR",
        ),
        ({"scriptId": "nope", "roleBindings": r, "chat": CHAT, "target": 1}, "NOT_FOUND"),
        (
            {"scriptId": script["id"], "roleBindings": r, "chat": "@unknown_group", "target": 1},
            "VALIDATION_ERROR",
        ),
        ({"scriptId": script["id"], "roleBindings": r, "chat": CHAT, "leadId": "nope"}, "NOT_FOUND"),
        ({"advanceRunId": "nope"}, "NOT_FOUND"),
    ]
    for payload, code in cases:
        reply = await campaign.call(C.StartCollaboration, payload)
        assert not reply["ok"] and reply["error"]["code"] == code, (payload, reply)
    stop = await campaign.call(C.StopCollaboration, {"runId": "nope"})
    assert stop["error"]["code"] == "NOT_FOUND"
    bad_cursor = await campaign.call(C.GetCollaborationStatus, {"cursor": "zzz"})
    assert bad_cursor["error"]["code"] == "VALIDATION_ERROR"


async def test_trigger_rule_starts_a_scenario_for_the_sender(campaign: Any) -> None:
    from tgm_campaign.testing import FleetChat
    from tgm_contracts.commands import automation as A

    r = await roles(campaign)
    fleet = campaign.fleet
    fleet.chats.append(FleetChat(chat_id=CHAT, title="Club", username="clubgroup"))
    for acct in ("acct0", "acct1", "acct2"):
        fleet.accounts[acct].members_of = {CHAT}
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "on price",
            "roles": [{"key": "expert"}],
            "stages": [{"lines": [ln("expert", "Let me explain")]}],
        },
    )
    scenario = await campaign.data(
        C.SaveScenario,
        {
            "name": "price talk",
            "scriptId": script["id"],
            "roleBindings": {"expert": r["expert"]},
            "where": "existing_group",
        },
    )
    bad = await campaign.call(
        A.SaveTriggerRule,
        {"name": "x", "keywordSetIds": [], "actions": [{"type": "start_scenario", "scenarioId": "sc_nope"}]},
    )
    assert not bad["ok"] and bad["error"]["code"] in ("NOT_FOUND", "VALIDATION_ERROR")
    ks = await campaign.data(A.AddKeywordSet, {"name": "pricing", "keywords": ["price"]})
    await campaign.data(
        A.AddGroup,
        {
            "group": CHAT,
            "name": "Club",
            "keywordSetIds": [ks["id"]],
            "listenerAccountIds": ["acct0", "acct1"],
        },
    )
    assert (await campaign.data(A.StartMonitoring, {}))["active"]
    rule = await campaign.data(
        A.SaveTriggerRule,
        {
            "name": "price",
            "keywordSetIds": [ks["id"]],
            "actions": [{"type": "add_lead"}, {"type": "start_scenario", "scenarioId": scenario["id"]}],
            "delayMin": 0,
            "delayMax": 0,
        },
    )
    # the same message as both listeners hear it: one firing, one run
    await fleet.rt.publish(said(21, "what's the price?", "acct0", sender=5151))
    await fleet.rt.publish(said(21, "what's the price?", "acct1", sender=5151))
    fired = await campaign.wait_event(
        lambda e: e["_subject"].endswith("trigger-fired.v1") and e["ruleId"] == rule["id"], 20
    )
    assert fired["outcome"] == "fired", fired
    await fleet.wait_for(lambda f: any(d.text == "Let me explain" for d in f.deliveries), 20)
    runs = await campaign.data(C.GetCollaborationStatus, {"scenarioId": scenario["id"]})
    assert len(runs["items"]) == 1
    run = runs["items"][0]
    assert (
        run["target"]["userId"] == 5151 and run["leadId"] == fired["leadId"] and run["chat"]["chatId"] == CHAT
    )


async def test_a_lead_entering_a_stage_starts_its_scenario_once(campaign: Any) -> None:
    from tgm_campaign.testing import FleetChat
    from tgm_contracts.commands import crm as CRM
    from tgm_contracts.events_campaign import LeadStageChanged
    from tgm_contracts.models.campaign import LeadStage

    r = await roles(campaign)
    fleet = campaign.fleet
    fleet.chats.append(FleetChat(chat_id=CHAT, title="Club", username="clubgroup"))
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "follow up",
            "roles": [{"key": "expert"}],
            "stages": [{"lines": [ln("expert", "Following up")]}],
        },
    )
    scenario = await campaign.data(
        C.SaveScenario,
        {
            "name": "on follow-up",
            "scriptId": script["id"],
            "roleBindings": {"expert": r["expert"]},
            "where": "existing_group",
            "chat": CHAT,
            "startOn": "lead_stage",
            "leadStages": ["follow_up"],
        },
    )
    lead = await campaign.data(CRM.AddLead, {"userId": 6161, "firstName": "Fay", "username": "fayfay"})
    other = await campaign.data(CRM.AddLead, {"userId": 6262, "firstName": "Gus"})
    await campaign.data(CRM.UpdateLeadStage, {"leadId": other["id"], "stage": "replied"})  # not that stage
    await campaign.data(CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "follow_up"})
    await fleet.wait_for(lambda f: any(d.text == "Following up" for d in f.deliveries), 20)
    runs = await campaign.data(C.GetCollaborationStatus, {"scenarioId": scenario["id"]})
    assert [(x["leadId"], x["target"]["userId"], x["chat"]["chatId"]) for x in runs["items"]] == [
        (lead["id"], 6161, CHAT)
    ]
    # The event again (a redelivery, another replica's copy), and the lead leaving the stage and
    # coming back: the run of the first time answers; nobody writes again.
    again = LeadStageChanged(
        lead_id=lead["id"], user_id=6161, from_stage=LeadStage.NEW, to_stage=LeadStage.FOLLOW_UP
    )
    assert await campaign.m.collaboration.on_lead_stage(again) == [runs["items"][0]["id"]]
    await fleet.rt.publish(again)
    await campaign.data(CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "replied"})
    await campaign.data(CRM.UpdateLeadStage, {"leadId": lead["id"], "stage": "follow_up"})
    await campaign.wait_event(
        lambda e: (
            e["_subject"].endswith("lead-stage-changed.v1")
            and e["toStage"] == "follow_up"
            and e["fromStage"] == "replied"
        ),
        10,
    )
    runs = await campaign.data(C.GetCollaborationStatus, {"scenarioId": scenario["id"]})
    assert len(runs["items"]) == 1
    assert sum(d.text == "Following up" for d in fleet.deliveries) == 1


async def test_flood_wait_on_create_group_and_on_an_ai_line_waits_and_continues_once(campaign: Any) -> None:
    from tgm_contracts.commands.ai import AiGenerateResponse

    async def answer(msg: Any) -> None:
        req = json.loads(msg.data)
        ai_calls.append(req)
        data = {"text": "An AI line", "confidence": 0.9, "handoff": False, "language": "en"}
        body = {"ok": True, "data": {**data, "provider": "local", "model": "test", "latencyMs": 1.0}}
        await msg.respond(json.dumps(body).encode())

    ai_calls: list[dict[str, Any]] = []
    await campaign.nc.subscribe(AiGenerateResponse.SUBJECT, cb=answer)
    r = await roles(campaign)
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "flooded",
            "roles": [{"key": "expert"}, {"key": "buyer"}],
            "stages": [
                {
                    "lines": [
                        {
                            **ln("expert", "x"),
                            "type": "ai_generate",
                            "text": None,
                            "prompt": "Greet the group",
                        },
                        ln("buyer", "after the wait"),
                    ]
                }
            ],
        },
    )
    fleet = campaign.fleet
    fleet.fail("FLOOD_WAIT", count=1, account="acct0", peer="create-group", retry_after=8)
    chat = -1_009_000_000_000  # FakeFleet's first created group
    # the AI line's send will meet a FLOOD_WAIT too: the account rests, the line is sent once after it
    fleet.fail("FLOOD_WAIT", count=1, account="acct0", peer=chat, retry_after=3)
    t0 = time.monotonic()
    run = await campaign.data(
        C.StartCollaboration,
        {
            "scriptId": script["id"],
            "roleBindings": {"expert": r["expert"], "buyer": r["buyer"]},
            "newGroup": {"title": "Flooded club"},
            "target": TARGET,
        },
    )
    await fleet.wait_for(lambda f: len(f.created) == 1, 20)
    waited = time.monotonic() - t0
    assert waited >= 7.5, waited  # tried again after Telegram's wait, not every round
    assert [a for a in fleet.attempts if a[1] == "create-group"] == [("acct0", "create-group", "FLOOD_WAIT")]
    assert fleet.created[0].chat.chat_id == chat
    view = await wait_run(campaign, run["id"], lambda v: v["status"] == "completed", 40)
    sent = [(d.account_id, d.text) for d in fleet.deliveries if d.peer == chat]
    assert sent == [("acct0", "An AI line"), ("acct1", "after the wait")], sent
    assert any(a[2] == "FLOOD_WAIT" and a[0] == "acct0" and a[1] != "create-group" for a in fleet.attempts)
    assert len(ai_calls) == 1  # the line was written once, not again for the retry
    assert view["messagesSent"] == 2 and len(fleet.created) == 1
