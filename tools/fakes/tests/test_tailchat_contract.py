"""The Tailchat fake against seed 002's own examples, field by field, over real HTTP on loopback.

Where the seed's text is damaged (characters lost when it was repaired from broken encoding, shown
as U+FFFD), the examples below use the evident word (e.g. "请选择操作…" for "请选择�作…"); where the
seed and the real server differ, the test follows `shared/reference/outside-platforms.md` §1 and
says so (the wrapped `{"code":200,"data":…}` envelope, the sha1 ETag, a wrong secret as HTTP 500).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tgm_fakes import tailchat as tc
from tgm_fakes.common import LoopbackServer

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(tc.build()) as srv:
        yield srv


@pytest.fixture
def bot(server: LoopbackServer) -> Iterator[httpx.Client]:
    server.app.state.world.reset()
    with httpx.Client(
        base_url=server.url + "/api/openapi", timeout=5, headers={"X-App-Secret": tc.DEFAULT_APP_SECRET}
    ) as client:
        yield client


def data(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200
    return body.get("data")


def error(r: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["message"] == message and body["code"] == status
    return body


# Seed 002, example A (reply keyboard with trigger "button" + inline invoke/url keyboard).
SEED_A_META = {
    "replyKeyboard": {
        "keyboard": [[{"text": "📊 查看统计"}, {"text": "📋 查看列表"}], [{"text": "🗑️ 清空消息"}]],
        "resize": True,
        "one_time": False,
        "placeholder": "请选择操作…",
        "trigger": "button",
        "toggleLabel": "键盘",
        "toggleIcon": "mdi:keyboard-outline",
    },
    "inlineActions": {
        "actions": [
            {
                "id": "prev_page",
                "type": "invoke",
                "label": "上一页",
                "params": {"action": "prev_page"},
                "priority": "secondary",
            },
            {
                "id": "next_page",
                "type": "invoke",
                "label": "下一页",
                "params": {"action": "next_page"},
                "priority": "secondary",
            },
            {
                "id": "confirm_delete",
                "type": "invoke",
                "label": "确认删除",
                "params": {"action": "confirm_delete"},
                "priority": "danger",
            },
            {
                "id": "help_url",
                "type": "url",
                "label": "查看文档",
                "params": {"url": "https://tailchat.msgbyte.com"},
                "priority": "primary",
            },
        ],
        "keyboard": [{"actions": ["prev_page", "next_page"]}, {"actions": ["confirm_delete", "help_url"]}],
    },
}


def test_whoami_answers_the_bot_user_in_the_wrapped_envelope(bot: httpx.Client) -> None:
    # The seed shows the unwrapped user; the server wraps every result (reference §1.1).
    me = data(bot.get("/bot/whoami"))
    assert set(me) == {"_id", "nickname", "email", "avatar"}
    assert me["_id"] == tc.BOT_USER_ID
    assert me["email"] == f"open_{tc.DEFAULT_APP_ID}@openapi.msgbyte.com"


def test_credentials_are_checked_with_the_servers_own_errors(server: LoopbackServer) -> None:
    url = server.url + "/api/openapi/bot/whoami"
    body = error(httpx.get(url), 401, "Unauthorized")
    assert body["type"] == "NO_TOKEN" and body["data"] == {"error": "No Token"}
    # Plain Errors of the auth step: HTTP 500, not 401 (reference §1.2).
    for header, message in (
        ("no-colon", "Invalid appSecret format"),
        (":secret", "Invalid appSecret format"),
        (f"{tc.DEFAULT_APP_ID}:", "Invalid appSecret format"),
        ("ffffffffff:abc", "Not found open app with the provided token"),
        (f"{tc.DEFAULT_APP_ID}:wrong_secret", "Open app secret not match"),
    ):
        assert error(httpx.get(url, headers={"X-App-Secret": header}), 500, message)["name"] == "Error"
    world: tc.TailchatWorld = server.app.state.world
    world.apps[tc.DEFAULT_APP_ID].capability = []
    try:
        error(
            httpx.get(url, headers={"X-App-Secret": tc.DEFAULT_APP_SECRET}),
            500,
            "Open app not enabled capability:bot",
        )
    finally:
        world.reset()


def test_seed_example_a_keyboards_are_stored_sanitised_and_inline_actions_as_sent(bot: httpx.Client) -> None:
    body = {
        "converseId": tc.GROUP_CONVERSE_ID,
        "groupId": tc.GROUP_ID,
        "content": "📋 请选择操作，或使用下方快速按钮",
        "meta": SEED_A_META,
    }
    msg = data(bot.post("/bot/sendMessage", json=body))
    for key in (
        "_id",
        "content",
        "author",
        "groupId",
        "converseId",
        "reactions",
        "hasRecall",
        "meta",
        "createdAt",
        "updatedAt",
    ):
        assert key in msg, key
    assert msg["author"] == tc.BOT_USER_ID and msg["groupId"] == tc.GROUP_ID
    assert msg["converseId"] == tc.GROUP_CONVERSE_ID and msg["content"] == body["content"]
    assert msg["reactions"] == [] and msg["hasRecall"] is False
    assert msg["createdAt"].endswith("Z") and len(msg["_id"]) == 24
    # A valid keyboard survives sanitising unchanged; inlineActions are stored exactly as sent.
    assert msg["meta"] == SEED_A_META


def test_seed_examples_b_c_e_reply_keyboard_ranges_selective_command_and_bot_buttons(
    bot: httpx.Client,
) -> None:
    b = {
        "replyKeyboard": {
            "keyboard": [[{"text": "✅ 完成"}, {"text": "❌ 取消"}]],
            "one_time": True,
            "placeholder": "请选择操作…",
            "trigger": "button",
        },
        "inlineActions": {
            "actions": [
                {
                    "id": "do_action",
                    "type": "invoke",
                    "label": "操作",
                    "params": {"action": "do_action"},
                    "priority": "success",
                }
            ],
            "ranges": [{"offset": 8, "length": 4, "actionId": "do_action"}],
        },
    }
    c = {
        "replyKeyboard": {
            "keyboard": [[{"text": "📊 查看统计"}]],
            "placeholder": "请选择操作…",
            "trigger": "button",
            "selective": {"visibleForUserIds": [tc.ALICE_ID, tc.BOB_ID]},
        },
        "inlineActions": {
            "actions": [
                {
                    "id": "open_help_cmd",
                    "type": "command",
                    "label": "帮助",
                    "params": {"text": "/help", "mode": "replace"},
                    "priority": "primary",
                }
            ],
            "keyboard": [{"actions": ["open_help_cmd"]}],
        },
    }
    e = {
        "inlineActions": {
            "actions": [
                {
                    "id": "confirm_delete",
                    "type": "invoke",
                    "label": "确认删除",
                    "params": {"action": "confirm_delete", "botId": tc.BOT_USER_ID},
                    "priority": "danger",
                }
            ],
            "keyboard": [{"actions": ["confirm_delete"]}],
        }
    }
    for meta in (b, c, e):
        sent = {
            "converseId": tc.GROUP_CONVERSE_ID,
            "groupId": tc.GROUP_ID,
            "content": "本段文本包含一个[操作]范围，点击可触发动作。",
            "meta": meta,
        }
        assert data(bot.post("/bot/sendMessage", json=sent))["meta"] == meta


def test_reply_keyboard_sanitising_cuts_drops_and_removes(bot: httpx.Client) -> None:
    long = "x" * 40
    rk = {
        "keyboard": [
            [{"text": f"  {long}  "}, {"text": "   "}, {"nope": 1}] + [{"text": str(i)} for i in range(10)]
        ]
        * 10,
        "resize": "yes",  # not a boolean: dropped
        "placeholder": "p" * 80,
        "trigger": "BUTTON",
        "toggleLabel": "t" * 40,
        "toggleIcon": "i" * 70,
        "selective": {"visibleForUserIds": [""] + [f"u{i}" for i in range(120)]},
        "extra": "dropped",
    }
    kept = data(
        bot.post(
            "/bot/sendMessage",
            json={
                "converseId": tc.GROUP_CONVERSE_ID,
                "groupId": tc.GROUP_ID,
                "content": "k",
                "meta": {"replyKeyboard": rk, "other": 1},
            },
        )
    )["meta"]
    keyboard = kept["replyKeyboard"]
    assert len(keyboard["keyboard"]) == 8
    # 8 columns read, then empties dropped: the long label (cut to 32) and 5 digits remain.
    assert keyboard["keyboard"][0] == [{"text": "x" * 32}] + [{"text": str(i)} for i in range(5)]
    assert "resize" not in keyboard and "extra" not in keyboard
    assert keyboard["placeholder"] == "p" * 64 and keyboard["trigger"] == "button"
    assert keyboard["toggleLabel"] == "t" * 32 and keyboard["toggleIcon"] == "i" * 64
    assert keyboard["selective"]["visibleForUserIds"] == [f"u{i}" for i in range(100)]
    assert kept["other"] == 1
    # 32 UTF-16 units, as JavaScript counts: 16 emoji.
    emoji = data(
        bot.post(
            "/bot/sendMessage",
            json={
                "converseId": tc.GROUP_CONVERSE_ID,
                "groupId": tc.GROUP_ID,
                "content": "e",
                "meta": {"replyKeyboard": {"keyboard": [[{"text": "😀" * 20}]]}},
            },
        )
    )
    assert emoji["meta"]["replyKeyboard"]["keyboard"] == [[{"text": "😀" * 16}]]
    for dropped in (
        {"keyboard": [[{"text": " "}]]},
        {"keyboard": "no"},
        "no",
        {
            "keyboard": [[{"text": "y" * 30}] * 8] * 8,
            "placeholder": "z" * 64,
            "selective": {"visibleForUserIds": ["w" * 90] * 100},
        },
    ):
        meta = data(
            bot.post(
                "/bot/sendMessage",
                json={
                    "converseId": tc.GROUP_CONVERSE_ID,
                    "groupId": tc.GROUP_ID,
                    "content": "d",
                    "meta": {"replyKeyboard": dropped},
                },
            )
        )["meta"]
        assert meta == {}, dropped
    removed = data(
        bot.post(
            "/bot/sendMessage",
            json={
                "converseId": tc.GROUP_CONVERSE_ID,
                "groupId": tc.GROUP_ID,
                "content": "r",
                "meta": {
                    "replyKeyboard": {"remove": True, "keyboard": [[{"text": "a"}]], "placeholder": "q"}
                },
            },
        )
    )
    assert removed["meta"] == {"replyKeyboard": {"remove": True, "placeholder": "q"}}


def test_send_message_permissions_and_validation(bot: httpx.Client, server: LoopbackServer) -> None:
    # A group channel without groupId is looked up as a DM converse: 404 (reference §1.3).
    assert (
        error(
            bot.post("/bot/sendMessage", json={"converseId": tc.GROUP_CONVERSE_ID, "content": "x"}),
            404,
            "没有找到会话信息",
        )["name"]
        == "NotFoundError"
    )
    world: tc.TailchatWorld = server.app.state.world
    group = world.add_group("other", tc.ALICE_ID, [tc.BOB_ID])
    r = bot.post(
        "/bot/sendMessage", json={"converseId": group.panels[0], "groupId": group.id, "content": "x"}
    )
    assert error(r, 403, "没有当前会话权限")["name"] == "NoPermissionError"
    world.groups[tc.GROUP_ID].muted.add(tc.BOT_USER_ID)
    error(
        bot.post(
            "/bot/sendMessage",
            json={"converseId": tc.GROUP_CONVERSE_ID, "groupId": tc.GROUP_ID, "content": "x"},
        ),
        500,
        "您因为被禁言无法发送消息",
    )
    body = error(
        bot.post("/bot/sendMessage", json={"content": 5, "meta": [1]}), 422, "Parameters validation error!"
    )
    assert body["type"] == "VALIDATION_ERROR"
    assert body["data"] == [
        {"type": "required", "message": "The 'converseId' field is required.", "field": "converseId"},
        {
            "type": "string",
            "message": "The 'content' field must be a string.",
            "field": "content",
            "actual": 5,
        },
    ]
    assert error(
        bot.post("/bot/sendMessage", content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "Invalid request body",
    )


def test_dm_ensure_send_edit_replaces_meta_and_delete(bot: httpx.Client) -> None:
    # Seed: ensureDMWithUser -> {"converseId": "690b..."}.
    first = data(bot.post("/bot/ensureDMWithUser", json={"userId": tc.ALICE_ID}))
    assert set(first) == {"converseId"}
    assert data(bot.post("/bot/ensureDMWithUser", json={"userId": tc.ALICE_ID})) == first
    error(bot.post("/bot/ensureDMWithUser", json={"userId": tc.BOT_USER_ID}), 500, "invalid userId")
    dm = first["converseId"]
    msg = data(
        bot.post("/bot/sendMessage", json={"converseId": dm, "content": "请选择…", "meta": SEED_A_META})
    )
    assert "groupId" not in msg
    # Seed example D: "remove RK, keep inline" — but the server replaces the whole meta, so the
    # inline actions are gone unless re-sent (reference §1.3, from the code).
    edited = data(
        bot.post(
            "/bot/editMessage", json={"messageId": msg["_id"], "meta": {"replyKeyboard": {"remove": True}}}
        )
    )
    assert edited["meta"] == {"replyKeyboard": {"remove": True}}
    assert edited["isEdited"] is True and "editedAt" in edited and edited["content"] == "请选择…"
    text_only = data(bot.post("/bot/editMessage", json={"messageId": msg["_id"], "content": "更新后的文本"}))
    assert text_only["content"] == "更新后的文本" and text_only["meta"] == {"replyKeyboard": {"remove": True}}
    error(bot.post("/bot/editMessage", json={"messageId": "0" * 24}), 404, "该消息未找到")
    error(
        bot.post("/bot/editMessage", json={"messageId": msg["_id"], "meta": "x"}),
        422,
        "Parameters validation error!",
    )
    assert data(bot.post("/bot/deleteMessage", json={"messageId": msg["_id"]})) is True
    error(bot.post("/bot/deleteMessage", json={"messageId": msg["_id"]}), 404, "该消息未找到")


def test_delete_rules_for_group_and_dm_messages(bot: httpx.Client, server: LoopbackServer) -> None:
    world: tc.TailchatWorld = server.app.state.world
    group_msg = data(
        bot.post(
            "/bot/sendMessage",
            json={"converseId": tc.GROUP_CONVERSE_ID, "groupId": tc.GROUP_ID, "content": "g"},
        )
    )
    error(bot.post("/bot/deleteMessage", json={"messageId": group_msg["_id"]}), 403, "没有删除权限")
    world.groups[tc.GROUP_ID].deleters.add(tc.BOT_USER_ID)
    assert data(bot.post("/bot/deleteMessage", json={"messageId": group_msg["_id"]})) is True
    dm = world.ensure_dm(tc.ALICE_ID, tc.BOT_USER_ID)
    theirs = world.post_message(tc.ALICE_ID, dm, "hello")
    error(bot.post("/bot/deleteMessage", json={"messageId": theirs["_id"]}), 500, "无法删除私人信息")


def test_set_app_bot_info_fields_and_their_refusals(bot: httpx.Client, server: LoopbackServer) -> None:
    # setAppBotInfo returns nothing: the envelope is just {"code": 200}.
    r = bot.post(
        "/app/setAppBotInfo",
        json={"fieldName": "callbackUrl", "fieldValue": "https://your-bot.example.com/bot/callback"},
    )
    assert r.status_code == 200 and r.json() == {"code": 200}
    assert data(bot.post("/app/setAppBotInfo", json={"fieldName": "allowGroup", "fieldValue": True})) is None
    assert (
        data(
            bot.post("/app/setAppBotInfo", json={"fieldName": "receiveAllGroupMessages", "fieldValue": False})
        )
        is None
    )
    for value, message in (
        ("short", "Invalid bot username format"),
        ("my_clean_helper", "Invalid bot username format"),  # must end with "bot"
        ("_my_cleanbot", "Invalid bot username format"),
        (5, "`username` should be a string or null"),
    ):
        error(
            bot.post("/app/setAppBotInfo", json={"fieldName": "username", "fieldValue": value}), 500, message
        )
    assert (
        data(bot.post("/app/setAppBotInfo", json={"fieldName": "username", "fieldValue": "my_cleanmsg_bot"}))
        is None
    )
    error(
        bot.post("/app/setAppBotInfo", json={"fieldName": "username", "fieldValue": "other_bot"}),
        500,
        "Bot username already exists and cannot be modified",
    )
    error(
        bot.post("/app/setAppBotInfo", json={"fieldName": "avatar", "fieldValue": "x"}),
        500,
        "Not allowed fields",
    )
    error(
        bot.post("/app/setAppBotInfo", json={"fieldName": "allowGroup", "fieldValue": "yes"}),
        500,
        "`allowGroup` should be a boolean",
    )
    error(
        bot.post("/app/setAppBotInfo", json={"fieldName": "callbackUrl", "fieldValue": 1}),
        500,
        "`callbackUrl` should be a string",
    )
    bot_info = server.app.state.world.apps[tc.DEFAULT_APP_ID].bot
    assert bot_info["callbackUrl"] == "https://your-bot.example.com/bot/callback"
    assert bot_info["username"] == "my_cleanmsg_bot" and bot_info["allowGroup"] is True
    # getForIntegration answers the whole app document, secret included.
    doc = data(bot.post("/app/getForIntegration", json={"appSecret": tc.DEFAULT_APP_SECRET}))
    assert (
        doc["appId"] == tc.DEFAULT_APP_ID
        and doc["appSecret"] == tc.DEFAULT_APP_SECRET
        and doc["capability"] == ["bot"]
    )


SEED_COMMANDS = [
    {"command": "start", "description": "开始使用清理机器人", "scope": {"type": "default"}},
    {"command": "help", "description": "显示帮助信息", "scope": {"type": "default"}},
    {"command": "clear", "description": "清空消息", "scope": {"type": "default"}},
    {"command": "stats", "description": "查看消息统计", "scope": {"type": "default"}},
    {"command": "list", "description": "查看消息列表", "scope": {"type": "default"}},
]


def test_commands_version_sha1_etag_scopes_and_not_modified(bot: httpx.Client) -> None:
    assert data(bot.post("/app/getBotCommandMeta", json={"appId": tc.DEFAULT_APP_ID})) == {
        "appId": tc.DEFAULT_APP_ID,
        "version": 0,
        "etag": None,
        "updatedAt": None,
    }
    scoped = [
        *SEED_COMMANDS,
        {"command": "dm_only", "description": "私聊", "scope": {"type": "all_private_chats"}},
        {
            "command": "here",
            "description": "本群",
            "scope": {"type": "chat", "chat_id": tc.GROUP_CONVERSE_ID},
        },
        {
            "command": "me",
            "description": "我",
            "scope": {"type": "chat_member", "chat_id": tc.GROUP_CONVERSE_ID, "user_id": tc.ALICE_ID},
        },
    ]
    sent = [{**c, "extra": "stripped"} for c in scoped]
    assert data(bot.post("/app/setAppBotInfo", json={"fieldName": "commands", "fieldValue": sent})) is None
    # The seed shows W/"cmds-12"; the server's ETag is the sha1 hex of JSON.stringify(commands).
    etag = hashlib.sha1(json.dumps(scoped, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
    meta = data(bot.post("/app/getBotCommandMeta", json={"appId": tc.DEFAULT_APP_ID}))
    # The seed shows updatedAt as an ISO string; the server stores Date.now(), milliseconds.
    assert meta["version"] == 1 and meta["etag"] == etag and isinstance(meta["updatedAt"], int)
    default = data(
        bot.post("/app/getBotCommandsByScope", json={"appId": tc.DEFAULT_APP_ID, "scopeType": "default"})
    )
    assert default == {
        "appId": tc.DEFAULT_APP_ID,
        "appName": tc.world.DEFAULT_APP_NAME,
        "scopeType": "default",
        "commands": SEED_COMMANDS,
        "version": 1,
        "etag": etag,
    }
    chat = data(
        bot.post(
            "/app/getBotCommandsByScope",
            json={"appId": tc.DEFAULT_APP_ID, "scopeType": "chat", "chatId": tc.GROUP_CONVERSE_ID},
        )
    )
    assert [c["command"] for c in chat["commands"]] == ["here"]
    member = data(
        bot.post(
            "/app/getBotCommandsByScope",
            json={
                "appId": tc.DEFAULT_APP_ID,
                "scopeType": "chat_member",
                "chatId": tc.GROUP_CONVERSE_ID,
                "userId": tc.BOB_ID,
            },
        )
    )
    assert member["commands"] == []
    # Seed: notModified form [{appId, userId, notModified, version, etag}] / the full form with commands.
    by_user = data(
        bot.post(
            "/app/getBotCommandsByUserIds",
            json={"botUserIds": [tc.BOT_USER_ID], "converseId": tc.GROUP_CONVERSE_ID, "groupId": tc.GROUP_ID},
        )
    )
    assert [c["command"] for c in by_user[0]["commands"]] == [*(c["command"] for c in SEED_COMMANDS), "here"]
    assert {"appId", "appName", "appIcon", "userId", "commands", "version", "etag"} == set(by_user[0])
    not_modified = data(
        bot.post(
            "/app/getBotCommandsByUserIds",
            json={"botUserIds": [tc.BOT_USER_ID], "converseId": tc.GROUP_CONVERSE_ID, "ifVersion": 1},
        )
    )
    assert not_modified == [
        {
            "appId": tc.DEFAULT_APP_ID,
            "userId": tc.BOT_USER_ID,
            "notModified": True,
            "version": 1,
            "etag": etag,
        }
    ]
    error(
        bot.post(
            "/app/getBotCommandsByUserIds",
            json={"botUserIds": [tc.BOT_USER_ID, tc.ALICE_ID], "converseId": "c"},
        ),
        500,
        "Only a single botUserId is allowed per request",
    )
    assert (
        data(bot.post("/app/getBotCommandsByUserIds", json={"botUserIds": [tc.ALICE_ID], "converseId": "c"}))
        == []
    )
    # A fresh scope read with ifEtag is notModified ...
    dm_read = {"appId": tc.DEFAULT_APP_ID, "scopeType": "all_private_chats", "ifEtag": etag}
    assert data(bot.post("/app/getBotCommandsByScope", json=dm_read)) == {
        "appId": tc.DEFAULT_APP_ID,
        "notModified": True,
        "version": 1,
        "etag": etag,
    }
    # ... but the server caches reads by (appId, scope) only: the default scope read above is
    # answered again whatever ifVersion says, until the commands change.
    again = data(
        bot.post(
            "/app/getBotCommandsByScope",
            json={"appId": tc.DEFAULT_APP_ID, "scopeType": "default", "ifVersion": 1},
        )
    )
    assert again == default
    assert (
        data(bot.post("/app/setAppBotInfo", json={"fieldName": "commands", "fieldValue": SEED_COMMANDS[:1]}))
        is None
    )
    fresh = data(
        bot.post(
            "/app/getBotCommandsByScope",
            json={"appId": tc.DEFAULT_APP_ID, "scopeType": "default", "ifVersion": 1},
        )
    )
    assert fresh["version"] == 2 and fresh["commands"] == SEED_COMMANDS[:1]
    whole = data(bot.post("/app/getBotCommands", json={"appId": tc.DEFAULT_APP_ID, "ifVersion": 2}))
    assert whole == {
        "appId": tc.DEFAULT_APP_ID,
        "notModified": True,
        "version": 2,
        "etag": hashlib.sha1(
            json.dumps(SEED_COMMANDS[:1], ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest(),
    }
    error(bot.post("/app/getBotCommands", json={"appId": "ffffffffff"}), 500, "Not found openapp")


def test_command_read_cache_can_be_switched_off_in_the_fake(
    bot: httpx.Client, server: LoopbackServer
) -> None:
    world: tc.TailchatWorld = server.app.state.world
    data(bot.post("/app/setAppBotInfo", json={"fieldName": "commands", "fieldValue": SEED_COMMANDS}))
    read = {"appId": tc.DEFAULT_APP_ID, "scopeType": "default"}
    first = data(bot.post("/app/getBotCommandsByScope", json=read))
    assert "commands" in data(bot.post("/app/getBotCommandsByScope", json={**read, "ifEtag": first["etag"]}))
    world.features["commandReadCache"] = False
    again = data(bot.post("/app/getBotCommandsByScope", json={**read, "ifEtag": first["etag"]}))
    assert again == {"appId": tc.DEFAULT_APP_ID, "notModified": True, "version": 1, "etag": first["etag"]}


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("x", "`commands` should be an array"),
        ([1], "Each command should be an object"),
        ([{"description": "d"}], "Command name is required and should be a string"),
        ([{"command": "a"}], "Command description is required and should be a string"),
        ([{"command": "Bad", "description": "d"}], "Invalid command name format: Bad"),
        (
            [{"command": "a" * 33, "description": "d"}],
            f"Command name too long: {'a' * 33} (max 32 characters)",
        ),
        ([{"command": "a", "description": "d" * 257}], "Command description too long (max 256 characters)"),
        (
            [{"command": "a", "description": "d", "scope": {"type": "everyone"}}],
            "Invalid scope type: everyone",
        ),
        (
            [{"command": "a", "description": "d", "scope": {"type": "chat"}}],
            "chat_id is required for scope type: chat",
        ),
        (
            [{"command": "a", "description": "d", "scope": {"type": "chat_member", "chat_id": "c"}}],
            "user_id is required for scope type: chat_member",
        ),
        ([{"command": "a", "description": "d"}] * 2, "Command names must be unique"),
        (
            [{"command": f"c{i}", "description": "d"} for i in range(51)],
            "Maximum 50 commands allowed per bot",
        ),
    ],
)
def test_commands_refusals(bot: httpx.Client, commands: Any, message: str) -> None:
    error(
        bot.post("/app/setAppBotInfo", json={"fieldName": "commands", "fieldValue": commands}), 500, message
    )


def test_unknown_actions_and_owner_only_app_settings(bot: httpx.Client) -> None:
    assert (
        error(bot.post("/app/nothing", json={}), 404, "Service 'openapi.app.nothing' is not found.")["type"]
        == "SERVICE_NOT_FOUND"
    )
    # Seed's setAppInfo / setAppCapability / setAppOAuthInfo look the app up by owner; with the
    # bot's header the caller is the bot, so they fail (reference §1.3, an inference from the code).
    for name, body in (
        ("setAppInfo", {"fieldName": "appName", "fieldValue": "My Clean Bot"}),
        ("setAppCapability", {"capability": ["bot"]}),
        (
            "setAppOAuthInfo",
            {"fieldName": "redirectUrls", "fieldValue": ["https://your.example.com/oauth/callback"]},
        ),
    ):
        error(bot.post(f"/app/{name}", json=body), 500, "Not found openapp")
