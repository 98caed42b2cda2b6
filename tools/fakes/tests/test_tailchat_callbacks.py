"""The Tailchat fake's callbacks and button answers: a test acts as Tailchat people through
`/_fake/tailchat/*` and a loopback webhook receives what the server would POST (seed 002's inbox,
dm.start and buttonCallback payloads, field by field; reference §1.4 where the seed is silent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tgm_fakes import tailchat as tc
from tgm_fakes.common import LoopbackServer
from tgm_testing.procs import wait_for

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


class Webhook:
    """A bot's callback endpoint: records every POST, answers `status`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200

        async def callback(request: Request) -> Response:
            self.received.append({"headers": dict(request.headers), "body": await request.json()})
            return JSONResponse({}, self.status)

        self.server = LoopbackServer(Starlette(routes=[Route("/bot/callback", callback, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url + "/bot/callback"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LoopbackServer, Webhook]]:
    hook = Webhook()
    with LoopbackServer(tc.build()) as fake, hook.server:
        yield fake, hook


@pytest.fixture
def world(servers: tuple[LoopbackServer, Webhook]) -> tc.TailchatWorld:
    fake, hook = servers
    world: tc.TailchatWorld = fake.app.state.world
    world.reset()
    fake.app.state.callbacks.clear()
    hook.received.clear()
    hook.status = 200
    world.apps[tc.DEFAULT_APP_ID].bot["callbackUrl"] = hook.url
    return world


@pytest.fixture
def hook(servers: tuple[LoopbackServer, Webhook], world: tc.TailchatWorld) -> Webhook:
    return servers[1]


@pytest.fixture
def people(servers: tuple[LoopbackServer, Webhook], world: tc.TailchatWorld) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=servers[0].url + "/_fake/tailchat", timeout=10) as client:
        yield client


@pytest.fixture
def bot(servers: tuple[LoopbackServer, Webhook], world: tc.TailchatWorld) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=servers[0].url + "/api/openapi/bot",
        timeout=5,
        headers={"X-App-Secret": tc.DEFAULT_APP_SECRET},
    ) as client:
        yield client


def only(hook: Webhook, kind: str) -> dict[str, Any]:
    assert len(hook.received) == 1, hook.received
    got = hook.received[0]
    assert got["headers"]["x-tc-payload-type"] == kind
    assert got["headers"]["content-type"] == "application/json"
    # Unsigned: no signature or auth header of any kind.
    assert not {h for h in got["headers"] if "sign" in h or "auth" in h or "secret" in h}
    return got["body"]


def test_group_mention_sends_the_whole_inbox_document(people: httpx.Client, hook: Webhook) -> None:
    content = f"[at={tc.BOT_USER_ID}]TG-Matrix Bot[/at] /start"
    r = people.post("/group-message", json={"userId": tc.ALICE_ID, "content": content}).json()
    assert r["callbacks"][0]["status"] == 200 and r["message"]["meta"]["mentions"] == [tc.BOT_USER_ID]
    body = only(hook, "inbox")
    # Seed: {_id, userId, type: "message", payload: {converseId, messageId, messageAuthor,
    # messageSnippet, messagePlainContent}}; the server's document also has groupId, readed, dates.
    assert set(body) == {"_id", "userId", "type", "payload", "readed", "createdAt", "updatedAt", "__v"}
    assert body["userId"] == tc.BOT_USER_ID and body["type"] == "message" and body["readed"] is False
    assert body["payload"] == {
        "groupId": tc.GROUP_ID,
        "converseId": tc.GROUP_CONVERSE_ID,
        "messageId": r["message"]["_id"],
        "messageAuthor": tc.ALICE_ID,
        "messageSnippet": content,  # the raw content, mention markup included
    }


