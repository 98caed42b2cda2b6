"""The queue and the scheduler against a real nats-server and database, with FakeFleet as tg-session."""

from __future__ import annotations

from collections import Counter

import pytest
from tgm_contracts.commands import messaging as M

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def sent(docs):
    return [d for d in docs if d["state"] == "sent"]


async def test_bulk_queue_is_delivered_exactly_once_across_a_pool(campaign) -> None:
    recipients = [{"peer": 1000 + i} for i in range(40)]
    out = await campaign.data(M.QueueMessage, {"text": "{Hi|Hello} there", "recipients": recipients})
    assert out["created"] == 40 and out["duplicates"] == 0 and len(out["jobs"]) == 40
    docs = await campaign.wait_jobs(lambda d: len(sent(d)) == 40)
    per_job = Counter(d.job_id for d in campaign.fleet.deliveries)
    assert len(per_job) == 40 and set(per_job.values()) == {1}
    assert {d.account_id for d in campaign.fleet.deliveries} == {"acct0", "acct1", "acct2"}
    assert all(d["text"] in ("Hi there", "Hello there") for d in docs)
    assert all(d["message_id"] and d["history"][-1]["outcome"] == "sent" for d in docs)
    # the same batch again (same request idempotency key) creates nothing
    again = await campaign.data(
        M.QueueMessage,
        {"text": "{Hi|Hello} there", "recipients": recipients, "idempotencyKey": "batch-1"},
    )
    assert again["created"] == 40
    dup = await campaign.data(
        M.QueueMessage,
        {"text": "{Hi|Hello} there", "recipients": recipients, "idempotencyKey": "batch-1"},
    )
    assert dup["created"] == 0 and dup["duplicates"] == 40 and dup["batchId"] == again["batchId"]
    assert all(j["duplicate"] for j in dup["jobs"])


