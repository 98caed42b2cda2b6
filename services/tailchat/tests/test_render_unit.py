"""The Tailchat renderer of channel-neutral markup: seed 002's example A rendered field by field, the
server's sanitiser (the fake's copy of validators/replyKeyboard.ts) leaves a maximal keyboard
unchanged (nothing is cut), callbacks carry the bot's id, and a meta over the server's 8 KB is refused
instead of silently dropped."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tgm_contracts.commands import channels as cmd
from tgm_contracts.markup import MessageMarkup
from tgm_fakes.tailchat.world import sanitize_reply_keyboard
from tgm_runtime import Invalid
from tgm_tailchat.messages.render import MAX_META_BYTES, meta_bytes, meta_of, needs_bot

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

BOT = "690000000000000000000b01"


def markup(**fields: object) -> MessageMarkup:
    return MessageMarkup.model_validate(fields)


def test_seed_example_a_renders_as_the_seed_sends_it() -> None:
    m = markup(
        replyKeyboard={
            "rows": [[{"text": "📊 查看统计"}, {"text": "📋 查看列表"}], [{"text": "🗑 清空消息"}]],
            "resize": True,
            "placeholder": "请选择操作…",
        },
        inline={
            "actions": [
                {"id": "prev_page", "type": "invoke", "label": "上一页", "params": {"action": "prev_page"}},
                {"id": "next_page", "type": "invoke", "label": "下一页", "params": {"action": "next_page"}},
                {
                    "id": "confirm_delete",
                    "type": "modal",
                    "label": "确认删除",
                    "title": "删除?",
                    "priority": "danger",
                },
                {"id": "help_url", "type": "url", "label": "查看文档", "url": "https://tailchat.msgbyte.com"},
            ],
            "rows": [{"actions": ["prev_page", "next_page"]}, {"actions": ["confirm_delete", "help_url"]}],
        },
    )
    meta = meta_of(m, BOT)
    assert meta["replyKeyboard"] == {
        "keyboard": [[{"text": "📊 查看统计"}, {"text": "📋 查看列表"}], [{"text": "🗑 清空消息"}]],
        "resize": True,
        "one_time": False,
        "placeholder": "请选择操作…",
    }
    actions = {a["id"]: a for a in meta["inlineActions"]["actions"]}
    assert actions["prev_page"] == {
        "id": "prev_page",
        "type": "invoke",
        "label": "上一页",
        "params": {"action": "prev_page", "botId": BOT},
    }
    assert actions["confirm_delete"]["params"] == {"botId": BOT, "title": "删除?", "priority": "danger"}
    assert actions["confirm_delete"]["priority"] == "danger"
    assert actions["help_url"]["params"] == {"url": "https://tailchat.msgbyte.com"}  # no callback, no botId
    assert meta["inlineActions"]["keyboard"] == [
        {"actions": ["prev_page", "next_page"]},
        {"actions": ["confirm_delete", "help_url"]},
    ]


def test_a_maximal_keyboard_passes_the_servers_sanitiser_unchanged() -> None:
    label = "😀" * 16  # 32 UTF-16 code units: the longest label
    rows = [[{"text": "😀" * 15 + f"{r}{c}"} for c in range(8)] for r in range(8)]  # 32 each
    m = markup(
        replyKeyboard={"rows": rows, "oneTime": True, "placeholder": "p" * 64, "selective": ["u"] * 100}
    )
    keyboard = meta_of(m, None)["replyKeyboard"]
    assert sanitize_reply_keyboard(keyboard) == keyboard  # nothing cut, nothing dropped
    with pytest.raises(ValidationError, match="at most 32"):
        markup(replyKeyboard={"rows": [[{"text": label + "x"}]]})  # refused, never cut
    removed = meta_of(markup(replyKeyboard={"remove": True, "placeholder": "bye"}), None)["replyKeyboard"]
    assert removed == {"remove": True, "placeholder": "bye"} == sanitize_reply_keyboard(removed)


def test_each_kind_carries_what_the_client_reads() -> None:
    m = markup(
        inline={
            "actions": [
                {"id": "h", "type": "command", "label": "Help", "command": "/help"},
                {"id": "d", "type": "deeplink", "label": "Open", "url": "https://example.com/x"},
                {"id": "ok", "type": "invoke", "label": "OK", "confirm": True, "disabled": True},
            ],
            "rows": [{"actions": ["h", "d"], "label": "More"}],
            "ranges": [{"offset": 0, "length": 2, "actionId": "ok"}],
        }
    )
    assert needs_bot(m)
    inline = meta_of(m, BOT)["inlineActions"]
    params = {a["id"]: a["params"] for a in inline["actions"]}
    assert params == {
        "h": {"text": "/help", "mode": "replace"},
        "d": {"link": "https://example.com/x", "url": "https://example.com/x"},
        "ok": {"botId": BOT, "confirm": True, "disabled": True},
    }
    assert inline["keyboard"] == [{"actions": ["h", "d"], "label": "More"}]
    assert inline["ranges"] == [{"offset": 0, "length": 2, "actionId": "ok"}]
    with pytest.raises(Invalid, match="bot user id"):
        meta_of(m, None)


def test_an_edit_removing_the_reply_keyboard_keeps_the_inline_actions() -> None:
    before = {"replyKeyboard": {"keyboard": [[{"text": "a"}]]}, "inlineActions": {"actions": [{"id": "x"}]}}
    after = meta_of(markup(replyKeyboard={"remove": True}), None, keep=before)
    assert after == {"replyKeyboard": {"remove": True}, "inlineActions": {"actions": [{"id": "x"}]}}


def test_a_meta_over_8_kb_is_refused_not_dropped_by_the_server() -> None:
    actions = [
        {"id": f"m{i}", "type": "modal", "label": "L" * 32, "title": "T" * 64, "content": "C" * 512}
        for i in range(16)
    ]
    big = markup(
        inline={"actions": actions, "rows": [{"actions": [f"m{i}" for i in range(j, j + 8)]} for j in (0, 8)]}
    )
    with pytest.raises(Invalid) as info:
        meta_of(big, BOT)
    assert info.value.details["metaBytes"] > MAX_META_BYTES
    assert (
        meta_bytes(
            meta_of(
                markup(inline={"actions": actions[:8], "rows": [{"actions": [f"m{i}" for i in range(8)]}]}),
                BOT,
            )
        )
        <= MAX_META_BYTES
    )


def test_ranges_are_checked_against_the_text_by_the_contract() -> None:
    inline = {
        "actions": [{"id": "a", "type": "invoke", "label": "A"}],
        "ranges": [{"offset": 3, "length": 4, "actionId": "a"}],
    }
    payload = {"appId": "app", "converseId": "c1", "markup": {"inline": inline}}
    cmd.SendChannelMessage.parse({**payload, "text": "点击【操作】以继续"})
    with pytest.raises(ValidationError, match="runs past"):
        cmd.SendChannelMessage.parse({**payload, "text": "short"})
