"""Channel-neutral markup (`tgm_contracts.markup.MessageMarkup`) rendered as Telegram keyboards for bot
accounts: `ReplyKeyboardMarkup` / `ReplyKeyboardHide` and `ReplyInlineMarkup` of Telethon's TL layer.

| markup | Telegram |
|---|---|
| reply keyboard rows, `resize`, `oneTime`, `placeholder` | `ReplyKeyboardMarkup(rows, resize, single_use, placeholder)`, `KeyboardButton(type=ButtonTypeDefault)` |
| `selective` (user ids) | `selective=True`: Telegram shows it to the users @mentioned in the text or replied to; it has no list of ids |
| `remove` | `ReplyKeyboardHide` (selective as above) |
| `invoke` / `modal` | a callback button, data `markup.callback_data(action)` (≤ 64 bytes); Telegram has no confirmation dialog: a modal calls back at once, its title and content are not shown |
| `url` / `deeplink` | a URL button |
| `command` | a callback button whose data is the command (`/name args`, ≤ 64 bytes): a press is handled as the user sending that command (Telegram buttons cannot fill the input) |
| `priority` | the button style (`bg_primary`, `bg_danger`, `bg_success`); secondary: none |
| `disabled` | `InlineButtonTypeDisabled` (shown, does nothing) |
| a row's `label` | none (Telegram has no row captions): left out |
| text ranges | a `url` action on a range: a text-URL entity over it; any other action on a range only: one more keyboard row, so no action is lost |

**Both keyboards** (decision): a Telegram message carries one `reply_markup`, so a markup with both is
two messages: the text with the inline keyboard, then `REPLY_KEYBOARD_TEXT` (or the placeholder) with
the reply keyboard. Nothing is cut here: the contract already refused what is over a limit, and what
Telegram would still refuse (callback data over 64 bytes in UTF-8) is a `ValueError` naming the action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telethon.tl import types
from tgm_contracts.markup import (
    CALLBACK_KINDS,
    MAX_CALLBACK_DATA,
    ActionKind,
    InlineAction,
    InlineActions,
    MessageMarkup,
    Priority,
    ReplyKeyboard,
    callback_data,
)

#: The text of the second message that carries a reply keyboard when the first has inline buttons.
REPLY_KEYBOARD_TEXT = "⌨"


@dataclass
class RenderedMessage:
    text: str
    reply_markup: Any = None
    entities: list[Any] = field(default_factory=list)


def _style(priority: Priority | None) -> types.KeyboardButtonStyle | None:
    if priority is None or priority is Priority.SECONDARY:
        return None
    return types.KeyboardButtonStyle(
        bg_primary=priority is Priority.PRIMARY or None,
        bg_danger=priority is Priority.DANGER or None,
        bg_success=priority is Priority.SUCCESS or None,
    )


def command_data(action: InlineAction) -> bytes:
    """The callback data of a command action: the command itself."""
    assert action.command is not None
    return action.command.encode()


def inline_button(action: InlineAction) -> types.KeyboardInlineButton:
    """One inline action as a Telegram inline button."""
    kind: Any
    if action.disabled:
        kind = types.InlineButtonTypeDisabled()
    elif action.type in CALLBACK_KINDS or action.type is ActionKind.COMMAND:
        data = callback_data(action) if action.type in CALLBACK_KINDS else command_data(action)
        if len(data) > MAX_CALLBACK_DATA:
            raise ValueError(
                f"action {action.id!r}: {len(data)} bytes of callback data; Telegram carries at most "
                f"{MAX_CALLBACK_DATA}"
            )
        kind = types.InlineButtonTypeCallback(data=data)
    else:
        kind = types.InlineButtonTypeUrl(url=str(action.url))
    return types.KeyboardInlineButton(text=action.label, type=kind, style=_style(action.priority))


def inline_markup(inline: InlineActions) -> types.ReplyInlineMarkup | None:
    """The keyboard rows, then one row of the actions that stand only on text ranges (but urls,
    which become links over their text)."""
    by_id = {a.id: a for a in inline.actions}
    rows = [[by_id[i] for i in row.actions] for row in inline.rows]  # the contract checked every id
    placed = {i for row in inline.rows for i in row.actions}
    loose = [
        a
        for a in (inline.action(r.action_id) for r in inline.ranges)
        if a is not None and a.id not in placed and a.type not in (ActionKind.URL, ActionKind.DEEPLINK)
    ]
    extra = list({a.id: a for a in loose}.values())
    for start in range(0, len(extra), 8):
        rows.append(extra[start : start + 8])
    out = [types.KeyboardInlineButtonRow(buttons=[inline_button(a) for a in row]) for row in rows if row]
    return types.ReplyInlineMarkup(rows=out) if out else None


def range_entities(inline: InlineActions) -> list[types.MessageEntityTextUrl]:
    """URL actions on text ranges as text-URL entities (UTF-16 offsets, as Telegram counts)."""
    out = []
    for r in inline.ranges:
        a = inline.action(r.action_id)
        if a is not None and a.type in (ActionKind.URL, ActionKind.DEEPLINK) and not a.disabled:
            out.append(types.MessageEntityTextUrl(offset=r.offset, length=r.length, url=str(a.url)))
    return out


def reply_keyboard(kb: ReplyKeyboard) -> types.ReplyKeyboardMarkup | types.ReplyKeyboardHide:
    selective = True if kb.selective else None
    if kb.remove:
        return types.ReplyKeyboardHide(selective=selective)
    return types.ReplyKeyboardMarkup(
        rows=[
            types.KeyboardButtonRow(
                buttons=[types.KeyboardButton(text=b.text, type=types.ButtonTypeDefault()) for b in row]
            )
            for row in kb.rows
        ],
        resize=kb.resize or None,
        single_use=kb.one_time or None,
        selective=selective,
        placeholder=kb.placeholder,
    )


def render(text: str, markup: MessageMarkup | None) -> list[RenderedMessage]:
    """The Telegram messages that show `text` with `markup`: one, or two when it has both keyboards."""
    if markup is None:
        return [RenderedMessage(text)]
    first = RenderedMessage(text)
    if markup.inline is not None:
        first.reply_markup = inline_markup(markup.inline)
        first.entities = range_entities(markup.inline)
    if markup.reply_keyboard is None:
        return [first]
    keyboard = reply_keyboard(markup.reply_keyboard)
    if first.reply_markup is None:
        first.reply_markup = keyboard
        return [first]
    return [first, RenderedMessage(markup.reply_keyboard.placeholder or REPLY_KEYBOARD_TEXT, keyboard)]


def action_kinds(markup: MessageMarkup | None) -> dict[str, str]:
    """Action id -> kind of every action that calls back, to tell invoke from modal on a press."""
    if markup is None or markup.inline is None:
        return {}
    return {a.id: a.type.value for a in markup.inline.actions if a.type in CALLBACK_KINDS}
