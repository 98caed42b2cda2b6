"""Bot accounts through the real Telethon: login by token, messages from users, keyboards kept on
messages, inline-button presses (admin API and getBotCallbackAnswer) and their answers."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from telethon import Button, errors, events, functions, types
from tg_emulator import Emulator, World
from tg_emulator.testing import Inbox, w

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def bot_and_user(tg_world):
    bot, token = tg_world.bots.add("shop_helper_bot", first_name="Shop")
    user = tg_world.add_user("+15550300001", first_name="Una", username="una_user")
    return bot, token, user


async def bot_client(tg_client_factory, token: str):
    client = await tg_client_factory()
    await w(client.sign_in(bot_token=token))
    return client


async def user_client(tg_emulator, tg_client_factory, user):
    client = await tg_client_factory(tg_emulator.session_for(user))
    await w(client.get_me())
    return client


async def test_bot_logs_in_by_token_and_a_bad_token_is_refused(tg_client_factory, bot_and_user):
    bot, token, _ = bot_and_user
    client = await bot_client(tg_client_factory, token)
    me = await w(client.get_me())
    assert me.bot and me.id == bot.id and me.username == "shop_helper_bot"
    other = await tg_client_factory()
    with pytest.raises(errors.AccessTokenInvalidError):
        await w(other.sign_in(bot_token=f"{bot.id}:wrong-secret"))


async def test_user_writes_bot_replies_with_keyboards_kept_in_history(
    tg_emulator, tg_world, tg_client_factory, bot_and_user
):
    bot, token, user = bot_and_user
    cb = await bot_client(tg_client_factory, token)
    cu = await user_client(tg_emulator, tg_client_factory, user)
    bot_inbox = Inbox(cb, incoming=True)
    await w(cu.send_message("shop_helper_bot", "hello bot"))
    got = await bot_inbox.wait_for("hello bot")
    assert got.sender_id == user.id and got.is_private

    user_inbox = Inbox(cu, incoming=True)
    inline = [[Button.inline("Confirm", b'confirm:{"n":2}'), Button.url("Site", "https://example.com")]]
    await w(cb.send_message(user.id, "pick one", buttons=inline))
    ev = await user_inbox.wait_for("pick one")
    markup = ev.message.reply_markup
    assert isinstance(markup, types.ReplyInlineMarkup)
    first, second = markup.rows[0].buttons
    assert first.type.data == b'confirm:{"n":2}' and second.type.url == "https://example.com"

    reply = [[Button.text("Yes", resize=True, single_use=True), Button.text("No")]]
    await w(cb.send_message(user.id, "yes or no?", buttons=reply))
    await user_inbox.wait_for("yes or no?")
    history = await w(cu.get_messages("shop_helper_bot", limit=5))
    by_text = {m.message: m.reply_markup for m in history}
    assert isinstance(by_text["pick one"], types.ReplyInlineMarkup)
    kb = by_text["yes or no?"]
    assert isinstance(kb, types.ReplyKeyboardMarkup) and kb.resize and kb.single_use
    assert [b.text for b in kb.rows[0].buttons] == ["Yes", "No"]
    assert by_text["hello bot"] is None

    recorded = [d for d in tg_world.deliveries if d.from_user_id == bot.id]
    assert recorded[0].reply_markup["_"] == "ReplyInlineMarkup"
    assert recorded[0].reply_markup["rows"][0]["buttons"][0]["type"]["data"] == 'confirm:{"n":2}'
    # A person's client cannot put a keyboard on a message: Telegram ignores it.
    await w(cu.send_message("shop_helper_bot", "sneaky", buttons=[[Button.text("x")]]))
    assert tg_world.deliveries[-1].reply_markup is None


async def test_press_reaches_bot_and_user_gets_its_answer(tg_emulator, tg_client_factory, bot_and_user):
    _bot, token, user = bot_and_user
    cb = await bot_client(tg_client_factory, token)
    cu = await user_client(tg_emulator, tg_client_factory, user)
    bot_inbox = Inbox(cb, incoming=True)
    await w(cu.send_message("shop_helper_bot", "/start"))
    await bot_inbox.wait_for("/start")
    presses: asyncio.Queue = asyncio.Queue()

    async def on_press(event):
        await presses.put(event.data)
        await event.answer("Done: order 2", alert=True, cache_time=5)

    cb.add_event_handler(on_press, events.CallbackQuery())
    sent = await w(cb.send_message(user.id, "order?", buttons=[[Button.inline("Confirm", b"confirm")]]))
    user_inbox = Inbox(cu, incoming=True)
    msg = (await user_inbox.wait_for("order?")).message
    answer = await w(
        cu(functions.messages.GetBotCallbackAnswerRequest("shop_helper_bot", msg.id, data=b"confirm"))
    )
    assert answer.message == "Done: order 2" and answer.alert and answer.cache_time == 5
    assert await w(presses.get()) == b"confirm"
    assert sent.id  # the bot's own id of the message
    q = next(iter(tg_emulator.world.bots.queries.values()))
    assert q.bot_msg_id == sent.id and q.user_msg_id == msg.id

    with pytest.raises(errors.DataInvalidError):  # data no button carries
        await w(cu(functions.messages.GetBotCallbackAnswerRequest("shop_helper_bot", msg.id, data=b"nope")))


async def test_unanswered_press_times_out_and_answers_are_checked(
    tg_emulator, tg_client_factory, bot_and_user
):
    bot, token, user = bot_and_user
    world = tg_emulator.world
    world.bots.answer_timeout = 0.5
    cb = await bot_client(tg_client_factory, token)
    cu = await user_client(tg_emulator, tg_client_factory, user)
    await w(cu.send_message("shop_helper_bot", "hi"))
    await w(cb.send_message(user.id, "press", buttons=[[Button.inline("Go", b"go")]]))
    mid = world.bots.latest_markup_message(user, bot)
    assert mid is not None
    with pytest.raises(errors.BotResponseTimeoutError):
        await w(cu(functions.messages.GetBotCallbackAnswerRequest("shop_helper_bot", mid, data=b"go")))
    q = next(iter(world.bots.queries.values()))
    ok = await w(cb(functions.messages.SetBotCallbackAnswerRequest(q.query_id, cache_time=0, message="late")))
    assert ok is True and q.answer["message"] == "late"
    with pytest.raises(errors.QueryIdInvalidError):  # answered once only
        await w(cb(functions.messages.SetBotCallbackAnswerRequest(q.query_id, cache_time=0, message="again")))
    with pytest.raises(errors.UserBotRequiredError):
        await w(cu(functions.messages.SetBotCallbackAnswerRequest(q.query_id, cache_time=0)))


async def test_admin_api_adds_bot_presses_button_and_shows_answer(tg_client_factory):
    async with Emulator(World(), admin_port=0) as emu:
        base = f"http://{emu.host}:{emu.admin_port}"
        async with aiohttp.ClientSession() as http:
            made = await (await http.post(f"{base}/bots", json={"username": "admin_made_bot"})).json()
            await http.post(f"{base}/users", json={"phone": "+15550300009", "username": "pat_user"})
            token = made["token"]
            assert token.startswith(f"{made['id']}:")
            client = emu.client()
            await w(client.connect())
            try:
                await w(client.sign_in(bot_token=token))
                await w(client.get_me())

                async def on_press(event):
                    await event.answer("Thanks!", url=None)

                client.add_event_handler(on_press, events.CallbackQuery())
                await http.post(
                    f"{base}/messages", json={"from": "pat_user", "to": "admin_made_bot", "text": "hi"}
                )
                await w(client.send_message("pat_user", "choose", buttons=[[Button.inline("A", b"a:1")]]))
                resp = await http.post(
                    f"{base}/bots/press",
                    json={"user": "pat_user", "bot": "admin_made_bot", "text": "A", "wait": 5},
                )
                pressed = await resp.json()
                assert resp.status == 201 and pressed["data"] == "a:1"
                assert pressed["answer"] == {
                    "message": "Thanks!",
                    "alert": False,
                    "url": None,
                    "cache_time": 0,
                }
                listed = await (await http.get(f"{base}/callbacks", params={"user": "pat_user"})).json()
                assert [c["answer"]["message"] for c in listed] == ["Thanks!"]
                delivered = await (
                    await http.get(f"{base}/deliveries", params={"from": "admin_made_bot"})
                ).json()
                assert delivered[-1]["reply_markup"]["rows"][0]["buttons"][0]["text"] == "A"
                missing = await http.post(
                    f"{base}/bots/press", json={"user": "pat_user", "bot": "admin_made_bot", "text": "Z"}
                )
                assert missing.status == 404
            finally:
                await w(client.disconnect())


def test_world_file_seeds_bots():
    from tg_emulator.world.seed import apply_seed

    world = World()
    made = apply_seed(world, {"bots": [{"username": "seeded_bot", "first_name": "Seeded"}]})
    (bot,) = made["bots"]
    assert world.bots.login(bot["token"]).username == "seeded_bot"
    with pytest.raises(ValueError, match="ends with 'bot'"):
        apply_seed(world, {"bots": [{"username": "not_a_b0t"}]})
