"""Held jobs planned again (`messaging/replan.py`) on a real nats-server and database: settings that
change under a replica without any event (its round sees new limits), and a template's recipient
fact that becomes known when the user writes. The gateway's `settings-changed` path and tg-session's
`describe-users` are covered end to end by tests/e2e/test_queue_replan_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _hhmm(delta_hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=delta_hours)).strftime("%H:%M")


async def test_a_job_held_by_quiet_hours_goes_out_when_the_limits_the_round_reads_change(campaign) -> None:
    await campaign.settings(
        "pacing", {"quietHoursStart": _hhmm(-1), "quietHoursEnd": _hhmm(2), "timezone": "UTC"}
    )
    out = await campaign.data(
        M.QueueMessage, {"accountId": "acct1", "text": "good morning", "recipients": [{"peer": 9501}]}
    )
    job_id = out["jobs"][0]["jobId"]
    held = await campaign.wait_jobs(
        lambda docs: any(d["_id"] == job_id and d.get("held_by") == "quiet_hours" for d in docs)
    )
    doc = next(d for d in held if d["_id"] == job_id)
    assert doc["state"] == "scheduled" and doc["reason"] == "quiet_hours"
    assert doc["not_before"] > datetime.now(UTC) + timedelta(minutes=90)
    # Written straight into the store: no settings-changed event, only the round's own reading.
    await campaign.settings("pacing", {"quietHoursStart": None, "quietHoursEnd": None})
    campaign.m.scheduler.wake()  # the next round now rather than after its idle wait (up to 5 s)
    docs = await campaign.wait_jobs(
        lambda docs: any(d["_id"] == job_id and d["state"] == "sent" for d in docs)
    )
    sent = next(d for d in docs if d["_id"] == job_id)
    assert [h["outcome"] for h in sent["history"]] == ["requeued", "sent"], sent["history"]


async def test_an_unknown_first_name_holds_the_job_until_the_user_writes(campaign) -> None:
    tpl = (await campaign.data(M.AddTemplate, {"name": "facts", "content": "Hi {first_name}!"}))["template"]
    held = await campaign.data(
        M.SendMessage, {"accountId": "acct1", "peer": 9601, "templateId": tpl["id"], "waitSeconds": 3}
    )
    # Retryable, not failed: nobody knows the name yet (tg-session is not there to ask in this test).
    assert held["state"] == "scheduled" and held["reason"] == "missing_variable", held
    assert "{first_name}" in held["lastError"] and "tg-session could not be asked" in held["lastError"]
    assert held["retryAt"] is not None
    await campaign.fleet.rt.publish(
        MessageReceived(
            account_id="acct1",
            chat_kind="private",
            chat_id=9601,
            message_id=1,
            sender_id=9601,
            sender=TelegramUser(user_id=9601, first_name="Lin"),
            text="hello",
            date=datetime.now(UTC),
        )
    )
    docs = await campaign.wait_jobs(
        lambda docs: any(d["_id"] == held["jobId"] and d["state"] == "sent" for d in docs), timeout=15
    )
    assert next(d for d in docs if d["_id"] == held["jobId"])["text"] == "Hi Lin!"


async def test_jobs_held_by_the_warm_up_go_out_when_the_account_stops_warming_up(campaign) -> None:
    """tg-session publishes nothing when `warmupEnabled` changes: the chores read the profiles of the
    accounts with warm-up-held jobs and release those of an account that no longer warms up."""
    acct = campaign.fleet.accounts["acct2"]
    acct.created_at = datetime.now(UTC)  # day 0 of its warm-up: one stranger a day (7 * 1 / (6 + 1))
    await campaign.settings("pacing", {"perAccountDailyNonContacts": 7, "warmupDays": 6})
    first = await campaign.data(M.SendPrivateMessage, {"peer": 9701, "text": "one", "accountId": "acct2"})
    assert first["state"] == "sent", first
    held = await campaign.data(
        M.SendPrivateMessage, {"peer": 9702, "text": "two", "accountId": "acct2", "waitSeconds": 10}
    )
    assert held["state"] == "scheduled" and "warmup (1/1)" in held["lastError"], held
    acct.warmup_enabled = False
    campaign.m.scheduler.directory.profile_ttl = 0.0  # the profile as tg-session has it now, not a minute old
    await campaign.m.scheduler.chores.tick()  # the maintenance round, now (it runs every 5 s)
    docs = await campaign.wait_jobs(
        lambda docs: any(d["_id"] == held["jobId"] and d["state"] == "sent" for d in docs), timeout=15
    )
    assert next(d for d in docs if d["_id"] == held["jobId"])["text"] == "two"