def test_receive_all_group_messages_sends_the_inbox_like_body(
    people: httpx.Client, hook: Webhook, world: tc.TailchatWorld
) -> None:
    people.post("/group-message", json={"userId": tc.BOB_ID, "content": "no mention"})
    assert hook.received == []
    world.apps[tc.DEFAULT_APP_ID].bot["receiveAllGroupMessages"] = True
    people.post("/group-message", json={"userId": tc.BOB_ID, "content": "hello all", "plain": "hello all"})
    body = only(hook, "inbox")
    assert set(body) == {"userId", "type", "payload"}  # no _id, readed or timestamps
    assert body["payload"]["messagePlainContent"] == "hello all" and body["payload"]["groupId"] == tc.GROUP_ID
    hook.received.clear()
    world.apps[tc.DEFAULT_APP_ID].bot["allowGroup"] = False
    people.post("/group-message", json={"userId": tc.BOB_ID, "content": "again"})
    assert hook.received == []


def test_a_receive_all_bot_hears_its_own_group_messages_and_mentions_reach_bots(
    bot: httpx.Client, hook: Webhook, world: tc.TailchatWorld
) -> None:
    # The server's receive-all forwarder checks no author: the bot's own message comes back.
    world.apps[tc.DEFAULT_APP_ID].bot["receiveAllGroupMessages"] = True
    sent = bot.post(
        "/sendMessage", json={"converseId": tc.GROUP_CONVERSE_ID, "groupId": tc.GROUP_ID, "content": "mine"}
    )
    got = wait_for(lambda: hook.received, message="the bot's own group message as inbox")
    assert got[0]["body"]["payload"]["messageAuthor"] == tc.BOT_USER_ID
    assert got[0]["body"]["payload"]["messageId"] == sent.json()["data"]["_id"]
    # A bot's message mentioning another bot reaches that bot's app with the whole inbox document.
    hook.received.clear()
    world.apps[tc.DEFAULT_APP_ID].bot["receiveAllGroupMessages"] = False
    other = world.add_app("Other", callbackUrl=hook.url)
    world.groups[tc.GROUP_ID].members.append(other.bot_user_id)
    meta = {"mentions": [other.bot_user_id]}
    bot.post(
        "/sendMessage",
        json={"converseId": tc.GROUP_CONVERSE_ID, "groupId": tc.GROUP_ID, "content": "hey", "meta": meta},
    )
    got = wait_for(lambda: hook.received, message="the mention of the other bot")
    assert got[0]["body"]["userId"] == other.bot_user_id and "_id" in got[0]["body"]


def test_dm_inbox_both_shapes_and_e2ee(people: httpx.Client, hook: Webhook) -> None:
    r = people.post("/dm", json={"userId": tc.ALICE_ID, "content": "/start", "plain": "/start"}).json()
    body = only(hook, "inbox")
    assert "groupId" not in body["payload"]
    assert body["payload"] == {
        "converseId": r["message"]["converseId"],
        "messageId": r["message"]["_id"],
        "messageAuthor": tc.ALICE_ID,
        "messageSnippet": "/start",
        "messagePlainContent": "/start",
    }
    hook.received.clear()
    people.post("/dm", json={"userId": tc.ALICE_ID, "content": "no plain"})
    assert "messagePlainContent" not in only(hook, "inbox")["payload"]
    hook.received.clear()
    people.post("/dm", json={"userId": tc.ALICE_ID, "content": "secret", "plain": "secret", "e2ee": True})
    payload = only(hook, "inbox")["payload"]
    assert payload["messageSnippet"] == "加密消息" and "messagePlainContent" not in payload


def test_dm_start_by_deep_link_and_by_typed_start(people: httpx.Client, hook: Webhook) -> None:
    r = people.post("/dm-start", json={"userId": tc.BOB_ID, "payload": "rk_show"}).json()
    body = only(hook, "dm.start")
    assert body["type"] == "dm.start"
    assert body["payload"]["params"] == "rk_show"  # startBotDM passes the deep-link string
    assert {k: body["payload"][k] for k in ("botUserId", "fromUserId", "converseId")} == {
        "botUserId": tc.BOT_USER_ID,
        "fromUserId": tc.BOB_ID,
        "converseId": r["result"]["converseId"],
    }
    assert isinstance(body["payload"]["timestamp"], int)
    bad = people.post("/dm-start", json={"userId": tc.BOB_ID, "payload": "no spaces"})
    assert bad.status_code == 500 and "Invalid deep link payload" in bad.json()["message"]
    hook.received.clear()
    people.post("/dm-start", json={"userId": tc.BOB_ID})
    assert "params" not in only(hook, "dm.start")["payload"]
    # A typed "/start arg" is an inbox, plus dm.start {text: arg} once botDmStartFromTyped is on
    # (the seed's example params shape).
    hook.received.clear()
    people.post("/features", json={"botDmStartFromTyped": True})
    people.post("/dm", json={"userId": tc.ALICE_ID, "content": "/start rk_show"})
    kinds = {h["headers"]["x-tc-payload-type"]: h["body"] for h in hook.received}
    assert set(kinds) == {"inbox", "dm.start"} and kinds["dm.start"]["payload"]["params"] == {
        "text": "rk_show"
    }


