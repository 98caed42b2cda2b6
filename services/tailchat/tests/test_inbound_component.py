"""`receive-tailchat-callback` on the real tailchat runtime (in-memory broker, real database): the token
is checked before anything is stored, a repeat is published once, a publish that fails is not taken
for a duplicate next time, a malformed body stores nothing, and the token is in no document or log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import json_util
from tgm_contracts import Event
from tgm_contracts.commands import channels as cmd
from tgm_contracts.rpc_channels import ReceiveTailchatCallback
from tgm_runtime.testing import RuntimeClient

from .conftest import APP_ID, BOT_ID, MockTailchat, err, register_payload

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

INBOX = {
    "_id": "inbox-1",
    "userId": BOT_ID,
    "type": "message",
    "payload": {"converseId": "dm-1", "messageId": "m-1", "messageAuthor": "alice", "messageSnippet": "hi"},
    "readed": False,
}


class Published:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail = False

    async def __call__(self, event: Event) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("nats: connection closed")
        self.events.append(event)


async def setup(client: RuntimeClient) -> tuple[str, Published]:
    data = await client.data(cmd.RegisterTailchatApp, register_payload())
    published = Published()
    client.runtime.app.inbound.publish = published
    return data["callbackPath"].rsplit("/", 1)[-1], published


async def deliver(
    client: RuntimeClient, token: str, body: Any = INBOX, kind: str = "inbox", app: str = APP_ID
) -> Any:
    payload = {"appId": app, "token": token, "payloadType": kind, "body": body}
    return await client.request(ReceiveTailchatCallback.SUBJECT, payload)


async def stored(client: RuntimeClient) -> list[dict[str, Any]]:
    return [d async for d in client.runtime.db["tailchat_deliveries"].find({})]


async def test_the_token_first_then_one_event_per_delivery(
    client: RuntimeClient, captured_logs: pytest.LogCaptureFixture
) -> None:
    token, published = await setup(client)
    for app, wrong in ((APP_ID, "x" * 43), ("other", token), (APP_ID, token[:-1])):
        reply = await deliver(client, wrong, app=app)
        assert reply["error"]["code"] == "NOT_FOUND" and reply["error"]["message"] == "no such callback"
    assert await stored(client) == [] and published.events == []

    bad = await deliver(client, token, {"type": "message", "payload": {"messageId": "m"}})
    assert bad["error"]["code"] == "VALIDATION_ERROR" and await stored(client) == []

    published.fail = True  # the bus refuses: UNAVAILABLE, and the repeat is not a "duplicate"
    assert (await deliver(client, token))["error"]["code"] == "UNAVAILABLE"
    assert await stored(client) == []
    first = (await deliver(client, token))["data"]
    again = (await deliver(client, token))["data"]
    assert (first["outcome"], again["outcome"]) == ("published", "duplicate")
    assert first["eventId"] == again["eventId"] == published.events[0].event_id
    assert [e.NAME for e in published.events] == ["channel-message-received"]

    ignored = (await deliver(client, token, {}, kind="message.recall"))["data"]
    assert ignored["outcome"] == "ignored" and "not one we handle" in ignored["reason"]

    db = client.runtime.db
    dumped = json_util.dumps([[d async for d in db[c].find({})] for c in await db.list_collection_names()])
    logged = "\n".join(r.getMessage() for r in captured_logs.records)
    assert token not in dumped and token not in logged
    await client.data(cmd.RemoveTailchatApp, {"appId": APP_ID})
    assert await stored(client) == []


async def test_an_answer_30_s_after_the_press_arrived_is_refused_without_a_call(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    token, _ = await setup(client)
    press = {
        "type": "buttonCallback",
        "payload": {
            "messageAuthor": "alice",
            "converseId": "dm-1",
            "actionId": "yes",
            "type": "invoke",
            "params": {"botId": BOT_ID},
            "traceId": "tr-1",
            "ts": 1,
        },
    }
    assert (await deliver(client, token, press, kind="buttonCallback"))["data"]["outcome"] == "published"
    answer = {"appId": APP_ID, "traceId": "tr-1", "userId": "alice", "text": "ok"}
    tailchat.traces.add("tr-1")
    assert (await client.data(cmd.AnswerCallback, answer))["answered"]  # within 30 s: the server's say

    tailchat.traces.add("tr-1")  # the server would still take it; our record says it is too late
    deliveries = client.runtime.db["tailchat_deliveries"]
    await deliveries.update_one(
        {"_id": f"{APP_ID}:button:tr-1"}, {"$set": {"received_at": datetime.now(UTC) - timedelta(seconds=31)}}
    )
    calls = len(tailchat.bodies("answerCallbackQuery"))
    late = await err(client, cmd.AnswerCallback, answer, "CONFLICT")
    assert "expired" in late["message"] and late["details"]["arrivedSecondsAgo"] >= 31
    assert len(tailchat.bodies("answerCallbackQuery")) == calls
