"""Channel-neutral message markup: the seed's model accepted, every limit of the strictest platform
refused with a message naming the part, and the callback data encoding within Telegram's 64 bytes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tgm_contracts.markup import (
    MAX_CALLBACK_DATA,
    InlineAction,
    InlineActions,
    MessageMarkup,
    ReplyKeyboard,
    callback_data,
    parse_callback_data,
    utf16_len,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def refused(model: Any, data: Any, *phrases: str) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    text = str(info.value)
    for phrase in phrases:
        assert phrase in text, text
    return text


def invoke(id_: str = "ok", **params: Any) -> dict[str, Any]:
    return {"id": id_, "type": "invoke", "label": "OK", "params": params}


#: Seed 002's example A in the neutral model: both keyboards on one message.
SEED_A = {
    "replyKeyboard": {
        "rows": [[{"text": "📊 查看统计"}, {"text": "📋 查看列表"}], [{"text": "🗑️ 清空消息"}]],
        "resize": True,
        "oneTime": False,
        "placeholder": "请选择操作…",
    },
    "inline": {
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
                "type": "modal",
                "label": "确认删除",
                "title": "删除？",
                "priority": "danger",
            },
            {
                "id": "help_url",
                "type": "url",
                "label": "查看文档",
                "url": "https://tailchat.msgbyte.com",
                "priority": "primary",
            },
            {"id": "help_cmd", "type": "command", "label": "帮助", "command": "/help", "mode": "send"},
        ],
        "rows": [
            {"actions": ["prev_page", "next_page"], "label": "翻页"},
            {"actions": ["confirm_delete", "help_url"]},
        ],
        "ranges": [{"offset": 2, "length": 4, "actionId": "help_cmd"}],
    },
}


def test_the_seeds_model_is_accepted_and_round_trips_on_the_wire() -> None:
    markup = MessageMarkup.model_validate(SEED_A)
    assert markup.reply_keyboard is not None and len(markup.reply_keyboard.rows) == 2
    assert markup.inline is not None and markup.inline.action("help_url") is not None
    assert MessageMarkup.model_validate(markup.wire()) == markup
    markup.check_text("点击【操作】以继续")  # the range 2+4 lies inside 9 characters
    with pytest.raises(ValueError, match="runs past the text"):
        markup.check_text("短")


def test_reply_keyboard_limits() -> None:
    row = [{"text": str(i)} for i in range(8)]
    assert len(ReplyKeyboard.model_validate({"rows": [row] * 8}).rows) == 8
    refused(ReplyKeyboard, {"rows": [row] * 9}, "at most 8 rows")
    refused(ReplyKeyboard, {"rows": [[*row, {"text": "9"}]]}, "row 1", "at most 8")
    refused(ReplyKeyboard, {"rows": [[]]}, "row 1 of the reply keyboard is empty")
    refused(ReplyKeyboard, {"rows": []}, "at least one row")
    refused(ReplyKeyboard, {"rows": [[{"text": "   "}]]}, "must not be empty or blank")
    refused(ReplyKeyboard, {"rows": [[{"text": "two\nlines"}]]}, "one line")
    refused(ReplyKeyboard, {"rows": [[{"text": "x" * 33}]]}, "at most 32")
    # 32 counts UTF-16 units, as Tailchat and Telegram do: 16 emoji fit, 17 do not.
    assert ReplyKeyboard.model_validate({"rows": [[{"text": "😀" * 16}]]})
    refused(ReplyKeyboard, {"rows": [[{"text": "😀" * 17}]]}, "is 34 characters; at most 32")
    refused(ReplyKeyboard, {"rows": [row], "placeholder": "p" * 65}, "placeholder is at most 64")
    refused(ReplyKeyboard, {"rows": [row], "selective": [f"u{i}" for i in range(101)]}, "1–100 users")
    refused(ReplyKeyboard, {"rows": [row], "colour": "red"}, "Extra inputs are not permitted")


def test_remove_takes_nothing_else() -> None:
    assert ReplyKeyboard.model_validate({"remove": True, "placeholder": "…"}).remove
    refused(ReplyKeyboard, {"remove": True, "rows": [[{"text": "a"}]]}, "give no rows")
    refused(ReplyKeyboard, {"remove": True, "oneTime": True}, "give no rows, resize, oneTime or selective")


@pytest.mark.parametrize(
    ("action", "phrase"),
    [
        ({"id": "c", "type": "command", "label": "C"}, "needs command"),
        ({"id": "c", "type": "command", "label": "C", "command": "help"}, "command is '/'"),
        ({"id": "c", "type": "command", "label": "C", "command": "/Help"}, "command is '/'"),
        ({"id": "c", "type": "command", "label": "C", "command": "/" + "a" * 33}, "command is '/'"),
        ({"id": "c", "type": "command", "label": "C", "command": "/order " + "1" * 60}, "64 characters"),
        ({"id": "c", "type": "command", "label": "C", "command": "/help", "mode": "later"}, "replace|send"),
        (
            {"id": "c", "type": "command", "label": "C", "command": "/help", "url": "https://a.b"},
            "takes no url",
        ),
        ({"id": "u", "type": "url", "label": "U"}, "needs url"),
        ({"id": "u", "type": "url", "label": "U", "url": "javascript:alert(1)"}, "http"),
        ({"id": "d", "type": "deeplink", "label": "D", "url": "tailchat://x"}, "http"),
        (
            {"id": "u", "type": "url", "label": "U", "url": "https://a.b", "params": {"a": "b"}},
            "takes no params",
        ),
        ({"id": "i", "type": "invoke", "label": "I", "title": "t"}, "takes no title"),
        ({"id": "m", "type": "modal", "label": "M", "confirm": True}, "takes no confirm"),
        ({"id": "bad id", "type": "invoke", "label": "I"}, "pattern"),
        ({"id": "i", "type": "invoke", "label": "I", "params": {"botId": "x"}}, "botId is not a param"),
        ({"id": "i", "type": "invoke", "label": "I", "params": {"a-b": 1}}, "param name 'a-b'"),
        ({"id": "i", "type": "invoke", "label": "I", "params": {"a": 1.5}}, "params.a"),
        ({"id": "i", "type": "invoke", "label": "I", "params": {"a": [1]}}, "params.a"),
        (
            {"id": "i", "type": "invoke", "label": "I", "params": {f"k{i}": i for i in range(9)}},
            "at most 8 params",
        ),
        ({"id": "i", "type": "unknown", "label": "I"}, "type"),
        ({"id": "i", "type": "invoke", "label": "x" * 33}, "32"),
    ],
)
def test_inline_action_refusals(action: dict[str, Any], phrase: str) -> None:
    refused(InlineAction, action, phrase)


def test_callback_data_fits_telegrams_64_bytes_exactly() -> None:
    # "ok:" + {"s":"…"} is 3 + 8 + len(value) bytes: 53 characters of value make exactly 64.
    at_limit = InlineAction.model_validate(invoke(s="x" * 53))
    assert len(callback_data(at_limit)) == MAX_CALLBACK_DATA
    text = refused(InlineAction, invoke(s="x" * 54), "65 bytes as callback data", "at most 64")
    assert "'ok'" in text
    # Bytes, not characters: 17 CJK characters of 3 bytes each are 51 bytes.
    refused(InlineAction, invoke(s="中" * 18), "bytes as callback data")
    assert InlineAction.model_validate(invoke(s="中" * 17))
    # Modal actions call back too; url and command actions carry no callback data.
    refused(
        InlineAction,
        {"id": "m" * 32, "type": "modal", "label": "M", "params": {"k": "v" * 30}},
        "callback data",
    )
    assert InlineAction.model_validate(
        {"id": "u" * 32, "type": "url", "label": "U", "url": "https://a.b/" + "p" * 200}
    )


def test_callback_data_encoding_is_deterministic_and_reads_back() -> None:
    action = InlineAction.model_validate(invoke("confirm", s="abc", n=2, yes=True))
    assert callback_data(action) == b'confirm:{"n":2,"s":"abc","yes":true}'
    assert parse_callback_data(callback_data(action)) == ("confirm", {"n": 2, "s": "abc", "yes": True})
    assert callback_data(InlineAction.model_validate(invoke("like"))) == b"like"
    assert parse_callback_data("like") == ("like", {})
    for bad in ("", "bad id", "x:[1]", 'x:{"a":{"b":1}}', 'x:{"a":1.5}'):
        with pytest.raises(ValueError):
            parse_callback_data(bad)


def test_inline_keyboard_references_and_limits() -> None:
    actions = [invoke(f"a{i}") for i in range(64)]
    rows = [{"actions": [f"a{r * 8 + c}" for c in range(8)]} for r in range(8)]
    assert len(InlineActions.model_validate({"actions": actions, "rows": rows}).rows) == 8
    refused(InlineActions, {"actions": [*actions, invoke("a64")], "rows": rows}, "at most 64")
    refused(
        InlineActions,
        {"actions": actions[:9], "rows": [{"actions": [f"a{i}" for i in range(9)]}]},
        "at most 8",
    )
    refused(InlineActions, {"actions": actions[:1], "rows": [{"actions": ["a0"]}] * 9}, "at most 8")
    refused(InlineActions, {"actions": [invoke("a"), invoke("a")], "rows": [{"actions": ["a"]}]}, "unique: a")
    refused(InlineActions, {"actions": [invoke("a")], "rows": [{"actions": ["a", "b"]}]}, "not declared: b")
    refused(
        InlineActions,
        {"actions": [invoke("a")], "rows": [{"actions": ["a"]}, {"actions": ["a"]}]},
        "placed once",
    )
    refused(
        InlineActions,
        {"actions": [invoke("a"), invoke("b")], "rows": [{"actions": ["a"]}]},
        "neither in a row nor on a range: b",
    )
    refused(InlineActions, {"actions": [], "rows": []}, "at least 1")
    refused(InlineActions, {"actions": [invoke("a")], "rows": [{"actions": []}]}, "at least 1")


def test_text_ranges() -> None:
    ranged = {
        "actions": [invoke("a"), invoke("b")],
        "ranges": [{"offset": 0, "length": 3, "actionId": "a"}, {"offset": 3, "length": 2, "actionId": "b"}],
    }
    inline = InlineActions.model_validate(ranged)
    inline.check_text("abcde")
    with pytest.raises(ValueError, match="runs past"):
        inline.check_text("abcd")
    # UTF-16 offsets: an emoji is two units.
    inline.check_text("😀😀x")
    overlap = {
        **ranged,
        "ranges": [{"offset": 0, "length": 3, "actionId": "a"}, {"offset": 2, "length": 2, "actionId": "b"}],
    }
    refused(InlineActions, overlap, "must not overlap")
    refused(InlineActions, {**ranged, "ranges": [{"offset": -1, "length": 1, "actionId": "a"}]}, "offset")
    refused(InlineActions, {**ranged, "ranges": [{"offset": 0, "length": 0, "actionId": "a"}]}, "length")
    assert utf16_len("😀a") == 3


def test_message_markup_needs_something() -> None:
    refused(MessageMarkup, {}, "needs replyKeyboard, inline or both")
    assert MessageMarkup.model_validate({"replyKeyboard": {"remove": True}}).inline is None
