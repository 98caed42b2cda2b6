"""The tailchat service on a real nats-server and database, against the seed-faithful Tailchat fake of
tools/fakes (a real HTTP server with the fork's envelope, rules and errors): commands arrive over NATS
as the gateway sends them, and what the bot did is read back from the fake's test API — including a
user pressing an inline button the markup rendered (its botId routes the press), answered once within
the 30 s window and refused as expired after it (the fake's clock moved 31 s, nothing waits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from tgm_contracts import Command
from tgm_contracts.commands import channels as cmd
from tgm_fakes.testing import RunningFake
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import signed_headers
from tgm_tailchat.bootstrap import build
from tgm_tailchat.settings import TailchatSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
pytest_plugins = ["tgm_fakes.testing"]


class Bus:
    """Calls commands over NATS the way the gateway does (request id and role headers)."""

    def __init__(self, nc: Any, runtime: Any) -> None:
        self.nc = nc
        self.runtime = runtime

    async def call(self, command: type[Command], payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode()
        headers = signed_headers(self.runtime, command.SUBJECT, data)
        reply = await self.nc.request(command.SUBJECT, data, timeout=30, headers=headers)
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def data(self, command: type[Command], payload: dict[str, Any]) -> Any:
        answer = await self.call(command, payload)
        assert answer["ok"], answer
        return answer["data"]

    async def refused(self, command: type[Command], payload: dict[str, Any], code: str) -> dict[str, Any]:
        answer = await self.call(command, payload)
        assert not answer["ok"] and answer["error"]["code"] == code, answer
        error: dict[str, Any] = answer["error"]
        return error


@pytest.fixture
async def bus(nats_server: Any, mongo_server: Any, tmp_path: Path) -> AsyncIterator[Bus]:
    settings = TailchatSettings(retry_backoff_seconds=0.01, public_url="http://gateway.test")
    settings.runtime = RuntimeSettings(
        nats_url=nats_server.url,
        mongodb_uri=mongo_server.uri,
        database_prefix=f"tc{uuid.uuid4().hex[:8]}_",
        data_dir=tmp_path,
        replica_id=f"tailchat-{uuid.uuid4().hex[:4]}",
    )
    runtime = build(settings)
    await runtime.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Bus(nc, runtime)
    finally:
        await nc.close()
        assert runtime.mongo is not None
        await runtime.mongo.drop_database(runtime.database_name())
        await runtime.stop()


async def test_an_app_on_the_fake_server_end_to_end(bus: Bus, fake_tailchat: RunningFake) -> None:
    extra = fake_tailchat.extra or {}
    app_id, bot_id, alice = extra["app_id"], extra["bot_user_id"], extra["alice_id"]
    test_api = httpx.AsyncClient(base_url=fake_tailchat.url + "/_fake/tailchat", timeout=30)
    register = {"serverUrl": fake_tailchat.url, "appId": app_id, "appSecret": fake_tailchat.key}

    wrong = await bus.refused(
        cmd.RegisterTailchatApp, {**register, "appSecret": f"{app_id}:wrong"}, "UPSTREAM_AUTH"
    )
    assert "secret not match" in wrong["message"].lower()
    app = (await bus.data(cmd.RegisterTailchatApp, register))["app"]
    assert app["botUserId"] == bot_id and app["status"] == "ok"

    # A DM to Alice (the DM converse is made), a group post, an edit and a delete.
    dm = await bus.data(cmd.SendChannelMessage, {"appId": app_id, "userId": alice, "text": "hello Alice"})
    stored = (await test_api.get("/messages", params={"converseId": dm["converseId"]})).json()
    assert [m["content"] for m in stored] == ["hello Alice"]
    group = {"appId": app_id, "converseId": extra["group_converse_id"], "text": "hi all"}
    await bus.refused(cmd.SendChannelMessage, group, "NOT_FOUND")  # a group channel needs its groupId
    post = await bus.data(cmd.SendChannelMessage, {**group, "groupId": extra["group_id"]})
    assert post["groupId"] == extra["group_id"]
    edited = await bus.data(
        cmd.EditChannelMessage, {"appId": app_id, "messageId": post["messageId"], "text": "v2"}
    )
    assert edited["content"] == "v2" and edited["edited"]
    # The bot has no delete permission in the group (403 there): CONFLICT; its own DM message goes.
    no_right = await bus.refused(
        cmd.DeleteChannelMessage, {"appId": app_id, "messageId": post["messageId"]}, "CONFLICT"
    )
    assert no_right["details"]["upstreamStatus"] == 403
    await bus.data(cmd.DeleteChannelMessage, {"appId": app_id, "messageId": dm["messageId"]})
    assert dm["messageId"] in json.dumps((await test_api.get("/deleted")).json())

    # Commands with scopes, read back with the etag: notModified the second time.
    commands = [
        {"command": "help", "description": "Help"},
        {"command": "stats", "description": "Stats", "scope": {"type": "all_group_chats"}},
    ]
    await bus.data(cmd.SetTailchatBotInfo, {"appId": app_id, "commands": commands, "allowGroup": True})
    first = await bus.data(cmd.GetTailchatCommands, {"appId": app_id})
    assert [c["command"] for c in first["commands"]] == ["help", "stats"] and first["version"] >= 1
    again = await bus.data(cmd.GetTailchatCommands, {"appId": app_id, "ifEtag": first["etag"]})
    assert again["notModified"] and again["commands"] is None
    scoped = await bus.data(cmd.GetTailchatCommands, {"appId": app_id, "scopeType": "all_group_chats"})
    assert [c["command"] for c in scoped["commands"]] == ["stats"]

    # The callback URL under the public URL, set on the server by the rotation.
    rotated = await bus.data(cmd.RotateTailchatCallbackToken, {"appId": app_id})
    assert rotated["applied"] and rotated["callbackUrl"].startswith("http://gateway.test/api/v1/channels/")

    # Alice presses an inline button of a message with markup: answered once within 30 s; a second
    # answer, or one after 30 s (the fake's clock moved on), is a clear CONFLICT "expired".
    markup = {
        "inline": {
            "actions": [{"id": "confirm", "type": "invoke", "label": "Confirm", "params": {"order": 7}}],
            "rows": [{"actions": ["confirm"]}],
        }
    }
    offer = await bus.data(
        cmd.SendChannelMessage, {"appId": app_id, "userId": alice, "text": "OK?", "markup": markup}
    )
    assert offer["inlineActionIds"] == ["confirm"]

    async def press(trace: str) -> None:
        r = await test_api.post(
            "/press",
            json={
                "userId": alice,
                "messageId": offer["messageId"],
                "actionId": "confirm",
                "traceId": trace,
                "wait": 0,
            },
        )
        assert r.status_code == 200, r.text

    await press("tc-first")
    answer = {"appId": app_id, "traceId": "tc-first", "userId": alice, "text": "Confirmed"}
    assert (await bus.data(cmd.AnswerCallback, answer))["answered"]
    assert "Confirmed" in json.dumps((await test_api.get("/answers")).json())
    again = await bus.refused(cmd.AnswerCallback, answer, "CONFLICT")
    assert "expired" in again["message"]
    await press("tc-late")
    await test_api.post("/clock", json={"advance": 31})
    late = await bus.refused(cmd.AnswerCallback, {**answer, "traceId": "tc-late"}, "CONFLICT")
    assert "expired" in late["message"]
    await test_api.aclose()
