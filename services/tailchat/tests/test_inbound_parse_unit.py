"""Tailchat callback bodies → channel-neutral events (inbound/parse.py), with the bodies made by the
seed-faithful fake's own code (tools/fakes `tgm_fakes.tailchat`: a world, its people and a callback
sender with no URL, which records each body instead of posting it) — so the shapes are exactly those
the fake POSTs: inbox as the whole document and as the receive-all body, mentions, E2EE, plain
content, dm.start by deep link and by a typed /start, buttonCallback with its trace id."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts.events_channels import ButtonPressed, ChannelDmStarted, ChannelMessageReceived, Mention
from tgm_contracts.markup import MessageMarkup
from tgm_fakes.tailchat import ALICE_ID, BOB_ID, BOT_USER_ID, DEFAULT_APP_ID, GROUP_ID, CallbackSender
from tgm_fakes.tailchat.users import People
from tgm_fakes.tailchat.world import TailchatWorld
from tgm_runtime import Invalid
from tgm_tailchat.inbound.parse import Ignored, Parsed, event_id, mentions_of, parse
from tgm_tailchat.messages.render import meta_of

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

APP = DEFAULT_APP_ID


@pytest.fixture
def people() -> People:
    return People(TailchatWorld(), CallbackSender())


def sent(people: People) -> list[tuple[str, dict[str, Any]]]:
    return [(d.kind, d.body) for d in people.sender.deliveries]


def parsed(kind: str, body: dict[str, Any]) -> Any:
    result = parse(kind, body, APP, BOT_USER_ID)
    assert isinstance(result, Parsed), result
    return result


def test_a_dm_is_the_whole_inbox_document_with_its_plain_text(people: People) -> None:
    message, _ = people.dm({"userId": ALICE_ID, "content": "**hi** bot", "plain": "hi bot"})
    ((kind, body),) = sent(people)
    assert kind == "inbox" and "_id" in body and "groupId" not in body["payload"]
    got = parsed(kind, body)
    event = got.event
    assert isinstance(event, ChannelMessageReceived)
    assert (event.channel, event.app_id, event.bot_user_id) == ("tailchat", APP, BOT_USER_ID)
    assert (event.converse_id, event.group_id, event.message_id) == (
        message["converseId"],
        None,
        message["_id"],
    )
    assert (event.sender_id, event.sender_name) == (ALICE_ID, None)
    assert (event.text, event.raw_text, event.is_dm, event.encrypted) == ("hi bot", "**hi** bot", True, False)
    assert event.bot_mentioned is False and event.mentions == []
    assert got.key == f"inbox:{message['_id']}" and event.event_id == event_id(APP, got.key)


def test_a_group_mention_resolves_the_at_markup(people: People) -> None:
    content = f"[at={BOT_USER_ID}]TestBot[/at] ask [at={BOB_ID}]Bob[/at] too"
    message, _ = people.group_message({"userId": ALICE_ID, "content": content})
    ((kind, body),) = sent(people)
    assert "_id" in body  # a mentioned bot gets the whole document
    event = parsed(kind, body).event
    assert event.text == "@TestBot ask @Bob too" and event.raw_text == content
    assert event.mentions == [
        Mention(user_id=BOT_USER_ID, name="TestBot"),
        Mention(user_id=BOB_ID, name="Bob"),
    ]
    assert (event.bot_mentioned, event.is_dm, event.group_id) == (True, False, GROUP_ID)
    assert event.message_id == message["_id"]


def test_a_receive_all_body_has_no_id_and_the_bot_is_not_mentioned(people: People) -> None:
    people.world.apps[APP].bot.update(receiveAllGroupMessages=True)
    people.group_message({"userId": BOB_ID, "content": f"hello [at={ALICE_ID}]Alice[/at]"})
    ((kind, body),) = sent(people)
    assert set(body) == {"userId", "type", "payload"}  # the inbox-like body, without _id
    event = parsed(kind, body).event
    assert (event.bot_mentioned, event.text, event.sender_id) == (False, "hello @Alice", BOB_ID)
    assert event.mentions == [Mention(user_id=ALICE_ID, name="Alice")]


def test_the_bots_own_group_message_is_ignored(people: People) -> None:
    people.world.apps[APP].bot.update(receiveAllGroupMessages=True)
    own = people.world.post_message(BOT_USER_ID, people.world.groups[GROUP_ID].panels[0], "mine", GROUP_ID)
    people.inbox.group_message({**own, "meta": {}}, None)
    ((kind, body),) = sent(people)
    assert parse(kind, body, APP, BOT_USER_ID) == Ignored("the bot's own message")


def test_an_e2ee_message_has_no_text(people: People) -> None:
    people.dm({"userId": ALICE_ID, "content": "ciphertext", "plain": "secret words", "e2ee": True})
    ((kind, body),) = sent(people)
    assert body["payload"]["messageSnippet"] == "加密消息"
    event = parsed(kind, body).event
    assert (event.encrypted, event.text, event.raw_text) == (True, "", "加密消息")


def test_dm_start_by_deep_link_and_by_typed_start(people: People) -> None:
    people.dm_start({"userId": ALICE_ID, "payload": "promo_42"})
    people.world.features["botDmStartFromTyped"] = True
    people.dm({"userId": BOB_ID, "content": "/start rk_show"})
    (k1, deep), (k2, typed), (k3, _inbox) = sent(people)
    assert (k1, k2, k3) == ("dm.start", "dm.start", "inbox")
    first = parsed(k1, deep).event
    assert isinstance(first, ChannelDmStarted)
    assert (first.user_id, first.start_param, first.params, first.bot_user_id) == (
        ALICE_ID,
        "promo_42",
        None,
        BOT_USER_ID,
    )
    assert (
        first.converse_id == deep["payload"]["converseId"]
        and first.started_at_ms == deep["payload"]["timestamp"]
    )
    second = parsed(k2, typed).event
    assert (second.user_id, second.start_param, second.params) == (BOB_ID, "rk_show", {"text": "rk_show"})
    people.dm_start({"userId": ALICE_ID})
    bare = parsed("dm.start", people.sender.deliveries[-1].body).event
    assert bare.start_param is None


def test_a_button_press_carries_its_trace_and_the_markups_own_params(people: People) -> None:
    markup = MessageMarkup.model_validate(
        {
            "inline": {
                "actions": [
                    {
                        "id": "yes",
                        "type": "invoke",
                        "label": "Yes",
                        "params": {"n": 3},
                        "priority": "danger",
                        "confirm": True,
                    }
                ],
                "rows": [{"actions": ["yes"]}],
            }
        }
    )
    world = people.world
    converse = world.ensure_dm(ALICE_ID, BOT_USER_ID)
    message = world.post_message(BOT_USER_ID, converse, "Delete 3?", None, None, meta_of(markup, BOT_USER_ID))
    people.press({"userId": ALICE_ID, "messageId": message["_id"], "actionId": "yes", "traceId": "tc-1"})
    ((kind, body),) = sent(people)
    assert kind == "buttonCallback" and body["payload"]["params"]["botId"] == BOT_USER_ID
    got = parsed(kind, body)
    event = got.event
    assert isinstance(event, ButtonPressed)
    assert (event.action_id, event.kind, event.params, event.trace_id) == ("yes", "invoke", {"n": 3}, "tc-1")
    assert (event.user_id, event.converse_id, event.message_id, event.is_dm) == (
        ALICE_ID,
        converse,
        message["_id"],
        True,
    )
    assert got.key == "button:tc-1" and got.trace_id == "tc-1"


def test_refusals_and_unknown_kinds() -> None:
    with pytest.raises(Invalid, match=r"payload\.converseId"):
        parse(
            "inbox",
            {"type": "message", "payload": {"messageId": "m", "messageAuthor": "a"}},
            APP,
            BOT_USER_ID,
        )
    with pytest.raises(Invalid, match="payload"):
        parse("buttonCallback", {"type": "buttonCallback", "payload": []}, APP, BOT_USER_ID)
    with pytest.raises(Invalid, match="invoke or modal"):
        parse(
            "buttonCallback",
            {"payload": {"actionId": "a", "messageAuthor": "u", "type": "url"}},
            APP,
            BOT_USER_ID,
        )
    assert isinstance(parse("message.new", {}, APP, BOT_USER_ID), Ignored)
    other_bot = {
        "payload": {"actionId": "a", "messageAuthor": "u", "type": "invoke", "params": {"botId": "x"}}
    }
    assert parse("buttonCallback", other_bot, APP, BOT_USER_ID) == Ignored("a press of another bot's button")


def test_mentions_without_a_name_and_repeated() -> None:
    assert mentions_of("[at=u1] hi [at=u1]Ann[/at]") == ("@u1 hi @Ann", [Mention(user_id="u1", name="")])
