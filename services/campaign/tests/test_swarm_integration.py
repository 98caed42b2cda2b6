"""Swarms on a real nats-server and database: three role accounts in one group (FakeFleet), every
group message published by each of the three listeners as tg-session does, two campaign replicas
consuming them.

- Messages racing across replicas and listener copies: each is decided once (one claim), answered
  at most once (one job, one AI call), by the account whose turn it is, as a group reply to it;
  a burst of questions at one instant gets one answer (the group interval), the traffic share cap
  holds over any window, accounts rotate, non-questions and the swarm's own messages are left
  alone; get-swarm-status counts exactly that.
- start/stop: the group is published to tg-session while the swarm runs (monitoring off), a second
  swarm in the chat is a CONFLICT, bad roles are refused, a duration ends it (tick), the AI failing
  is recorded without a message.

The swarms' clock is a test clock (`Clock`): each round of messages is decided at a known instant,
so the intervals and caps are checked exactly without waiting them out in real time. ai's
ai-generate-response is a plain NATS responder here."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_campaign.testing import FleetChat
from tgm_contracts import streams
from tgm_contracts.commands import automation as A
from tgm_contracts.commands import collaboration as C
from tgm_contracts.commands.ai import AiGenerateResponse
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHAT = -1002555
ACCOUNTS = ("acct0", "acct1", "acct2")


class Clock:
    """The swarms' clock: real time minus an hour, plus what the test advanced (jobs are due now)."""

    def __init__(self) -> None:
        self.base = time.time() - 3600
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Ai:
    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.calls: list[dict[str, Any]] = []
        self.fail = False

    async def start(self) -> None:
        async def answer(msg: Any) -> None:
            req = json.loads(msg.data)
            self.calls.append(req)
            if self.fail:
                body = {"ok": False, "error": {"code": "UNAVAILABLE", "message": "no provider configured"}}
            else:
                body = {
                    "ok": True,
                    "data": {
                        "text": f"{req['accountId']} on: {req['message']} {{not spintax}}",
                        "confidence": 0.8,
                        "handoff": False,
                        "language": "en",
                        "provider": "local",
                        "model": "test",
                        "latencyMs": 1.0,
                    },
                }
            await msg.respond(json.dumps(body).encode())

        await self.nc.subscribe(AiGenerateResponse.SUBJECT, cb=answer)


def copies(
    message_id: int, text: str, sender: int = 101, outgoing_by: str | None = None
) -> list[MessageReceived]:
    """The message as each of the three role accounts' sessions publishes it."""
    return [
        MessageReceived(
            account_id=acct,
            chat_kind="supergroup",
            chat_id=CHAT,
            chat_title="Support group",
            message_id=message_id,
            sender_id=sender,
            sender=TelegramUser(user_id=sender, first_name="Ann", username=f"u{sender}"),
            text=text,
            date=datetime.now(UTC),
            is_outgoing=acct == outgoing_by,
        )
        for acct in ACCOUNTS
    ]


async def drained(campaign: Any, eventually: Callable[..., Any]) -> None:
    js = campaign.nc.jetstream()

    async def done() -> bool:
        info = await js.consumer_info("TGM_EVENTS", "campaign_message_received")
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(done, timeout=30, interval=0.05)


async def roles(campaign: Any) -> list[str]:
    ids = []
    for i, acct in enumerate(ACCOUNTS):
        role = await campaign.data(
            C.SaveRole,
            {
                "name": f"Role {i}",
                "type": ["expert", "satisfied_customer", "newbie"][i],
                "boundAccountId": acct,
                "personality": {"description": f"persona {i}", "speakingStyle": "casual"},
                "aiConfig": {"typingSpeed": 2000, "emojiFrequency": "none"},
            },
        )
        ids.append(role["id"])
    return ids


def clock_all(campaign: Any, clock: Clock, fleet: dict[str, tuple[int, str]] | None = None) -> None:
    """Give every replica's swarms the test clock, and (FakeFleet's accounts have no Telegram
    profile) the fleet's Telegram ids and usernames as tg-session's get-accounts would give them."""
    for rt in [campaign.rt, *campaign.extra]:
        rt.app.swarms.clock = clock
        if fleet is not None:
            rt.app.swarms._fleet = (time.monotonic() + 3600, dict(fleet))


