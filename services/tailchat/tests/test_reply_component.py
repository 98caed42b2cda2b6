"""`send-channel-reply`, the send other services use (campaign's trigger replies, analytics' reports):
once per idempotency key. A repeat answers the stored message without a second post; a refused send
may be tried again; a send whose outcome is unknown (timeout) is never sent again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from tgm_contracts.commands import channels as cmd
from tgm_contracts.rpc_channels import SendChannelReply
from tgm_runtime.testing import RuntimeClient

from .conftest import APP_ID, MockTailchat, err, register_payload

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


def reply(key: str, **extra: Any) -> dict[str, Any]:
    return {"appId": APP_ID, "converseId": "c1", "text": "hello", "key": key, **extra}


async def test_one_message_per_key_and_an_unknown_outcome_is_not_sent_again(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await client.data(cmd.RegisterTailchatApp, register_payload())
    first = await client.data(SendChannelReply, reply("firing-1"))
    again = await client.data(SendChannelReply, reply("firing-1"))
    assert again == first and len(tailchat.bodies("sendMessage")) == 1

    tailchat.faults["sendMessage"] = httpx.Response(503, text="bad gateway")
    await err(client, SendChannelReply, reply("firing-2"), "UNAVAILABLE")
    done = await client.data(SendChannelReply, reply("firing-2"))  # refused: nothing posted, try again
    assert done["messageId"] != first["messageId"] and len(tailchat.bodies("sendMessage")) == 3

    tailchat.faults["sendMessage"] = httpx.ReadTimeout("slow")
    await err(client, SendChannelReply, reply("firing-3"), "TIMEOUT")
    busy = await err(client, SendChannelReply, reply("firing-3"), "UNAVAILABLE")
    assert "under way" in busy["message"] and busy["retry_after"] == 5.0
    sends = client.runtime.db["tailchat_sends"]
    doc = await sends.find_one({"_id": f"{APP_ID}:firing-3"})
    await sends.update_one(
        {"_id": doc["_id"]}, {"$set": {"claimed_at": doc["claimed_at"] - timedelta(minutes=5)}}
    )
    unknown = await err(client, SendChannelReply, reply("firing-3"), "CONFLICT")
    assert "unknown outcome" in unknown["message"]
    assert len(tailchat.bodies("sendMessage")) == 4  # the timed-out one, never again

    await client.data(cmd.RemoveTailchatApp, {"appId": APP_ID})
    assert await sends.count_documents({}) == 0
