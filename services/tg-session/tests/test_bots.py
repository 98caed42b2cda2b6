"""Telegram bot accounts on real infrastructure: nats-server, the database server, the emulator and
Telethon. A bot added by token; a user's message → channel-message-received; a send with an inline
keyboard kept on the message; a press → button-pressed with the action id and params a Tailchat press
of the same markup gives; answer-callback → the user sees the answer; the token stored nowhere in clear."""

from __future__ import annotations

import json
import logging

import pytest
from tgm_contracts.commands import bots as B
from tgm_contracts.markup import MessageMarkup
from tgm_contracts.rpc_bots import AnswerTelegramCallback, SendBotReply

from .conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

MARKUP = {
    "inline": {
        "actions": [
            {"id": "confirm", "type": "invoke", "label": "Confirm", "params": {"n": 2, "s": "abc"}},
            {"id": "ask", "type": "modal", "label": "Cancel", "title": "Sure?", "params": {"n": 2}},
            {"id": "help", "type": "command", "label": "Help", "command": "/help now", "mode": "send"},
            {"id": "site", "type": "url", "label": "Site", "url": "https://example.com/"},
        ],
        "rows": [{"actions": ["confirm", "ask"]}, {"actions": ["help", "site"]}],
    }
}


async def command(r, cmd, payload: dict | None = None) -> dict:
    """A command as the gateway sends it: signed with the bus key when the runtime checks signatures."""
    data = json.dumps(payload or {}).encode()
    auth = getattr(r.rt, "bus_auth", None)
    headers = (
        auth.headers(cmd.SUBJECT, data, "tester", "admin") if auth is not None else {"tgm-role": "admin"}
    )
    msg = await r.rt.nc.request(cmd.SUBJECT, data, headers=headers, timeout=30)
    return json.loads(msg.data)


async def ok(r, cmd, payload: dict | None = None):
    reply = await command(r, cmd, payload)
    assert reply["ok"], reply
    return reply["data"]


def tailchat_press(markup: dict, action_id: str) -> tuple[str, str, dict]:
    """What a Tailchat press of the same markup gives: the tailchat service's renderer makes the meta,
    Tailchat sends the action's params back in a buttonCallback, its parser makes the event."""
    from tgm_tailchat.inbound.parse import BUTTON, parse
    from tgm_tailchat.messages.render import meta_of

    meta = meta_of(MessageMarkup.model_validate(markup), "bot-user-1")
    action = next(a for a in meta["inlineActions"]["actions"] if a["id"] == action_id)
    body = {
        "type": BUTTON,
        "payload": {
            "actionId": action_id,
            "type": action["type"],
            "params": action.get("params", {}),
            "messageAuthor": "u1",
            "traceId": "t1",
            "converseId": "c1",
            "ts": 1,
        },
    }
    ev = parse(BUTTON, body, "app1", "bot-user-1").event
    return ev.action_id, ev.kind, ev.params