async def watched(campaign: Any) -> list[int]:
    kv = await campaign.nc.jetstream().key_value(streams.MONITORED_CHATS.bucket)
    entry = await kv.get(streams.MONITORED_CHATS_KEY)
    return list(json.loads(entry.value)["chatIds"])


async def test_two_replicas_racing_answer_each_message_once(
    campaign: Any, eventually: Callable[..., Any]
) -> None:
    ai = Ai(campaign.nc)
    await ai.start()
    for acct in ACCOUNTS:
        campaign.fleet.accounts[acct].members_of = {CHAT}
    await campaign.replica("campaign-2")
    clock = Clock()
    clock_all(campaign, clock, {acct: (7000 + i, f"role{i}") for i, acct in enumerate(ACCOUNTS)})
    role_ids = await roles(campaign)
    swarm = await campaign.data(
        C.StartSwarm,
        {
            "chat": CHAT,
            "roleIds": role_ids,
            "triggers": {"questions": True, "mentions": False},
            "replyProbability": 1.0,
            "minIntervalSeconds": 10,
            "maxMessagesPerHour": 120,
            "maxTrafficShare": 0.25,
            "trafficWindow": 4,
            "accountMinIntervalSeconds": 0,
        },
    )
    assert swarm["status"] == "running" and swarm["chatId"] == CHAT
    assert [p["accountId"] for p in swarm["participants"]] == list(ACCOUNTS)
    assert CHAT in await watched(campaign)  # published to tg-session with monitoring off
    pub = campaign.fleet.rt.publish

    # a burst of 6 questions at one instant, every copy at once, two replicas: one answer
    await asyncio.gather(*(pub(e) for m in range(1, 7) for e in copies(m, f"question {m}?")))
    await drained(campaign, eventually)
    jobs = await campaign.rt.db["jobs"].find({}).to_list()
    assert len(jobs) == 1 and len(ai.calls) == 1

    # three remarks (the burst leaves the traffic window), then rounds 11 s apart (past the
    # interval): a question and the swarm's own message at once, then a remark
    member_order = list(range(1, 7))
    for m in (50, 51, 52):
        clock.advance(11)
        await asyncio.gather(*(pub(e) for e in copies(m, "ok")))
        await drained(campaign, eventually)
        member_order.append(m)
    for r in range(10):
        clock.advance(11)
        q, remark, own = 100 + 3 * r, 101 + 3 * r, 102 + 3 * r
        await asyncio.gather(
            *(pub(e) for e in copies(q, f"how does plan {r} work")),
            *(
                pub(e)
                for e in copies(own, f"own line {r}?", sender=7000 + r % 3, outgoing_by=ACCOUNTS[r % 3])
            ),
        )
        await drained(campaign, eventually)
        await asyncio.gather(*(pub(e) for e in copies(remark, f"thanks {r}")))
        await drained(campaign, eventually)
        member_order += [q, remark]

    jobs = await campaign.rt.db["jobs"].find({}).to_list()
    replied = [j["body"]["reply_to"] for j in jobs]
    assert len(replied) == len(set(replied)), "a message answered twice"
    assert len(ai.calls) == len(jobs)
    claims = await campaign.rt.db["swarm_claims"].find({}).to_list()
    assert len(claims) == 6 + 3 + 30  # one claim per message, whatever the copies and replicas
    for j in jobs:
        assert (
            j["kind"] == "group"
            and j["peer"] == CHAT
            and j["key"] == f"swm:{swarm['id']}:{CHAT}:{j['body']['reply_to']}"
        )
        assert j["body"]["text"].startswith(j["account_id"]) and j["body"]["text"].endswith(
            "\\{not spintax\\}"
        )
    answered = set(replied)
    # one of the burst, then every other question: the share cap (1 in 4 members' messages); never
    # a remark or the swarm's own message
    assert len(answered & set(range(1, 7))) == 1
    assert answered - set(range(1, 7)) == {100 + 3 * r for r in range(0, 10, 2)}
    for i in range(len(member_order)):
        window = member_order[i : i + 4]
        assert sum(1 for m in window if m in answered) <= 1, (window, sorted(answered))
    # rotation: the answers in message order go acct0, acct1, acct2, acct0, ...
    by_message = sorted(jobs, key=lambda j: member_order.index(j["body"]["reply_to"]))
    assert [j["account_id"] for j in by_message] == [ACCOUNTS[i % 3] for i in range(len(by_message))]
    assert len(jobs) == 6

    status = (await campaign.data(C.GetSwarmStatus, {"swarmId": swarm["id"]}))["items"][0]
    stats = status["stats"]
    assert stats["messagesSeen"] == 39 and stats["answered"] == len(jobs) == status["messagesSent"]
    reasons = stats["reasons"]
    # the swarm's own message: whichever copy came first, the author's (own) or another's (role)
    assert reasons.get("own_message", 0) + reasons.get("role_account", 0) == 10
    assert reasons["no_trigger"] == 13 and reasons["answered"] == 6
    assert reasons["group_interval"] == 5 and reasons["share_cap"] == 5
    assert sum(reasons.values()) == 39
    assert sum(a["answered"] for a in stats["accounts"]) == len(jobs)
    last = stats["lastDecisions"]
    assert len(last) == 20 and last[0]["messageId"] == 101 + 27  # newest first
    job_of = {j["body"]["reply_to"]: j["_id"] for j in jobs}
    for d in last:
        assert (d["outcome"] == "answered") == (d["messageId"] in answered)
        assert d["jobId"] == job_of.get(d["messageId"])

    # the answers go out through the queue, each once
    await campaign.fleet.wait_for(lambda f: len(f.deliveries) == len(jobs), timeout=30)
    assert sorted(d.job_id for d in campaign.fleet.deliveries) == sorted(job_of.values())

    # stopped: no longer watched, later messages left alone
    stopped = await campaign.data(C.StopSwarm, {"swarmId": swarm["id"]})
    assert stopped["status"] == "stopped" and stopped["stopReason"] == "stopped"
    assert CHAT not in await watched(campaign)
    again = await campaign.data(C.StopSwarm, {"swarmId": swarm["id"]})
    assert again["status"] == "stopped" and again["stoppedAt"] == stopped["stoppedAt"]
    for rt in [campaign.rt, *campaign.extra]:
        rt.app.swarms._running.clear()
    clock.advance(60)
    await asyncio.gather(*(pub(e) for e in copies(999, "anyone there?")))
    await drained(campaign, eventually)
    assert await campaign.rt.db["jobs"].count_documents({}) == len(jobs)
    assert await campaign.rt.db["swarm_claims"].count_documents({}) == 39
    changed = [e for e in campaign.events if e["_subject"].endswith("swarm-state-changed.v1")]
    assert [e["status"] for e in changed] == ["running", "stopped"]


