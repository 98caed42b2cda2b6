"""The Telegram renderer of channel-neutral markup (telegram/markup.py): keyboards, callback data, limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from telethon.tl import types
from tgm_contracts.markup import MessageMarkup, callback_data, parse_callback_data
from tgm_session.telegram.markup import REPLY_KEYBOARD_TEXT, action_kinds, inline_button, render

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def markup(data: dict) -> MessageMarkup:
    return MessageMarkup.model_validate(data)


INLINE = {
    "inline": {
        "actions": [
            {
                "id": "confirm",
                "type": "invoke",
                "label": "Confirm",
                "params": {"n": 2, "s": "abc"},
                "priority": "primary",
            },
            {"id": "cancel", "type": "modal", "label": "Cancel", "title": "Sure?", "priority": "danger"},
            {"id": "site", "type": "url", "label": "Site", "url": "https://example.com/x"},
            {"id": "help", "type": "command", "label": "Help", "command": "/help now", "mode": "send"},
            {"id": "off", "type": "invoke", "label": "Off", "disabled": True},
        ],
        "rows": [{"actions": ["confirm", "cancel"], "label": "Choose"}, {"actions": ["site", "help", "off"]}],
    }
}


def test_inline_actions_become_an_inline_keyboard_with_callback_data_the_parser_reads_back() -> None:
    m = markup(INLINE)
    (msg,) = render("Order 2?", m)
    assert msg.text == "Order 2?" and msg.entities == []
    kb = msg.reply_markup
    assert isinstance(kb, types.ReplyInlineMarkup) and len(kb.rows) == 2  # the row label has no place
    confirm, cancel = kb.rows[0].buttons
    assert confirm.text == "Confirm" and isinstance(confirm.type, types.InlineButtonTypeCallback)
    assert confirm.type.data == b'confirm:{"n":2,"s":"abc"}' == callback_data(m.inline.action("confirm"))
    assert parse_callback_data(confirm.type.data) == ("confirm", {"n": 2, "s": "abc"})
    assert confirm.style.bg_primary and cancel.style.bg_danger
    assert cancel.type.data == b"cancel"  # a modal calls back like invoke (Telegram has no dialog)
    site, help_, off = kb.rows[1].buttons
    assert isinstance(site.type, types.InlineButtonTypeUrl) and site.type.url == "https://example.com/x"
    assert help_.type.data == b"/help now"  # a command press is the command, sent as the user's text
    assert isinstance(off.type, types.InlineButtonTypeDisabled)
    assert action_kinds(m) == {"confirm": "invoke", "cancel": "modal", "off": "invoke"}


def test_reply_keyboard_options_and_remove() -> None:
    m = markup(
        {
            "replyKeyboard": {
                "rows": [[{"text": "Yes"}, {"text": "No"}], [{"text": "🙂" * 16}]],
                "placeholder": "Answer",
                "resize": True,
                "oneTime": True,
                "selective": ["42"],
            }
        }
    )
    (msg,) = render("Well?", m)
    kb = msg.reply_markup
    assert isinstance(kb, types.ReplyKeyboardMarkup)
    assert [[b.text for b in r.buttons] for r in kb.rows] == [
        ["Yes", "No"],
        ["🙂" * 16],
    ]  # 32 UTF-16: kept whole
    assert all(isinstance(b.type, types.ButtonTypeDefault) for r in kb.rows for b in r.buttons)
    assert kb.resize and kb.single_use and kb.selective and kb.placeholder == "Answer"
    (gone,) = render("bye", markup({"replyKeyboard": {"remove": True}}))
    assert isinstance(gone.reply_markup, types.ReplyKeyboardHide) and not gone.reply_markup.selective


def test_both_keyboards_are_two_messages_and_url_ranges_are_links() -> None:
    m = markup(
        {
            "replyKeyboard": {"rows": [[{"text": "Menu"}]]},
            "inline": {
                "actions": [
                    {"id": "docs", "type": "url", "label": "Docs", "url": "https://example.com/docs"},
                    {"id": "more", "type": "invoke", "label": "More"},
                ],
                "ranges": [
                    {"offset": 5, "length": 4, "actionId": "docs"},
                    {"offset": 0, "length": 4, "actionId": "more"},
                ],
            },
        }
    )
    first, second = render("Read docs", m)
    assert first.entities == [types.MessageEntityTextUrl(offset=5, length=4, url="https://example.com/docs")]
    # An action only on a range (not a url) gets a row of its own: no action is lost.
    (row,) = first.reply_markup.rows
    assert [b.text for b in row.buttons] == ["More"]
    assert second.text == REPLY_KEYBOARD_TEXT and isinstance(second.reply_markup, types.ReplyKeyboardMarkup)


def test_callback_data_is_at_most_64_bytes() -> None:
    fits = {"id": "a" * 10, "type": "invoke", "label": "x", "params": {"k": "é" * 22}}
    action = MessageMarkup.model_validate({"inline": {"actions": [fits], "rows": [{"actions": ["a" * 10]}]}})
    data = inline_button(action.inline.actions[0]).type.data
    assert len(data) <= 64 and parse_callback_data(data)[1] == {"k": "é" * 22}
    with pytest.raises(ValidationError, match="64"):  # refused at the contract, never cut
        MessageMarkup.model_validate(
            {"inline": {"actions": [{**fits, "params": {"k": "é" * 30}}], "rows": [{"actions": ["a" * 10]}]}}
        )
    # A command whose UTF-8 is over 64 bytes (64 UTF-16 units allowed by the contract) is refused here.
    long_cmd = MessageMarkup.model_validate(
        {
            "inline": {
                "actions": [{"id": "c", "type": "command", "label": "c", "command": "/x " + "é" * 40}],
                "rows": [{"actions": ["c"]}],
            }
        }
    )
    with pytest.raises(ValueError, match="64"):
        render("t", long_cmd)


def test_plain_text_has_no_markup() -> None:
    (msg,) = render("hi", None)
    assert msg.reply_markup is None and msg.entities == []
