"""crm's `message-received` consumer asks a cached set of tracked user ids, not the database, for
every group message: an untracked sender costs no query; a change made here is seen at once, one
made by another replica within `TRACKED_REFRESH_SECONDS`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_campaign.bootstrap import build
from tgm_campaign.crm.consumers import TRACKED_REFRESH_SECONDS
from tgm_campaign.crm.tracking_store import TrackedUserStore
from tgm_campaign.settings import CampaignSettings
from tgm_contracts.commands import crm as CRM
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.session import TelegramUser
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TGM_CAMPAIGN_SCHEDULER", "false")
    return build(CampaignSettings(runtime=RuntimeSettings(replica_id="campaign-crm-cache")))


def group_message(sender: int, message_id: int) -> MessageReceived:
    return MessageReceived(
        account_id="acct0",
        chat_kind="supergroup",
        chat_id=-100777,
        chat_title="Deals",
        message_id=message_id,
        sender_id=sender,
        sender=TelegramUser(user_id=sender, first_name="Dan"),
        text="anyone selling?",
        date=datetime.now(UTC),
    )


async def test_untracked_senders_cost_no_query_and_changes_are_seen(rt: Any, mongo_server: Any) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        crm = rt.app.crm_consumers
        now = [1000.0]
        crm.clock = lambda: now[0]
        reads = {"ids": 0, "user": 0}
        store = crm.tracked
        ids, by_user = store.active_user_ids, store.active_by_user

        async def counted_ids() -> set[int]:
            reads["ids"] += 1
            return await ids()

        async def counted_user(user_id: int) -> Any:
            reads["user"] += 1
            return await by_user(user_id)

        store.active_user_ids, store.active_by_user = counted_ids, counted_user
        tracked = await client.data(CRM.TrackUser, {"userId": 901})

        # 50 group messages of untracked senders, concurrently: one read of the set, no per-message query
        await asyncio.gather(*(crm.on_received(group_message(5000 + i, i)) for i in range(50)))
        assert reads == {"ids": 1, "user": 0}

        # the tracked sender: read in full, kept
        await crm.on_received(group_message(901, 100))
        assert reads == {"ids": 1, "user": 1}
        page = await client.data(CRM.GetTrackedUsers, {})
        assert page["items"][0]["id"] == tracked["id"] and page["items"][0]["messageCount"] == 1

        # tracked through this replica: seen at the next message, no waiting
        await client.data(CRM.TrackUser, {"userId": 902})
        await crm.on_received(group_message(902, 101))
        assert reads["ids"] == 2
        activity = await client.data(CRM.GetUserActivity, {"userId": 902})
        assert [a["kind"] for a in activity["items"]] == ["group_message"]

        # tracked through ANOTHER replica (its own store): not seen until the refresh delay passed
        other = TrackedUserStore(rt.db)
        doc = {"_id": "u-other", "user_id": 903, "status": "active", "message_count": 0, "groups": []}
        await other.insert(doc)
        await crm.on_received(group_message(903, 102))
        assert (await client.data(CRM.GetUserActivity, {"userId": 903}))["items"] == []
        now[0] += TRACKED_REFRESH_SECONDS + 0.1
        await crm.on_received(group_message(903, 103))
        assert reads["ids"] == 3
        kept = (await client.data(CRM.GetUserActivity, {"userId": 903}))["items"]
        assert [a["refId"] for a in kept] == ["103"]

        # untracked here: its messages are no longer kept, at once
        await client.data(CRM.UntrackUser, {"userId": 902})
        before = reads["user"]
        await crm.on_received(group_message(902, 104))
        assert reads["user"] == before  # out of the set: no query