async def test_start_checks_conflict_duration_and_ai_failure(
    campaign: Any, eventually: Callable[..., Any]
) -> None:
    ai = Ai(campaign.nc)
    await ai.start()
    clock = Clock()
    clock_all(campaign, clock)
    role_ids = await roles(campaign)
    base = {"chat": CHAT, "roleIds": role_ids[:2], "replyProbability": 1.0, "minIntervalSeconds": 10}

    missing = await campaign.call(C.StartSwarm, {**base, "roleIds": [role_ids[0], "role_nope"]})
    assert missing["error"]["code"] == "NOT_FOUND"
    private = await campaign.call(C.StartSwarm, {**base, "chat": 12345})
    assert private["error"]["code"] == "VALIDATION_ERROR"
    unknown_set = await campaign.call(C.StartSwarm, {**base, "triggers": {"keywordSetIds": ["ks_nope"]}})
    assert unknown_set["error"]["code"] == "NOT_FOUND"
    inactive = await campaign.data(C.SaveRole, {"name": "Sleeper", "isActive": False})
    off = await campaign.call(C.StartSwarm, {**base, "roleIds": [role_ids[0], inactive["id"]]})
    assert off["error"]["code"] == "VALIDATION_ERROR" and "not active" in off["error"]["message"]

    swarm = await campaign.data(C.StartSwarm, {**base, "durationMinutes": 5})
    assert swarm["endsAt"] is not None
    clash = await campaign.call(C.StartSwarm, {**base, "roleIds": role_ids[1:]})
    assert clash["error"]["code"] == "CONFLICT" and swarm["id"] in clash["error"]["message"]
    # a role in use by the running swarm cannot be deleted
    busy = await campaign.call(C.DeleteRole, {"id": role_ids[0]})
    assert busy["error"]["code"] == "CONFLICT"

    # the AI failing: recorded, no message
    ai.fail = True
    await asyncio.gather(*(campaign.fleet.rt.publish(e) for e in copies(5, "price?")))
    await drained(campaign, eventually)
    status = (await campaign.data(C.GetSwarmStatus, {"swarmId": swarm["id"]}))["items"][0]
    assert status["stats"]["reasons"] == {"ai_failed": 1} and status["messagesSent"] == 0
    decision = status["stats"]["lastDecisions"][0]
    assert decision["outcome"] == "ai_failed" and "no provider configured" in decision["detail"]
    assert "no provider configured" in status["lastError"]
    assert await campaign.rt.db["jobs"].count_documents({}) == 0

    # the duration ends it (the runner's round)
    clock.advance(5 * 60 + 1)
    await campaign.rt.app.swarms.tick()
    status = (await campaign.data(C.GetSwarmStatus, {"statuses": ["stopped"]}))["items"]
    assert [(s["id"], s["stopReason"]) for s in status] == [(swarm["id"], "ended")]
    # the chat is free again
    second = await campaign.data(C.StartSwarm, {**base, "roleIds": role_ids[1:]})
    assert second["status"] == "running"
    listed = await campaign.data(C.GetSwarmStatus, {})
    assert [s["id"] for s in listed["items"]] == [second["id"], swarm["id"]] and listed["total"] == 2

    # a monitored group, and a chat by username (resolved by tg-session through a role account)
    other, third = -1002666, -1002777
    campaign.fleet.chats.append(FleetChat(chat_id=other, title="Monitored", username="monitoredgrp"))
    campaign.fleet.chats.append(FleetChat(chat_id=third, title="By name", username="bynamegrp"))
    group = await campaign.data(A.AddGroup, {"group": other, "name": "Monitored"})
    by_group = await campaign.data(C.StartSwarm, {**base, "chat": None, "groupId": group["id"]})
    assert by_group["chatId"] == other and by_group["groupId"] == group["id"]
    assert [s["id"] for s in (await campaign.data(C.GetSwarmStatus, {"groupId": group["id"]}))["items"]] == [
        by_group["id"]
    ]
    by_name = await campaign.data(C.StartSwarm, {**base, "chat": "@bynamegrp"})
    assert by_name["chatId"] == third and by_name["chatView"]["title"] == "By name"
    unknown = await campaign.call(C.StartSwarm, {**base, "chat": "@nosuchgroup"})
    assert unknown["error"]["code"] == "NOT_FOUND"
    missing_group = await campaign.call(C.StartSwarm, {**base, "chat": None, "groupId": "grp_nope"})
    assert missing_group["error"]["code"] == "NOT_FOUND"
    assert (await campaign.call(C.GetSwarmStatus, {"swarmId": "swm_nope"}))["error"]["code"] == "NOT_FOUND"
    assert (await campaign.call(C.StopSwarm, {"swarmId": "swm_nope"}))["error"]["code"] == "NOT_FOUND"
    assert set(await watched(campaign)) >= {CHAT, other, third}


