"""Contacts on a real nats-server: a queued delivery to a `new` lead moves it to `contacted` (and the
send shows in the user's timeline); the user's reply, heard through the events stream by the CRM's
durable consumer, moves it to `replied`; a tracked user's group message is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def incoming(account: str, chat_id: int, sender: int, text: str, message_id: int, kind: str = "private"):
    return MessageReceived(
        account_id=account,
        chat_kind=kind,
        chat_id=chat_id,
        chat_title="Deals" if kind != "private" else None,
        message_id=message_id,
        sender_id=sender,
        sender=TelegramUser(user_id=sender, first_name="Dan"),
        text=text,
        date=datetime.now(UTC),
    )


async def test_delivery_reply_and_tracking_through_the_stream(campaign, eventually) -> None:
    lead = await campaign.data(
        CRM.AddLead, {"userId": 9901, "firstName": "Dan", "assignedAccountId": "acct1"}
    )
    assert lead["stage"] == "new"
    out = await campaign.data(
        M.QueueMessage, {"text": "Hi {first_name}", "recipients": [{"leadId": lead["id"]}]}
    )
    job_id = out["jobs"][0]["jobId"]
    evt = await campaign.wait_event(
        lambda e: e["_subject"].endswith("lead-stage-changed.v1") and e["leadId"] == lead["id"]
    )
    assert (evt["fromStage"], evt["toStage"], evt["by"]) == ("new", "contacted", "system")
    assert [(d.account_id, d.peer) for d in campaign.fleet.deliveries] == [("acct1", 9901)]
    details = await campaign.data(CRM.GetLeadDetails, {"leadId": lead["id"]})
    assert details["stage"] == "contacted" and details["messageCount"] == 1 and details["lastContactedAt"]
    assert details["stageHistory"][-1]["reason"] == "message delivered"
    assert [j["jobId"] for j in details["recentJobs"]] == [job_id] and details["recentJobs"][0][
        "state"
    ] == "sent"

    async def sent_in_timeline():
        items = (await campaign.data(CRM.GetUserActivity, {"leadId": lead["id"]}))["items"]
        return items if any(i["kind"] == "private_out" for i in items) else None

    items = await eventually(sent_in_timeline)  # history is written by the durable consumer
    out_item = next(i for i in items if i["kind"] == "private_out")
    assert out_item["text"] == "Hi Dan" and out_item["refId"] == job_id and out_item["accountId"] == "acct1"
    change = next(i for i in items if i["kind"] == "stage_change")
    assert change["detail"] == {"fromStage": "new", "toStage": "contacted", "by": "system"}
    assert items[-1]["kind"] == "lead_captured"

    # the user answers: through the stream to the CRM consumer
    await campaign.fleet.rt.publish(incoming("acct1", 9901, 9901, "who are you?", 77))
    evt = await campaign.wait_event(
        lambda e: e["_subject"].endswith("lead-stage-changed.v1") and e["toStage"] == "replied"
    )
    assert evt["fromStage"] == "contacted" and evt["reason"] == "the user wrote"

    # a tracked user's group message, heard by the consumer
    await campaign.data(CRM.TrackUser, {"userId": 9901, "valueLevel": "high"})
    await campaign.fleet.rt.publish(incoming("acct0", -1009, 9901, "any deals today?", 5, "supergroup"))

    async def seen():
        users = (await campaign.data(CRM.GetTrackedUsers, {}))["items"]
        return users if users and users[0]["groupsSeen"] == 1 else None

    users = await eventually(seen)
    assert users[0]["leadId"] == lead["id"] and users[0]["messageCount"] == 1
    act = await campaign.data(CRM.GetUserActivity, {"userId": 9901, "kinds": ["group_message", "private_in"]})
    assert [(a["kind"], a["text"]) for a in act["items"]] == [
        ("group_message", "any deals today?"),
        ("private_in", "who are you?"),
    ]