def send_buttons(bot: httpx.Client, converse: str, group: str | None = None) -> dict[str, Any]:
    actions = [
        {
            "id": "confirm_delete",
            "type": "invoke",
            "label": "确认删除",
            "params": {"action": "confirm_delete", "sessionId": "abc123", "botId": tc.BOT_USER_ID},
        },
        {
            "id": "comment",
            "type": "modal",
            "label": "💬 Comment",
            "params": {"title": "发表评论", "botId": tc.BOT_USER_ID},
        },
        {"id": "no_bot", "type": "invoke", "label": "x", "params": {"action": "x"}},
        {"id": "help", "type": "command", "label": "帮助", "params": {"text": "/help"}},
        {"id": "docs", "type": "url", "label": "docs", "params": {"url": "https://tailchat.msgbyte.com"}},
    ]
    body: dict[str, Any] = {
        "converseId": converse,
        "content": "点击下方按钮触发机器人回调",
        "meta": {"inlineActions": {"actions": actions}},
    }
    if group:
        body["groupId"] = group
    r = bot.post("/sendMessage", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def answer(
    bot: httpx.Client, trace: str, user: str, text: str = "已处理", secret: str = tc.DEFAULT_APP_SECRET
) -> httpx.Response:
    body = {
        "appSecret": secret,
        "traceId": trace,
        "userId": user,
        "text": text,
        "show_alert": False,
        "cache_time": 5,
    }
    return bot.post("/answerCallbackQuery", json=body)


def test_button_press_sends_button_callback_and_the_answer_reaches_the_user(
    people: httpx.Client, hook: Webhook, bot: httpx.Client, world: tc.TailchatWorld
) -> None:
    msg = send_buttons(bot, tc.GROUP_CONVERSE_ID, tc.GROUP_ID)
    press = {
        "userId": tc.ALICE_ID,
        "messageId": msg["_id"],
        "actionId": "confirm_delete",
        "traceId": "trace-xyz",
    }
    r = people.post("/press", json=press).json()
    assert r["click"]["routed"] is True
    body = only(hook, "buttonCallback")
    # The seed's buttonCallback example, field by field.
    assert body["type"] == "buttonCallback"
    payload = body["payload"]
    assert set(payload) == {
        "messageAuthor",
        "converseId",
        "groupId",
        "originalMessageId",
        "actionId",
        "type",
        "params",
        "traceId",
        "ts",
    }
    assert payload["messageAuthor"] == tc.ALICE_ID and payload["converseId"] == tc.GROUP_CONVERSE_ID
    assert payload["groupId"] == tc.GROUP_ID and payload["originalMessageId"] == msg["_id"]
    assert (
        payload["actionId"] == "confirm_delete"
        and payload["type"] == "invoke"
        and payload["traceId"] == "trace-xyz"
    )
    assert payload["params"] == {"action": "confirm_delete", "sessionId": "abc123", "botId": tc.BOT_USER_ID}
    # The answer rules in the server's order; a failed answer leaves the trace usable.
    assert answer(bot, "nope", tc.ALICE_ID).json()["message"] == "Invalid or expired traceId"
    mismatch = answer(bot, "trace-xyz", tc.BOB_ID)
    assert mismatch.status_code == 500 and mismatch.json() == {
        "name": "Error",
        "message": "UserId mismatch",
        "code": 500,
    }
    assert (
        answer(bot, "trace-xyz", tc.ALICE_ID, "x" * 201).json()["message"]
        == "Text too long (max 200 characters)"
    )
    other = world.add_app("Other")
    other_answer = answer(bot, "trace-xyz", tc.ALICE_ID, secret=other.app_secret)
    assert other_answer.json()["message"] == "TraceId does not belong to this bot"
    assert (
        answer(bot, "trace-xyz", tc.ALICE_ID, secret=f"{tc.DEFAULT_APP_ID}:bad").json()["message"]
        == "Open app secret not match"
    )
    ok = answer(bot, "trace-xyz", tc.ALICE_ID)
    assert ok.status_code == 200 and ok.json() == {"code": 200, "data": {"success": True}}
    shown = people.get("/answers").json()
    assert [(a["userId"], a["text"], a["show_alert"], a["traceId"]) for a in shown] == [
        (tc.ALICE_ID, "已处理", False, "trace-xyz")
    ]
    # A traceId answers once.
    assert answer(bot, "trace-xyz", tc.ALICE_ID).json()["message"] == "Invalid or expired traceId"


def test_trace_expires_after_30_seconds_of_the_fakes_clock(
    people: httpx.Client, hook: Webhook, bot: httpx.Client
) -> None:
    dm = bot.post("/ensureDMWithUser", json={"userId": tc.BOB_ID}).json()["data"]["converseId"]
    msg = send_buttons(bot, dm)
    people.post(
        "/press",
        json={"userId": tc.BOB_ID, "messageId": msg["_id"], "actionId": "comment", "traceId": "t-late"},
    )
    payload = only(hook, "buttonCallback")["payload"]
    assert payload["type"] == "modal" and "groupId" not in payload  # omitted, not null, in a DM
    people.post("/clock", json={"advance": 29})
    people.post(
        "/press",
        json={
            "userId": tc.BOB_ID,
            "messageId": msg["_id"],
            "actionId": "confirm_delete",
            "traceId": "t-in-time",
        },
    )
    people.post("/clock", json={"advance": 2})
    assert answer(bot, "t-late", tc.BOB_ID).json()["message"] == "Invalid or expired traceId"
    assert answer(bot, "t-in-time", tc.BOB_ID).status_code == 200


def test_answer_rate_limit_counts_from_the_last_answer(
    people: httpx.Client, bot: httpx.Client, world: tc.TailchatWorld
) -> None:
    world.apps[tc.DEFAULT_APP_ID].bot["callbackAnswerRateLimit"] = 2
    msg = send_buttons(bot, tc.GROUP_CONVERSE_ID, tc.GROUP_ID)
    for i in range(4):
        people.post(
            "/press",
            json={
                "userId": tc.ALICE_ID,
                "messageId": msg["_id"],
                "actionId": "confirm_delete",
                "traceId": f"r{i}",
            },
        )
    assert answer(bot, "r0", tc.ALICE_ID).status_code == 200
    people.post("/clock", json={"advance": 20})
    assert answer(bot, "r1", tc.ALICE_ID).status_code == 200
    people.post("/clock", json={"advance": 5})
    limited = answer(bot, "r2", tc.ALICE_ID)
    assert limited.status_code == 500 and limited.json()["message"] == "Rate limit exceeded"
    # The counter's 60 s run from the last counted answer (t=20), not from the first.
    people.post("/clock", json={"advance": 50})  # t=75: 55 s after the last counted answer
    world.cache.set(
        "callback:trace:r3", {"botUserId": tc.BOT_USER_ID, "fromUserId": tc.ALICE_ID, "ts": 0}, 30
    )
    assert answer(bot, "r3", tc.ALICE_ID).json()["message"] == "Rate limit exceeded"
    people.post("/clock", json={"advance": 6})
    world.cache.set(
        "callback:trace:r3", {"botUserId": tc.BOT_USER_ID, "fromUserId": tc.ALICE_ID, "ts": 0}, 30
    )
    assert answer(bot, "r3", tc.ALICE_ID).status_code == 200


def test_clicks_that_make_no_callback_and_the_click_limits(
    people: httpx.Client, hook: Webhook, bot: httpx.Client, world: tc.TailchatWorld
) -> None:
    msg = send_buttons(bot, tc.GROUP_CONVERSE_ID, tc.GROUP_ID)

    def press(action: str, trace: str | None = "t1", user: str = tc.ALICE_ID) -> httpx.Response:
        return people.post(
            "/press", json={"userId": user, "messageId": msg["_id"], "actionId": action, "traceId": trace}
        )

    command = press("help")
    assert command.status_code == 400 and command.json()["message"] == "COMMAND_NOT_ALLOWED"
    assert press("docs").json()["click"]["route"] == {"type": "url", "target": "https://tailchat.msgbyte.com"}
    assert press("no_bot").json()["click"]["routed"] is False
    assert hook.received == []
    # Without analytics.traceId the callback carries none, and nothing can be answered.
    press("confirm_delete", None)
    assert "traceId" not in only(hook, "buttonCallback")["payload"]
    # The same user + action + traceId within 60 s is processed once.
    hook.received.clear()
    press("comment", "same")
    assert press("comment", "same").json()["click"]["cached"] is True
    assert len(hook.received) == 1
    # 20 clicks per 10 s per user and action, then 429 to the clicker.
    codes = [press("comment", f"n{i}", tc.BOB_ID).status_code for i in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429
    assert press("comment", "n21", tc.BOB_ID).json()["type"] == "RATE_LIMIT"


def test_callbacks_are_not_retried_and_need_a_usable_url(
    people: httpx.Client, hook: Webhook, world: tc.TailchatWorld
) -> None:
    hook.status = 500
    r = people.post("/dm", json={"userId": tc.ALICE_ID, "content": "hi"}).json()
    assert r["callbacks"][0]["status"] == 500 and len(hook.received) == 1
    world.apps[tc.DEFAULT_APP_ID].bot["callbackUrl"] = "not a url"
    r = people.post("/dm", json={"userId": tc.ALICE_ID, "content": "hi"}).json()
    assert r["callbacks"][0]["skipped"] and len(hook.received) == 1
    world.apps[tc.DEFAULT_APP_ID].bot["callbackUrl"] = "http://127.0.0.1:9/unreachable"
    r = people.post("/dm", json={"userId": tc.ALICE_ID, "content": "hi"}).json()
    assert r["callbacks"][0]["error"] and len(people.get("/callbacks").json()) == 3


def test_test_api_reads_messages_and_refuses_bad_input(people: httpx.Client, bot: httpx.Client) -> None:
    msg = send_buttons(bot, tc.GROUP_CONVERSE_ID, tc.GROUP_ID)
    listed = people.get(
        "/messages", params={"converseId": tc.GROUP_CONVERSE_ID, "author": tc.BOT_USER_ID}
    ).json()
    assert [m["_id"] for m in listed] == [msg["_id"]] and listed[0]["meta"]["inlineActions"]
    assert people.post("/dm", json={"userId": "nobody", "content": "x"}).status_code == 400
    assert people.post("/press", json={"userId": tc.ALICE_ID}).status_code == 400
    assert people.post("/clock", json={"advance": "soon"}).status_code == 400
    app = people.post("/apps", json={"appName": "Second", "callbackUrl": "http://127.0.0.1:1/cb"}).json()
    view = people.get("/world").json()
    assert app["appId"] in {a["appId"] for a in view["apps"]} and app["appSecret"].startswith(
        app["appId"] + ":"
    )
    who = bot.get("/whoami", headers={"X-App-Secret": app["appSecret"]}).json()
    assert who["data"]["_id"] == app["botUserId"]


def test_the_pytest_fixture_reseeds_the_world_between_tests(fake_tailchat: Any) -> None:
    assert fake_tailchat.key == tc.DEFAULT_APP_SECRET and fake_tailchat.extra["bot_user_id"] == tc.BOT_USER_ID
    assert fake_tailchat.world.messages == {}
    with httpx.Client(
        base_url=fake_tailchat.url, headers={"X-App-Secret": fake_tailchat.key}, timeout=5
    ) as c:
        r = c.post("/api/openapi/bot/ensureDMWithUser", json={"userId": fake_tailchat.extra["alice_id"]})
        assert r.json()["data"]["converseId"] in fake_tailchat.world.dms
        assert fake_tailchat.state.last("ensureDMWithUser").headers["x-app-secret"] == fake_tailchat.key