async def test_script_mode_plays_the_lines_in_turn_then_stops(
    campaign: Any, eventually: Callable[..., Any]
) -> None:
    for acct in ACCOUNTS:
        campaign.fleet.accounts[acct].members_of = {CHAT}
    clock = Clock()
    clock_all(campaign, clock)
    role_ids = await roles(campaign)
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "welcome lines",
            "roles": [{"key": "host"}, {"key": "guest"}],
            "stages": [
                {"lines": [{"slot": "host", "text": "Hi {first_name}, good question"}]},
                {"lines": [{"slot": "guest", "text": "{Same|Same} here, {first_name}"}]},
            ],
        },
    )
    swarm = await campaign.data(
        C.StartSwarm,
        {
            "chat": CHAT,
            "roleIds": role_ids[:2],
            "mode": "script",
            "scriptId": script["id"],
            "replyProbability": 1.0,
            "minIntervalSeconds": 10,
            "maxTrafficShare": 1.0,
        },
    )
    for m in (1, 2, 3):
        await asyncio.gather(*(campaign.fleet.rt.publish(e) for e in copies(m, f"question {m}?")))
        await drained(campaign, eventually)
        clock.advance(11)
    await campaign.fleet.wait_for(lambda f: len(f.deliveries) == 2, timeout=30)
    sent = sorted(campaign.fleet.deliveries, key=lambda d: d.at)
    assert [(d.account_id, d.text) for d in sent] == [
        ("acct0", "Hi Ann, good question"),
        ("acct1", "Same here, Ann"),
    ]
    status = (await campaign.data(C.GetSwarmStatus, {"swarmId": swarm["id"]}))["items"][0]
    assert status["status"] == "stopped" and status["stopReason"] == "script_finished"
    assert status["stats"]["answered"] == 2 and status["stats"]["messagesSeen"] == 2  # the 3rd: stopped
    # the script is in use while the swarm runs, not after
    assert (await campaign.call(C.DeleteScript, {"id": script["id"]}))["ok"]