async def test_bot_account_end_to_end(replicas, tg_world, events, caplog):
    caplog.set_level(logging.DEBUG)
    bot, token = tg_world.bots.add("shop_keeper_bot", first_name="Shop")
    una = tg_world.add_user("+15550400001", first_name="Una", username="una_b")
    r = await replicas("r1")

    bad = await command(r, B.AddTelegramBot, {"token": f"{bot.id}:{'x' * 35}"})
    assert not bad["ok"] and bad["error"]["code"] == "VALIDATION_ERROR"
    view = await ok(r, B.AddTelegramBot, {"token": token})
    bot_id = f"tg-{bot.id}"
    assert view["botId"] == bot_id and view["username"] == "shop_keeper_bot" and view["status"] == "active"
    await until(lambda: bot_id in r.svc.bots.live)
    listed = await ok(r, B.GetTelegramBots)
    assert listed["items"][0]["heldBy"] == r.rt.settings.replica_id and "token" not in json.dumps(listed)

    # A user writes to the bot.
    tg_world.post(una, bot, "hello bot")
    got = await events.wait("channel-message-received", lambda d: d["text"] == "hello bot")
    assert got["channel"] == "telegram" and got["appId"] == bot_id and got["botUserId"] == str(bot.id)
    assert got["senderId"] == str(una.id) and got["converseId"] == str(una.id) and got["isDm"] is True
    assert got["senderName"] == "Una" and got["botMentioned"] is True

    # The bot answers with an inline keyboard: the emulator keeps it on the message.
    sent = await ok(
        r, B.SendBotMessage, {"botId": bot_id, "chatId": str(una.id), "text": "Order 2?", "markup": MARKUP}
    )
    assert len(sent["messageIds"]) == 1 and sent["inlineActionIds"] == ["confirm", "ask", "help", "site"]
    record = [d for d in tg_world.deliveries if d.from_user_id == bot.id][-1]
    assert record.text == "Order 2?" and record.to_user_id == una.id
    rows = record.reply_markup["rows"]
    assert [b["text"] for b in rows[0]["buttons"]] == ["Confirm", "Cancel"]
    assert rows[0]["buttons"][0]["type"]["data"] == 'confirm:{"n":2,"s":"abc"}'
    assert rows[1]["buttons"][1]["type"]["url"] == "https://example.com/"

    # The user presses Confirm: the same action id, kind and params as a Tailchat press.
    msg_id = tg_world.bots.latest_markup_message(una, bot)
    query = tg_world.bots.press(una, bot, msg_id, b'confirm:{"n":2,"s":"abc"}')
    press = await events.wait("button-pressed", lambda d: d["actionId"] == "confirm")
    assert (press["actionId"], press["kind"], press["params"]) == tailchat_press(MARKUP, "confirm")
    assert press["channel"] == "telegram" and press["traceId"] == str(query.query_id)
    assert press["userId"] == str(una.id) and press["messageId"] == str(query.bot_msg_id)
    modal = tg_world.bots.press(una, bot, msg_id, b'ask:{"n":2}')
    pressed = await events.wait("button-pressed", lambda d: d["actionId"] == "ask")
    assert (pressed["actionId"], pressed["kind"], pressed["params"]) == tailchat_press(MARKUP, "ask")

    # answer-callback (channel telegram, as the tailchat service hands it over): the user sees it.
    answer = {
        "channel": "telegram",
        "appId": bot_id,
        "traceId": press["traceId"],
        "userId": str(una.id),
        "text": "Confirmed",
    }
    done = await r.request(AnswerTelegramCallback.SUBJECT, answer)
    assert done["ok"], done
    assert query.answer == {"message": "Confirmed", "alert": False, "url": None, "cache_time": 0}
    again = await r.request(AnswerTelegramCallback.SUBJECT, answer)
    assert not again["ok"] and again["error"]["code"] == "CONFLICT"
    alert = {**answer, "traceId": str(modal.query_id), "text": "Cancelled", "showAlert": True}
    assert (await r.request(AnswerTelegramCallback.SUBJECT, alert))["ok"]
    assert modal.answer["alert"] is True

    # A command button: as if the user had sent the command (and the spinner ends).
    cmd_press = tg_world.bots.press(una, bot, msg_id, b"/help now")
    said = await events.wait("channel-message-received", lambda d: d["text"] == "/help now")
    assert said["senderId"] == str(una.id) and said["appId"] == bot_id
    await until(lambda: cmd_press.answer is not None)

    # A reply keyed once: a repeat sends nothing.
    reply = {"botId": bot_id, "chatId": str(una.id), "text": "Thanks", "key": "firing-1"}
    first = await r.request(SendBotReply.SUBJECT, reply)
    second = await r.request(SendBotReply.SUBJECT, reply)
    assert first["ok"] and second["ok"] and second["data"]["duplicate"] is True
    assert second["data"]["messageIds"] == first["data"]["messageIds"]
    assert len([d for d in tg_world.deliveries if d.text == "Thanks"]) == 1

    # The token is nowhere in clear: not in any stored document, not in any log line.
    for name in await r.db.list_collection_names():
        async for doc in r.db[name].find({}):
            assert token not in json.dumps(doc, default=str), name
            assert token.partition(":")[2] not in json.dumps(doc, default=str), name
    assert token.partition(":")[2] not in caplog.text

    removed = await command(r, B.RemoveTelegramBot, {"botId": bot_id})
    assert removed["ok"], removed
    assert bot_id not in r.svc.bots.live and (await ok(r, B.GetTelegramBots))["items"] == []


async def test_a_second_replica_forwards_to_the_holder(replicas, tg_world, events):
    bot, token = tg_world.bots.add("relay_bot")
    una = tg_world.add_user("+15550400002", first_name="Una")
    r1 = await replicas("r1")
    await ok(r1, B.AddTelegramBot, {"token": token})
    bot_id = f"tg-{bot.id}"
    await until(lambda: bot_id in r1.svc.bots.live)
    r2 = await replicas("r2")
    await r2.svc.bots.tick()
    assert bot_id not in r2.svc.bots.live  # one holder
    tg_world.post(una, bot, "hi")
    await events.wait("channel-message-received", lambda d: d["text"] == "hi")
    # r2 takes the send and hands it to r1, the holder.
    sent = await r2.svc.bots.send(B.SendBotMessageRequest(bot_id=bot_id, chat_id=str(una.id), text="from r2"))
    assert sent.message_ids and tg_world.deliveries[-1].text == "from r2"


