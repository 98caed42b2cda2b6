"""Blacklist, stop-word opt-outs from inbound messages, per-recipient caps, chat history built from
tg-session's events, templates through the commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.events_session import MessageSent as SessionMessageSent
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def incoming(account: str, user_id: int, text: str, message_id: int, *, first="Ann", username=None, at=None):
    return MessageReceived(
        account_id=account,
        chat_kind="private",
        chat_id=user_id,
        message_id=message_id,
        sender_id=user_id,
        sender=TelegramUser(user_id=user_id, first_name=first, username=username),
        text=text,
        date=at or datetime.now(UTC),
    )


async def publish(campaign, event) -> None:
    """As tg-session does: into the events stream."""
    await campaign.fleet.rt.publish(event)


async def test_blacklisted_users_are_never_messaged(campaign) -> None:
    await campaign.data(M.PauseQueue, {"scope": "all"})
    out = await campaign.data(
        M.QueueMessage, {"text": "hi", "recipients": [{"peer": 7001}, {"peer": "@bad_guy"}, {"peer": 7003}]}
    )
    assert out["created"] == 3
    res = await campaign.data(CRM.BlacklistUser, {"telegramId": 7001, "reason": "asked us to stop"})
    assert res["blacklisted"] and res["cancelledJobs"] == 1 and res["userId"] == 7001
    res = await campaign.data(CRM.BlacklistUser, {"username": "@Bad_Guy"})
    assert res["cancelledJobs"] == 1
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    docs = await campaign.wait_jobs(lambda d: sum(x["state"] == "sent" for x in d) == 1)
    skipped = {d["peer_key"]: d for d in docs if d["state"] == "skipped"}
    assert set(skipped) == {"id:7001", "@bad_guy"}
    assert all(d["reason"] == "blacklisted" for d in skipped.values())
    assert [d.peer for d in campaign.fleet.deliveries] == [7003]
    # new jobs to them are skipped at once, recorded with the reason
    again = await campaign.data(M.SendMessage, {"peer": 7001, "text": "hi"})
    assert again["state"] == "skipped" and again["reason"] == "blacklisted"
    evt = await campaign.wait_event(lambda e: e["_subject"].endswith("user-blacklisted.v1"))
    assert evt["blacklisted"] is True
    # lifting the ban lets messages through again
    await campaign.data(CRM.BlacklistUser, {"userId": 7001, "blacklist": False})
    ok = await campaign.data(M.SendMessage, {"peer": 7001, "text": "welcome back"})
    assert ok["state"] == "sent"
    r = await campaign.call(CRM.BlacklistUser, {"reason": "x"})
    assert r["error"]["code"] == "VALIDATION_ERROR"


async def test_a_stop_word_opts_the_user_out_of_every_account(campaign) -> None:
    await campaign.data(M.PauseQueue, {"scope": "all"})
    await campaign.data(
        M.QueueMessage,
        {"text": "offer", "recipients": [{"peer": 8001}, {"peer": 8002}], "accountId": "acct2"},
    )
    await publish(campaign, incoming("acct0", 8001, "請不要再發了", 11))
    await publish(campaign, incoming("acct0", 8002, "thanks, how much is it?", 12))
    evt = await campaign.wait_event(lambda e: e["_subject"].endswith("user-opted-out.v1"))
    assert evt["userId"] == 8001 and evt["stopWord"] == "不要再發" and evt["cancelledJobs"] == 1
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    docs = await campaign.wait_jobs(lambda d: any(x["state"] == "sent" for x in d))
    outcome = {d["peer"]: (d["state"], d["reason"]) for d in docs}
    assert outcome[8001] == ("skipped", "opted_out")
    assert outcome[8002][0] == "sent"
    later = await campaign.data(M.SendDirectMessage, {"peer": 8001, "text": "really?", "accountId": "acct1"})
    assert later["state"] == "skipped" and later["reason"] == "opted_out"
    # the conversations were recorded from the events
    convs = await campaign.data(M.GetPrivateMessages, {"accountId": "acct0"})
    by_user = {c["peer"]["userId"]: c for c in convs["items"]}
    assert by_user[8001]["optedOut"] and not by_user[8002]["optedOut"]
    assert by_user[8002]["lastMessage"]["text"] == "thanks, how much is it?"
    assert by_user[8002]["unreadCount"] == 1 and by_user[8002]["peer"]["firstName"] == "Ann"


async def test_per_recipient_daily_cap_holds_across_accounts(campaign) -> None:
    await campaign.settings("compliance", {"perRecipientDailyCap": 2})
    out = []
    for i, acct in enumerate(["acct0", "acct1", "acct2"]):
        out.append(
            await campaign.data(
                M.SendMessage, {"peer": 9001, "text": f"m{i}", "accountId": acct, "waitSeconds": 20}
            )
        )
    assert [o["state"] for o in out[:2]] == ["sent", "sent"]
    assert out[2]["state"] == "scheduled" and out[2]["reason"] == "recipient_cap"
    retry_at = datetime.fromisoformat(out[2]["retryAt"])
    assert retry_at > datetime.now(UTC) + timedelta(hours=23)
    assert len(campaign.fleet.deliveries) == 2


async def test_replies_make_a_user_a_contact_for_the_non_contact_cap(campaign, eventually) -> None:
    await campaign.settings("pacing", {"perAccountDailyNonContacts": 1, "warmupDays": 0})
    await publish(campaign, incoming("acct0", 9101, "hello?", 5))

    async def recorded():
        return (await campaign.data(M.GetPrivateMessages, {"accountId": "acct0"}))["items"]

    await eventually(recorded)
    a = await campaign.data(M.SendMessage, {"peer": 9102, "text": "cold 1", "accountId": "acct0"})
    b = await campaign.data(
        M.SendMessage, {"peer": 9103, "text": "cold 2", "accountId": "acct0", "waitSeconds": 2}
    )
    c = await campaign.data(M.SendMessage, {"peer": 9101, "text": "reply", "accountId": "acct0"})
    assert a["state"] == "sent" and c["state"] == "sent"
    assert b["state"] in ("pending", "scheduled")  # the second cold message waits for the 24 h window
    status = await campaign.data(M.GetQueueStatus, {"accountId": "acct0"})
    kinds = {lim["kind"] for lim in status["accounts"][0]["limits"]}
    assert "account_daily_non_contacts" in kinds


async def test_a_send_held_by_a_cap_known_now_is_answered_at_once(campaign) -> None:
    """Issue 12 finding 7: the second stranger of the day for an account capped at one is answered
    `scheduled` at once, with the limit in words and when it lifts, not after the whole wait."""
    await campaign.settings("pacing", {"perAccountDailyNonContacts": 1, "warmupDays": 0})
    first = await campaign.data(M.SendPrivateMessage, {"peer": 9201, "text": "cold 1", "accountId": "acct1"})
    assert first["state"] == "sent"
    started = time.monotonic()
    held = await campaign.data(
        M.SendPrivateMessage, {"peer": 9202, "text": "cold 2", "accountId": "acct1", "waitSeconds": 30}
    )
    waited = time.monotonic() - started
    assert held["state"] == "scheduled" and held["reason"] == "rate_limit", held
    assert "account_daily_non_contacts (1/1)" in held["lastError"], held
    assert datetime.fromisoformat(held["retryAt"]) > datetime.now(UTC) + timedelta(hours=23)
    assert waited < 15, f"answered after {waited:.1f} s of a 30 s wait"
    row = (await campaign.data(M.GetQueueStatus, {"accountId": "acct1"}))["accounts"][0]
    assert row["dailyCap"] == 1 and row["recentNonContacts"] == 1  # the cap counts strangers only


async def test_chat_history_from_events_queue_and_imports_with_cursor_pages(campaign, eventually) -> None:
    t0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    for i in range(5):
        await publish(
            campaign,
            incoming("acct1", 9201, f"in {i}", 100 + i, username="bo_w", at=t0 + timedelta(minutes=2 * i)),
        )
    await publish(
        campaign,
        SessionMessageSent(
            account_id="acct1",
            chat_kind="private",
            chat_id=9201,
            message_id=200,
            text="out 0",
            sent_at=t0 + timedelta(minutes=1),
            origin="external",
        ),
    )

    # the import names the peer by username, which campaign learns from those events: let them land first
    async def all_six():
        seen = await campaign.data(M.GetChatHistory, {"peer": 9201, "limit": 50})
        return len(seen["items"]) == 6

    await eventually(all_six)
    saved = await campaign.data(
        M.SaveChatHistory,
        {
            "accountId": "acct1",
            "peer": "@bo_w",
            "messages": [
                {"direction": "out", "text": "imported", "date": (t0 - timedelta(days=1)).isoformat()},
                {"direction": "in", "text": "in 0", "date": t0.isoformat(), "messageId": 100},
            ],
        },
    )
    # the second is the same Telegram message the event recorded (same account, chat and id)

    async def all_seven():
        full = await campaign.data(M.GetChatHistory, {"peer": "@bo_w", "limit": 50})
        return len(full["items"]) == 7

    await eventually(all_seven)
    assert saved["saved"] + saved["duplicates"] == 2
    full = await campaign.data(M.GetChatHistory, {"peer": "@bo_w", "limit": 50})
    texts = [m["text"] for m in full["items"]]
    assert texts == ["in 4", "in 3", "in 2", "in 1", "out 0", "in 0", "imported"]
    page1 = await campaign.data(M.GetChatHistory, {"peer": 9201, "limit": 4})
    page2 = await campaign.data(M.GetChatHistory, {"peer": 9201, "limit": 4, "cursor": page1["nextCursor"]})
    assert [m["text"] for m in page1["items"] + page2["items"]] == texts and page2["nextCursor"] is None
    oldest = await campaign.data(M.GetChatHistory, {"peer": 9201, "order": "oldest_first", "limit": 2})
    assert [m["text"] for m in oldest["items"]] == ["imported", "in 0"]
    found = await campaign.data(M.GetChatHistory, {"peer": 9201, "search": "OUT"})
    assert [m["text"] for m in found["items"]] == ["out 0"]
    r = await campaign.call(M.GetChatHistory, {"peer": 9201, "cursor": "garbage"})
    assert r["error"]["code"] == "VALIDATION_ERROR"
    again = await campaign.data(
        M.SaveChatHistory,
        {
            "accountId": "acct1",
            "peer": 9201,
            "messages": [{"direction": "in", "text": "in 0", "date": t0.isoformat(), "messageId": 100}],
        },
    )
    assert again == {"saved": 0, "duplicates": 1}
    # a queue delivery joins the conversation, linked to its job
    sent = await campaign.data(M.SendMessage, {"peer": 9201, "text": "from the queue", "accountId": "acct1"})
    latest = await campaign.data(M.GetChatHistory, {"peer": 9201, "limit": 1})
    assert latest["items"][0]["jobId"] == sent["jobId"] and latest["items"][0]["source"] == "queue"


async def test_templates_commands_and_rendering_in_jobs(campaign, eventually) -> None:
    created = await campaign.data(
        M.AddTemplate,
        {
            "name": "Greeting",
            "category": "greeting",
            "content": "{Hi|Hello} {first_name}, {offer}!",
            "variables": [{"name": "first_name", "default": "friend"}, {"name": "offer"}],
            "preview": {"variables": {"offer": "20% off"}, "samples": 4, "seed": 3},
        },
    )
    tid = created["template"]["id"]
    assert all(s.endswith("friend, 20% off!") for s in created["preview"]["samples"])
    assert created["preview"]["variants"] == 2
    dup = await campaign.call(M.AddTemplate, {"name": "greeting", "content": "x"})
    assert dup["error"]["code"] == "CONFLICT"
    bad = await campaign.call(M.AddTemplate, {"name": "bad", "content": "Hi {first name}"})
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    dry = await campaign.data(M.SaveChatTemplate, {"name": "Dry", "content": "{a|b}", "dryRun": True})
    assert dry["template"] is None and dry["preview"]["variants"] == 2
    # a known user's first name fills the variable; an unknown one gets the default
    await publish(campaign, incoming("acct0", 9301, "hi", 1, first="Mei"))
    await eventually(lambda: campaign.rt.db["peers"].find_one({"user_id": 9301}))
    out = await campaign.data(
        M.QueueMessage,
        {
            "templateId": tid,
            "variables": {"offer": "a gift"},
            "recipients": [{"peer": 9301}, {"peer": 9302}, {"peer": 9303, "variables": {"offer": "tea"}}],
        },
    )
    assert out["created"] == 3
    docs = await campaign.wait_jobs(lambda d: sum(x["state"] == "sent" for x in d) == 3)
    texts = {d["peer"]: d["text"] for d in docs}
    assert texts[9301].endswith("Mei, a gift!") and texts[9302].endswith("friend, a gift!")
    assert texts[9303].endswith("friend, tea!")
    # no value and no default: the job fails with template_error, nobody gets "{offer}"
    failed = await campaign.data(M.SendMessage, {"peer": 9304, "templateId": tid})
    assert (
        failed["state"] == "failed"
        and failed["reason"] == "template_error"
        and "offer" in failed["lastError"]
    )

    # the template's sent/failed counters are written after the job's answer: wait for the fourth
    async def counted() -> dict | None:
        view = (await campaign.data(M.GetChatTemplates, {"category": "greeting"}))["items"][0]
        return (
            view
            if view["successRate"] is not None and view["usageCount"] == 4 and (view["successRate"] < 1.0)
            else None
        )

    view = await eventually(counted)
    assert view["usageCount"] == 4 and view["successRate"] == pytest.approx(0.75)
    toggled = await campaign.data(M.ToggleTemplateStatus, {"id": tid})
    assert toggled["isActive"] is False
    r = await campaign.call(M.SendMessage, {"peer": 1, "templateId": tid})
    assert r["error"]["code"] == "CONFLICT"
    saved = await campaign.data(
        M.SaveChatTemplate,
        {
            "id": tid,
            "name": "Greeting 2",
            "content": "Yo {first_name}",
            "expectedUpdatedAt": toggled["updatedAt"],
        },
    )
    assert saved["template"]["name"] == "Greeting 2"
    stale = await campaign.call(
        M.SaveChatTemplate,
        {"id": tid, "name": "G3", "content": "x", "expectedUpdatedAt": toggled["updatedAt"]},
    )
    assert stale["error"]["code"] == "CONFLICT"
    assert (await campaign.data(M.RemoveTemplate, {"id": tid}))["affected"] == 1
    gone = await campaign.call(M.DeleteChatTemplate, {"id": tid})
    assert gone["error"]["code"] == "NOT_FOUND"
