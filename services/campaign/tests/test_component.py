"""The handlers on FastStream's in-memory broker with a real database (no NATS server): envelopes,
validation and the commands that need no account."""

from __future__ import annotations

import pytest
from tgm_campaign.bootstrap import build
from tgm_campaign.settings import CampaignSettings
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


@pytest.fixture
def rt(monkeypatch):
    monkeypatch.setenv("TGM_CAMPAIGN_SCHEDULER", "false")
    return build(CampaignSettings(runtime=RuntimeSettings(replica_id="campaign-component")))


async def test_templates_history_blacklist_and_errors_in_memory(rt, mongo_server) -> None:
    async with runtime_client(rt, mongo_server.uri) as client:
        bad = await client.call(M.AddTemplate, {"name": "x"})
        assert not bad["ok"] and bad["error"]["code"] == "VALIDATION_ERROR"
        made = await client.data(M.AddTemplate, {"name": "Hi", "content": "{Hi|Yo} {first_name}"})
        assert made["preview"]["missingVariables"] == ["first_name"]
        listed = await client.data(M.GetChatTemplates, {})
        assert [t["name"] for t in listed["items"]] == ["Hi"]
        saved = await client.data(
            M.SaveChatHistory,
            {
                "accountId": "a1",
                "peer": 77,
                "messages": [
                    {"direction": "in", "text": "hello", "date": "2026-01-01T00:00:00Z", "messageId": 5}
                ],
            },
        )
        assert saved == {"saved": 1, "duplicates": 0}
        convs = await client.data(M.GetPrivateMessages, {})
        assert convs["items"][0]["peer"]["userId"] == 77 and convs["items"][0]["unreadCount"] == 1
        res = await client.data(CRM.BlacklistUser, {"userId": 77})
        assert res["blacklisted"] and res["cancelledJobs"] == 0
        status = await client.data(M.GetQueueStatus, {})
        assert status["totals"]["pending"] == 0 and status["paused"] is False
        paused = await client.data(M.PauseQueue, {"scope": "all"})
        assert paused["paused"] is True
        out = await client.data(M.QueueMessage, {"text": "hi", "recipients": [{"peer": 77}, {"peer": 78}]})
        assert [j["state"] for j in out["jobs"]] == ["skipped", "pending"] and out["jobs"][0][
            "reason"
        ] == "blacklisted"
        cleared = await client.data(M.ClearQueue, {"confirm": True})
        assert cleared["cancelled"] == 1