async def test_immediate_send_answers_with_the_message_id(campaign) -> None:
    out = await campaign.data(M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1"})
    assert out["state"] == "sent" and out["accountId"] == "acct1" and out["messageId"] > 0
    assert campaign.fleet.deliveries[-1].text == "hello"
    again = await campaign.data(
        M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1", "idempotencyKey": "k1"}
    )
    same = await campaign.data(
        M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1", "idempotencyKey": "k1"}
    )
    assert same["duplicate"] and same["jobId"] == again["jobId"] and same["messageId"] == again["messageId"]
    assert len(campaign.fleet.deliveries) == 2
    evt = await campaign.wait_event(lambda e: e.get("jobId") == out["jobId"] and e.get("state") == "sent")
    assert evt["messageId"] == out["messageId"]


def by_id(docs, job_id):
    return next(d for d in docs if d["_id"] == job_id)


async def test_flood_wait_moves_the_account_window_and_the_job_elsewhere(campaign) -> None:
    campaign.fleet.fail("FLOOD_WAIT", account="acct0", retry_after=30)
    out = await campaign.data(
        M.QueueMessage, {"text": "hi", "recipients": [{"peer": 2000 + i} for i in range(6)], "pool": {}}
    )
    docs = await campaign.wait_jobs(lambda d: len(sent(d)) == 6)
    hit = [a for a in campaign.fleet.attempts if a[2] == "FLOOD_WAIT"]
    assert len(hit) == 1
    flooded_job = by_id(docs, hit[0][1])
    assert flooded_job["account_id"] != "acct0"  # the pool job went to another account
    assert [h["outcome"] for h in flooded_job["history"]] == ["flood_wait", "sent"]
    assert flooded_job["attempts"] == 1  # a flood wait is not the job's failed attempt
    # acct0 sends nothing until the wait (plus margin) is over
    after = [d for d in campaign.fleet.deliveries if d.account_id == "acct0"]
    assert not after
    status = await campaign.data(M.GetQueueStatus, {"accountId": "acct0"})
    row = status["accounts"][0]
    assert any(lim["kind"] == "flood_wait" for lim in row["limits"])
    evt = await campaign.wait_event(lambda e: e["_subject"].endswith("account-pacing-changed.v1"))
    assert evt["accountId"] == "acct0" and evt["limit"] == "flood_wait"
    assert out["created"] == 6


async def test_fixed_account_flood_wait_reschedules_past_the_wait(campaign) -> None:
    campaign.fleet.fail("FLOOD_WAIT", account="acct2", retry_after=1)
    out = await campaign.data(
        M.SendMessage, {"peer": 31, "text": "x", "accountId": "acct2", "waitSeconds": 10}
    )
    assert out["state"] == "sent"
    job = await campaign.rt.db["jobs"].find_one({"_id": out["jobId"]})
    flood, ok = job["history"]
    assert flood["outcome"] == "flood_wait" and ok["outcome"] == "sent"
    # sent no earlier than the wait plus the safety margin
    delivered = campaign.fleet.deliveries[-1].at
    assert delivered - flood["at"].timestamp() >= 1.0 + 0.2 - 0.05


async def test_peer_flood_cools_the_account_and_moves_pool_jobs(campaign) -> None:
    await campaign.fleet.unserve("acct2")
    campaign.fleet.fail("PEER_FLOOD", account="acct0")
    await campaign.data(M.QueueMessage, {"text": "hi", "recipients": [{"peer": 3000 + i} for i in range(5)]})
    docs = await campaign.wait_jobs(lambda d: len(sent(d)) == 5)
    flooded = [a for a in campaign.fleet.attempts if a[2] == "PEER_FLOOD"]
    assert len(flooded) == 1
    assert {d.account_id for d in campaign.fleet.deliveries} == {"acct1"}
    moved = by_id(docs, flooded[0][1])
    assert "acct0" in moved["exclude"] and moved["account_id"] == "acct1"
    # a job fixed to the cooled-down account waits for the cool-down, with the reason
    fixed = await campaign.data(
        M.SendMessage, {"peer": 3999, "text": "x", "accountId": "acct0", "waitSeconds": 1}
    )
    assert fixed["state"] == "scheduled" and fixed["reason"] == "peer_flood"
    status = await campaign.data(M.GetQueueStatus, {"accountId": "acct0"})
    assert status["accounts"][0]["cooldownUntil"] is not None


async def test_errors_that_will_not_heal_fail_the_job_with_the_reason(campaign) -> None:
    campaign.fleet.fail("USER_PRIVACY_RESTRICTED", peer=41)
    campaign.fleet.fail("USER_DEACTIVATED", peer=42)
    a = await campaign.data(M.SendMessage, {"peer": 41, "text": "x"})
    b = await campaign.data(M.SendMessage, {"peer": 42, "text": "x"})
    assert (a["state"], a["reason"]) == ("failed", "privacy_restricted")
    assert (b["state"], b["reason"]) == ("failed", "user_deactivated")
    assert "USER_PRIVACY_RESTRICTED" in a["lastError"]
    assert not campaign.fleet.deliveries


async def test_a_late_answer_is_retried_on_the_same_account_and_not_sent_twice(campaign) -> None:
    campaign.rt.app.scheduler.send_timeout = 2.0  # the retry's answer has 2 s even under load
    campaign.fleet.fail("TIMEOUT", late_by=4.0)
    out = await campaign.data(M.SendMessage, {"peer": 51, "text": "once", "waitSeconds": 15})
    assert out["state"] == "sent"
    assert len(campaign.fleet.deliveries) == 1
    outcomes = [a[2] for a in campaign.fleet.attempts if a[1] == out["jobId"]]
    assert outcomes == ["TIMEOUT", "duplicate"]
    accounts = {a[0] for a in campaign.fleet.attempts if a[1] == out["jobId"]}
    assert len(accounts) == 1  # the retry went where the first attempt went
    job = await campaign.rt.db["jobs"].find_one({"_id": out["jobId"]})
    assert job["attempts"] == 2 and job["duplicate_delivery"] is True


async def test_an_account_nobody_holds_waits_then_sends(campaign) -> None:
    await campaign.fleet.unserve("acct1")
    out = await campaign.data(
        M.SendMessage, {"peer": 61, "text": "later", "accountId": "acct1", "waitSeconds": 1}
    )
    assert out["state"] in ("scheduled", "pending") and out["reason"] == "account_unavailable"
    await campaign.fleet.serve("acct1")
    docs = await campaign.wait_jobs(lambda d: len(sent(d)) == 1)
    assert docs[0]["account_id"] == "acct1" and docs[0]["attempts"] == 1


async def test_unknown_account_and_bad_input_are_refused(campaign) -> None:
    r = await campaign.call(M.SendMessage, {"peer": 1, "text": "x", "accountId": "ghost"})
    assert not r["ok"] and r["error"]["code"] == "NOT_FOUND"
    r = await campaign.call(M.QueueMessage, {"text": "Hi {first name}", "recipients": [{"peer": 1}]})
    assert r["error"]["code"] == "VALIDATION_ERROR" and "character 4" in r["error"]["message"]
    r = await campaign.call(M.QueueMessage, {"text": "x", "recipients": []})
    assert r["error"]["code"] == "VALIDATION_ERROR"
    r = await campaign.call(M.SendGroupMessage, {"group": "t.me/+AbCdEfGh12345", "text": "x"})
    assert r["error"]["code"] == "VALIDATION_ERROR" and "invite link" in r["error"]["message"]
    r = await campaign.call(M.SendMessage, {"peer": 1, "templateId": "nope"})
    assert r["error"]["code"] == "NOT_FOUND"


async def test_a_pool_job_refused_in_a_chat_tries_the_other_accounts_then_fails(campaign) -> None:
    group = -1001234567890
    campaign.fleet.fail("CHANNEL_PRIVATE", account="acct0", peer=group)
    ok = await campaign.data(M.SendGroupMessage, {"group": group, "text": "post"})
    assert ok["state"] == "sent" and ok["accountId"] != "acct0"
    job = await campaign.rt.db["jobs"].find_one({"_id": ok["jobId"]})
    assert job["kind"] == "group" and "acct0" in job["exclude"]
    # no account may post there: the job fails with the reason once every account was refused
    other = -1009999999999
    campaign.fleet.fail("CHAT_WRITE_FORBIDDEN", peer=other, count=3)
    out = await campaign.data(M.SendGroupMessage, {"group": other, "text": "post", "waitSeconds": 10})
    job = await campaign.rt.db["jobs"].find_one({"_id": out["jobId"]})
    assert out["state"] == "failed" and out["reason"] == "chat_write_forbidden", (
        job["exclude"],
        job["history"],
        campaign.fleet.attempts,
    )
    # a fixed account refused in a chat fails at once
    fixed = await campaign.data(M.SendGroupMessage, {"group": group, "text": "x", "accountId": "acct0"})
    assert fixed["state"] == "sent"  # the injected refusal was used up above; acct0 may post now


async def test_a_retried_job_counts_once_against_the_recipient_cap(campaign) -> None:
    await campaign.settings("compliance", {"perRecipientDailyCap": 1})
    campaign.rt.app.scheduler.send_timeout = 2.0  # the retry's answer has 2 s even under load
    campaign.fleet.fail("TIMEOUT", late_by=4.0)
    first = await campaign.data(M.SendMessage, {"peer": 71, "text": "once", "waitSeconds": 15})
    assert first["state"] == "sent"  # its retry was not held by its own first count
    outcomes = [a[2] for a in campaign.fleet.attempts if a[1] == first["jobId"]]
    assert outcomes == ["TIMEOUT", "duplicate"]
    # A held send answers as soon as it is held; the wait only bounds a slow machine (2 s was not
    # always enough for the decision under two pytest-xdist workers).
    second = await campaign.data(M.SendMessage, {"peer": 71, "text": "twice", "waitSeconds": 15})
    assert second["state"] == "scheduled" and second["reason"] == "recipient_cap"
    doc = await campaign.rt.db["pacing"].find_one({"_id": "rcpt:id:71"})
    assert doc["total"] == 1 and [e[1] for e in doc["entries"]] == [first["jobId"]]


async def test_a_flood_wait_recorded_by_tg_session_holds_the_queue(campaign, eventually) -> None:
    from datetime import UTC, datetime, timedelta

    from tgm_contracts.events_session import FloodWaitRecorded

    until = datetime.now(UTC) + timedelta(minutes=10)
    await campaign.fleet.rt.publish(
        FloodWaitRecorded(
            account_id="acct2", seconds=600, until=until, category="send", method="messages.SendMessage"
        )
    )

    async def held():
        status = await campaign.data(M.GetQueueStatus, {"accountId": "acct2"})
        return (
            any(lim["kind"] == "flood_wait" for lim in status["accounts"][0]["limits"])
            if status["accounts"]
            else False
        )

    await eventually(held)
    out = await campaign.data(
        M.SendMessage, {"peer": 81, "text": "x", "accountId": "acct2", "waitSeconds": 2}
    )
    assert out["state"] == "scheduled" and out["reason"] == "flood_wait"
    assert not campaign.fleet.deliveries