async def test_a_crash_mid_answer_is_resumed_by_the_redelivery_without_a_second_job(campaign: Any) -> None:
    ai = Ai(campaign.nc)
    await ai.start()
    for acct in ACCOUNTS:
        campaign.fleet.accounts[acct].members_of = {CHAT}
    clock = Clock()
    clock_all(campaign, clock)
    role_ids = await roles(campaign)
    swarm = await campaign.data(
        C.StartSwarm, {"chat": CHAT, "roleIds": role_ids, "replyProbability": 1.0, "minIntervalSeconds": 10}
    )
    service = campaign.m.swarms
    store = service.stores.swarms
    real_done = store.done
    crashes = 0

    async def crash_once(chat_id: int, message_id: int, fields: Any) -> bool:
        nonlocal crashes
        if fields.get("job_id") and crashes == 0:  # after the job is made, before the claim is done
            crashes += 1
            raise ConnectionError("the database went away")
        return await real_done(chat_id, message_id, fields)

    store.done = crash_once
    evt, other_copy = copies(7, "any discount?")[:2]
    with pytest.raises(ConnectionError):
        await service.on_message(evt)
    await service.on_message(other_copy)  # another listener's copy: not its message
    clock.advance(30)  # redelivered later: the decision taken then is kept, not made again
    await service.on_message(evt)
    store.done = real_done
    jobs = await campaign.rt.db["jobs"].find({}).to_list()
    assert (
        len(jobs) == 1
        and jobs[0]["key"] == f"swm:{swarm['id']}:{CHAT}:7"
        and jobs[0]["account_id"] == "acct0"
    )
    assert [c["seed"] for c in ai.calls] == [ai.calls[0]["seed"]] * 2  # asked again, the same seed
    status = (await campaign.data(C.GetSwarmStatus, {"swarmId": swarm["id"]}))["items"][0]
    assert status["stats"]["messagesSeen"] == 1 and status["stats"]["answered"] == 1
    assert status["stats"]["lastDecisions"][0]["jobId"] == jobs[0]["_id"]


async def test_stop_cancels_an_answer_still_waiting(campaign: Any, eventually: Callable[..., Any]) -> None:
    from tgm_contracts.commands import messaging as M

    ai = Ai(campaign.nc)
    await ai.start()
    clock = Clock()
    clock_all(campaign, clock)
    role_ids = await roles(campaign)
    swarm = await campaign.data(
        C.StartSwarm,
        {"chat": CHAT, "roleIds": role_ids[:2], "replyProbability": 1.0, "minIntervalSeconds": 10},
    )
    await campaign.data(M.PauseQueue, {"scope": "all"})  # the answer waits, as in its typing time
    await asyncio.gather(*(campaign.fleet.rt.publish(e) for e in copies(7, "what does it cost?")))
    await drained(campaign, eventually)
    job = await campaign.rt.db["jobs"].find_one({"key": {"$regex": f"^swm:{swarm['id']}:"}})
    assert job is not None and job["state"] in ("pending", "scheduled") and job["campaign_id"] == swarm["id"]
    await campaign.data(C.StopSwarm, {"swarmId": swarm["id"]})
    job = await campaign.rt.db["jobs"].find_one({"_id": job["_id"]})
    assert (job["state"], job["reason"]) == ("cancelled", "campaign_stopped")
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    assert not campaign.fleet.deliveries
