"""The 11 channels commands on the real tailchat runtime (in-memory broker, real database) against the
MockTransport stand-in of a Tailchat server (conftest.MockTailchat): what an operator would notice —
the secret never shows, edits keep inline actions, a late answer says expired, a wrong secret is the
app's authentication problem, an unreachable server is UNAVAILABLE."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from bson import json_util
from tgm_contracts.commands import channels as cmd
from tgm_runtime import SecretBox
from tgm_runtime.testing import RuntimeClient

from .conftest import APP_ID, BOT_ID, SECRET, MockTailchat, err, register_payload

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


async def registered(client: RuntimeClient, **extra: Any) -> dict[str, Any]:
    return await client.data(cmd.RegisterTailchatApp, register_payload(**extra))


async def test_register_checks_whoami_and_never_shows_or_stores_the_secret(
    client: RuntimeClient, tailchat: MockTailchat, captured_logs: pytest.LogCaptureFixture
) -> None:
    data = await registered(client, name="Support")
    app = data["app"]
    assert app["botUserId"] == BOT_ID and app["status"] == "ok" and app["secretSet"] is True
    assert data["callbackPath"].startswith(f"/api/v1/channels/tailchat/{APP_ID}/callback/")
    token = data["callbackPath"].rsplit("/", 1)[-1]
    assert tailchat.requests[0].headers["x-app-secret"] == f"{APP_ID}:{SECRET}"

    listed = await client.data(cmd.GetTailchatApps)
    await client.data(cmd.SendChannelMessage, {"appId": APP_ID, "converseId": "c1", "text": "hi"})
    tailchat.traces.add("t0")
    await client.data(cmd.AnswerCallback, {"appId": APP_ID, "traceId": "t0", "userId": "u1", "text": "x"})
    dumped = ""
    db = client.runtime.db
    for name in await db.list_collection_names():
        dumped += json_util.dumps([d async for d in db[name].find({})])
    assert SECRET not in dumped and token not in dumped
    assert "enc:v1:" in dumped  # the secret is there, encrypted
    assert SECRET not in json.dumps(listed) and SECRET not in json.dumps(data)
    logged = "\n".join(r.getMessage() for r in captured_logs.records)
    assert SECRET not in logged and "register" in logged


async def test_a_wrong_secret_is_the_apps_authentication_problem_and_stores_nothing(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    tailchat.secret = "another"
    error = await err(client, cmd.RegisterTailchatApp, register_payload(), "UPSTREAM_AUTH")
    assert "Open app secret not match" in error["message"]
    assert (await client.data(cmd.GetTailchatApps))["items"] == []

    await registered(client, check=False)
    checked = await client.data(cmd.CheckTailchatApp, {"appId": APP_ID})
    assert checked["status"] == "rejected" and "secret not match" in checked["lastError"]
    tailchat.secret = SECRET
    assert (await client.data(cmd.CheckTailchatApp, {"appId": APP_ID}))["status"] == "ok"


async def test_a_secret_no_http_header_can_carry_is_refused_before_the_server_is_called(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    """schemathesis found it: a non-ASCII secret failed inside the HTTP client (500 INTERNAL)."""
    for secret in (f"{APP_ID}:sécret", f"{APP_ID}:two words", "tab\tsecret"):
        await err(client, cmd.RegisterTailchatApp, register_payload(appSecret=secret), "VALIDATION_ERROR")
    assert (await client.data(cmd.GetTailchatApps))["items"] == []


async def test_unreachable_server_is_unavailable_and_reads_are_retried_sends_are_not(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await registered(client)
    tailchat.requests.clear()
    tailchat.faults["whoami"] = httpx.ConnectError("refused")
    assert (await client.data(cmd.CheckTailchatApp, {"appId": APP_ID}))["status"] == "ok"
    assert len(tailchat.bodies("whoami")) == 2  # refused, then answered

    tailchat.faults["sendMessage"] = httpx.Response(503, text="bad gateway")
    await err(
        client, cmd.SendChannelMessage, {"appId": APP_ID, "converseId": "c1", "text": "hi"}, "UNAVAILABLE"
    )
    assert len(tailchat.bodies("sendMessage")) == 1  # a send is tried once
    sample = client.runtime.registry.get_sample_value
    assert sample("tgm_tailchat_calls_total", {"operation": "sendMessage", "outcome": "UNAVAILABLE"}) == 1
    assert sample("tgm_tailchat_retries_total", {"operation": "whoami"}) == 1
    tailchat.faults["getBotCommands"] = httpx.Response(503, text="bad gateway")
    await client.data(cmd.GetTailchatCommands, {"appId": APP_ID})
    assert len(tailchat.bodies("getBotCommands")) == 2  # a read is tried again

    tailchat.faults["sendMessage"] = httpx.ReadTimeout("slow")
    await err(client, cmd.SendChannelMessage, {"appId": APP_ID, "converseId": "c1", "text": "hi"}, "TIMEOUT")
    await err(client, cmd.CheckTailchatApp, {"appId": "nosuchapp"}, "NOT_FOUND")


async def test_send_to_a_user_opens_the_dm_and_edit_keeps_the_inline_actions(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await registered(client, check=False)  # the bot's id is asked for when the markup needs it
    markup = {
        "replyKeyboard": {"rows": [[{"text": "Yes"}, {"text": "No"}]]},
        "inline": {
            "actions": [{"id": "ok", "type": "invoke", "label": "OK", "params": {"order": 7}}],
            "rows": [{"actions": ["ok"]}],
        },
    }
    sent = await client.data(
        cmd.SendChannelMessage, {"appId": APP_ID, "userId": "u42", "text": "hello", "markup": markup}
    )
    assert sent["converseId"] == "dm-u42" and sent["groupId"] is None and sent["hasReplyKeyboard"]
    assert tailchat.bodies("ensureDMWithUser") == [{"userId": "u42"}]
    meta = tailchat.bodies("sendMessage")[-1]["meta"]
    assert meta["inlineActions"]["actions"][0]["params"] == {"order": 7, "botId": BOT_ID}
    assert len(tailchat.bodies("whoami")) == 1

    # Text only: the whole meta goes again (the server would drop what is not re-sent).
    edited = await client.data(
        cmd.EditChannelMessage, {"appId": APP_ID, "messageId": sent["messageId"], "text": "v2"}
    )
    assert edited["content"] == "v2" and edited["inlineActionIds"] == ["ok"] and edited["edited"]
    assert tailchat.bodies("editMessage")[-1]["meta"] == meta
    # Seed 002's example D as meant: the reply keyboard goes, the inline actions stay.
    removed = await client.data(
        cmd.EditChannelMessage,
        {"appId": APP_ID, "messageId": sent["messageId"], "markup": {"replyKeyboard": {"remove": True}}},
    )
    assert not removed["hasReplyKeyboard"] and removed["inlineActionIds"] == ["ok"]
    assert tailchat.bodies("editMessage")[-1]["meta"] == {**meta, "replyKeyboard": {"remove": True}}

    cleared = await client.data(
        cmd.EditChannelMessage, {"appId": APP_ID, "messageId": sent["messageId"], "clearMarkup": True}
    )
    assert cleared["inlineActionIds"] == [] and tailchat.bodies("editMessage")[-1]["meta"] == {}

    await client.data(cmd.DeleteChannelMessage, {"appId": APP_ID, "messageId": sent["messageId"]})
    await err(
        client, cmd.DeleteChannelMessage, {"appId": APP_ID, "messageId": sent["messageId"]}, "NOT_FOUND"
    )
    await err(
        client, cmd.EditChannelMessage, {"appId": APP_ID, "messageId": "m9999", "text": "x"}, "NOT_FOUND"
    )


async def test_answer_callback_once_then_expired_and_the_answer_budget(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await registered(client)
    tailchat.traces.add("trace-1")
    answer = {"appId": APP_ID, "traceId": "trace-1", "userId": "u1", "text": "done"}
    assert (await client.data(cmd.AnswerCallback, answer))["answered"] is True
    sent = tailchat.bodies("answerCallbackQuery")[-1]
    assert sent["appSecret"] == f"{APP_ID}:{SECRET}" and sent["show_alert"] is False
    late = await err(client, cmd.AnswerCallback, answer, "CONFLICT")
    assert "expired" in late["message"]

    budget = client.runtime.app.messages.budget
    budget.limit = 2  # the server's 60, made small
    tailchat.traces.update({"t2", "t3"})
    await client.data(cmd.AnswerCallback, {**answer, "traceId": "t2"})
    tailchat.requests.clear()
    limited = await client.call(cmd.AnswerCallback, {**answer, "traceId": "t3"})
    assert limited["error"]["code"] == "RATE_LIMITED" and not tailchat.requests
    assert 0 < limited["error"]["retry_after"] <= 60


async def test_bot_info_in_order_username_once_and_commands_with_etag(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await registered(client)
    commands = [
        {"command": "help", "description": "Help"},
        {"command": "dm", "description": "DM only", "scope": {"type": "all_private_chats"}},
    ]
    done = await client.data(
        cmd.SetTailchatBotInfo,
        {"appId": APP_ID, "username": "support_bot", "allowGroup": True, "commands": commands},
    )
    assert done["fields"] == ["username", "allowGroup", "commands"]
    again = await err(
        client,
        cmd.SetTailchatBotInfo,
        {"appId": APP_ID, "allowGroup": False, "username": "other_bot"},
        "CONFLICT",
    )
    assert again["details"]["field"] == "username" and again["details"]["setBefore"] == []
    await err(
        client, cmd.SetTailchatBotInfo, {"appId": APP_ID, "username": "notabotname"}, "VALIDATION_ERROR"
    )

    first = await client.data(cmd.GetTailchatCommands, {"appId": APP_ID})
    assert [c["command"] for c in first["commands"]] == ["help", "dm"] and not first["notModified"]
    cached = await client.data(cmd.GetTailchatCommands, {"appId": APP_ID, "ifEtag": first["etag"]})
    assert cached["notModified"] and cached["commands"] is None
    scoped = await client.data(cmd.GetTailchatCommands, {"appId": APP_ID, "scopeType": "all_private_chats"})
    assert [c["command"] for c in scoped["commands"]] == ["dm"]
    await err(client, cmd.GetTailchatCommands, {"appId": APP_ID, "scopeType": "chat"}, "VALIDATION_ERROR")


async def test_rotate_sets_the_callback_url_and_remove_forgets_everything(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    first = await registered(client)
    rotated = await client.data(cmd.RotateTailchatCallbackToken, {"appId": APP_ID})
    assert (
        rotated["applied"] and rotated["callbackUrl"] == "https://tgm.example.com" + rotated["callbackPath"]
    )
    assert rotated["callbackPath"] != first["callbackPath"]
    assert tailchat.bot_info["callbackUrl"] == rotated["callbackUrl"]

    await client.data(
        cmd.SendChannelMessage, {"appId": APP_ID, "converseId": "c1", "groupId": "g1", "text": "x"}
    )
    assert (await client.data(cmd.RemoveTailchatApp, {"appId": APP_ID}))["affected"] == 1
    db = client.runtime.db
    assert await db["tailchat_apps"].count_documents({}) == 0
    assert await db["tailchat_messages"].count_documents({}) == 0
    await err(client, cmd.RemoveTailchatApp, {"appId": APP_ID}, "NOT_FOUND")


async def test_a_secret_the_master_keys_cannot_open_is_a_clear_conflict(client: RuntimeClient) -> None:
    await registered(client)
    other = SecretBox(os.urandom(32))
    await client.runtime.db["tailchat_apps"].update_one(
        {"_id": APP_ID}, {"$set": {"secret_enc": other.encrypt(SECRET, context=APP_ID)}}
    )
    error = await err(client, cmd.CheckTailchatApp, {"appId": APP_ID}, "CONFLICT")
    assert "register the app again" in error["message"] and SECRET not in json.dumps(error)
    long_answer = {"appId": APP_ID, "traceId": "t", "userId": "u1", "text": "😀" * 101}  # 202 UTF-16 units
    await err(client, cmd.AnswerCallback, long_answer, "VALIDATION_ERROR")