async def test_user_sees_the_answer_given_through_the_public_answer_callback(
    replicas, tg_emulator, tg_world, events
):
    """The whole path: a user's client presses (getBotCallbackAnswer waits), tg-session publishes
    button-pressed, `answer-callback` (channel telegram) reaches the tailchat service, which hands it to
    tg-session, whose bot answers: the user's client returns that answer."""
    import asyncio

    from telethon import functions
    from tgm_contracts.commands.channels import AnswerCallback
    from tgm_tailchat.bootstrap import build as build_tailchat
    from tgm_tailchat.settings import TailchatSettings

    bot, token = tg_world.bots.add("answering_bot")
    una = tg_world.add_user("+15550400003", first_name="Una", username="una_c")
    r = await replicas("r1")
    bot_id = (await ok(r, B.AddTelegramBot, {"token": token}))["botId"]
    await until(lambda: bot_id in r.svc.bots.live)
    tailchat = build_tailchat(
        TailchatSettings(runtime=r.rt.settings.model_copy(update={"replica_id": "tc-1"}))
    )
    await tailchat.start()
    user = tg_emulator.client(tg_emulator.session_for(una))
    try:
        await asyncio.wait_for(user.connect(), 10)
        await asyncio.wait_for(user.send_message("answering_bot", "hi"), 10)
        await events.wait("channel-message-received", lambda d: d["text"] == "hi")
        markup = {
            "inline": {
                "actions": [{"id": "go", "type": "invoke", "label": "Go"}],
                "rows": [{"actions": ["go"]}],
            }
        }
        await ok(
            r, B.SendBotMessage, {"botId": bot_id, "chatId": str(una.id), "text": "Ready?", "markup": markup}
        )
        msg_id = tg_world.bots.latest_markup_message(una, bot)
        asking = asyncio.ensure_future(
            user(functions.messages.GetBotCallbackAnswerRequest("answering_bot", msg_id, data=b"go"))
        )
        press = await events.wait("button-pressed", lambda d: d["actionId"] == "go")
        answer = {
            "channel": "telegram",
            "appId": bot_id,
            "traceId": press["traceId"],
            "userId": press["userId"],
            "text": "Going!",
            "showAlert": True,
        }
        done = await command(r, AnswerCallback, answer)
        assert done["ok"], done
        seen = await asyncio.wait_for(asking, 10)
        assert seen.message == "Going!" and seen.alert
    finally:
        await asyncio.wait_for(user.disconnect(), 5)
        await asyncio.wait_for(tailchat.stop(), 20)


async def test_telegram_pacing_a_bot_is_flood_wait_with_retry_after(replicas, tg_world):
    from tg_emulator.limits import RateLimit

    tg_world.limits.private_chat_messages = RateLimit(1, 60)
    bot, token = tg_world.bots.add("paced_bot")
    una = tg_world.add_user("+15550400004", first_name="Una")
    tg_world.post(una, bot, "hi")
    r = await replicas("r1")
    bot_id = (await ok(r, B.AddTelegramBot, {"token": token}))["botId"]
    await until(lambda: bot_id in r.svc.bots.live)
    send = {"botId": bot_id, "chatId": str(una.id), "text": "one"}
    await ok(r, B.SendBotMessage, send)
    paced = await command(r, B.SendBotMessage, {**send, "text": "two"})
    assert not paced["ok"] and paced["error"]["code"] == "FLOOD_WAIT", paced
    assert paced["error"]["retry_after"] > 0
    assert [d.text for d in tg_world.deliveries if d.from_user_id == bot.id] == ["one"]


async def test_a_revoked_token_makes_the_bot_unauthorized_and_stops_it(replicas, tg_world):
    bot, token = tg_world.bots.add("revoked_bot")
    una = tg_world.add_user("+15550400005", first_name="Una")
    tg_world.post(una, bot, "hi")
    r = await replicas("r1")
    bot_id = (await ok(r, B.AddTelegramBot, {"token": token}))["botId"]
    await until(lambda: bot_id in r.svc.bots.live)
    tg_world.bots.tokens.pop(token)  # revoked at BotFather: the token and its sessions stop working
    tg_world.revoke(user=bot)
    failed = await command(
        r, B.SendBotMessage, {"botId": bot_id, "chatId": str(una.id), "text": "still here?"}
    )
    assert not failed["ok"] and failed["error"]["code"] == "TELEGRAM_ERROR", failed
    await r.svc.bots.tick()
    assert bot_id not in r.svc.bots.live
    (view,) = (await ok(r, B.GetTelegramBots))["items"]
    assert (
        view["status"] == "unauthorized"
        and view["lastError"] == "AUTH_KEY_UNREGISTERED"
        and view["heldBy"] is None
    )
