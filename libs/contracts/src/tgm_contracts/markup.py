"""Channel-neutral message markup: the reply keyboard above the input and the inline actions under a
message (seed 002's `meta.replyKeyboard` / `meta.inlineActions` model), declared once for every channel.

Contracts declare and validate; each channel renders (Tailchat: `meta.replyKeyboard` and
`meta.inlineActions`, adding `params.botId` so callbacks fire; Telegram bot accounts:
`ReplyKeyboardMarkup` / `ReplyKeyboardRemove` / `InlineKeyboardMarkup`). A markup valid here renders
on both without losing a button, so the limits are the strictest of the two platforms:

| what | limit | whose |
|---|---|---|
| reply keyboard | 8 rows × 8 buttons, labels 1–32 characters | Tailchat's sanitiser cuts beyond that |
| placeholder | 64 characters | both (Telegram 1–64, Tailchat cuts at 64) |
| selective users | 100 | Tailchat |
| inline keyboard | 8 rows × 8 buttons, labels 1–32 characters | Tailchat's 8×8 and 32 (Telegram: 8 per row, 100 buttons) |
| callback data of an invoke/modal action | 64 bytes, id and params encoded (below) | Telegram |
| url / deeplink | absolute http(s) URL | the schemes both open (Telegram url buttons take no `tailchat:`/`tc:`) |
| command | `/name` with name `[a-z0-9_]{1,32}`, optional arguments, 64 characters | both platforms' command names |
| text ranges | UTF-16 offsets inside the text, not overlapping | both count UTF-16 code units |

"Characters" are UTF-16 code units, as JavaScript (Tailchat) and Telegram count them: an emoji
outside the BMP is two. Nothing is cut or dropped here: anything over a limit is refused with a
message naming the part, so what an operator designs is what a user sees.

**Callback data encoding (decision).** A press on an `invoke`/`modal` action comes back as the
action's id and params. On Telegram the only carrier is the button's `callback_data`, 1–64 bytes, so
it is `callback_data(action)`: the id alone when there are no params, else
`<id>:<params as compact JSON, keys sorted>` in UTF-8 (e.g. `confirm:{"n":2,"s":"abc"}`). Ids are
`[A-Za-z0-9_-]`, so the first `:` splits it; JSON keeps the params' types (string, integer,
boolean) and is what Tailchat's callback already carries in `params`; sorted keys make it
deterministic, so the same action always renders the same bytes. `parse_callback_data` reads it
back. Params are kept small on purpose: an id that names the thing to do plus a key or two (an
order id, a page); anything larger belongs in the service's own store, keyed by those. `botId` is
not a param: the Tailchat renderer adds it.

**Both keyboards on one message.** Tailchat shows both (seed 002's example A). Telegram carries one
`reply_markup` per message, so its renderer decides how to show a markup having both (for
instance the inline keyboard on the message and the reply keyboard on a short second one); the
markup does not forbid it, because the seed's own model combines them.
"""

from __future__ import annotations

import itertools
import json
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import HttpUrlStr, WireModel

MAX_ROWS = 8
MAX_PER_ROW = 8
MAX_LABEL = 32
MAX_PLACEHOLDER = 64
MAX_SELECTIVE = 100
MAX_CALLBACK_DATA = 64  # bytes, Telegram's callback_data
MAX_COMMAND = 64
MAX_PARAMS = 8

ActionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The action's id: letters, digits, `_` and `-`, up to 32.",
    ),
]
#: A param value: a JSON scalar that keeps its type through the callback data.
ParamValue = str | int | bool
_PARAM_KEY = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_COMMAND = re.compile(r"^/[a-z0-9_]{1,32}(?: \S.*)?$", re.S)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def utf16_len(text: str) -> int:
    """The length of `text` as Tailchat (JavaScript) and Telegram count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def check_label(value: str, what: str = "a label") -> str:
    """`value` if it is a one-line label of 1–32 characters (UTF-16 code units)."""
    if not value.strip():
        raise ValueError(f"{what} must not be empty or blank")
    if _CONTROL.search(value):
        raise ValueError(f"{what} must be one line without control characters")
    if utf16_len(value) > MAX_LABEL:
        raise ValueError(
            f"{what} is {utf16_len(value)} characters; at most {MAX_LABEL} (Tailchat cuts longer ones)"
        )
    return value


Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL)]


class _Markup(WireModel):
    """Markup is authored by people: an unknown field is a typo and refused."""

    model_config = ConfigDict(extra="forbid")


class KeyboardButton(_Markup):
    """A reply-keyboard button: pressing it sends its text as the user's message."""

    text: Label = Field(description="What the button shows and sends, 1–32 characters.")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_label(value, "a button's text")


class ReplyKeyboard(_Markup):
    """The keyboard above the input (Tailchat `replyKeyboard`, Telegram `ReplyKeyboardMarkup`), or
    `remove: true` to take the current one away (`ReplyKeyboardRemove`)."""

    rows: list[list[KeyboardButton]] = Field(
        default_factory=list,
        description="Rows top to bottom, buttons left to right; 1–8 rows of 1–8 buttons (none with remove).",
    )
    placeholder: str | None = Field(None, description="Shown in the empty input, up to 64 characters.")
    resize: bool = Field(False, description="Buttons share each row's width (Telegram resize_keyboard).")
    one_time: bool = Field(False, description="The keyboard closes after one press.")
    selective: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None,
        description="Only these users of the channel see it (up to 100); everyone when null. Telegram "
        "shows a selective keyboard to users mentioned in the text or replied to.",
    )
    remove: bool = Field(False, description="Remove the user's current reply keyboard instead.")

    @field_validator("placeholder")
    @classmethod
    def _placeholder(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("a placeholder must not be blank; leave it out instead")
            if utf16_len(value) > MAX_PLACEHOLDER:
                raise ValueError(f"a placeholder is at most {MAX_PLACEHOLDER} characters")
        return value

    @model_validator(mode="after")
    def _shape(self) -> ReplyKeyboard:
        if self.remove:
            if self.rows or self.selective or self.resize or self.one_time:
                raise ValueError("remove takes the keyboard away: give no rows, resize, oneTime or selective")
            return self
        if not self.rows:
            raise ValueError("a reply keyboard needs at least one row (or remove: true)")
        _grid(self.rows, "reply keyboard")
        if self.selective is not None and not 1 <= len(self.selective) <= MAX_SELECTIVE:
            raise ValueError(f"selective names 1–{MAX_SELECTIVE} users")
        return self


def _grid(rows: list[list[Any]], what: str) -> None:
    if len(rows) > MAX_ROWS:
        raise ValueError(f"a {what} has at most {MAX_ROWS} rows, not {len(rows)}")
    for i, row in enumerate(rows, 1):
        if not row:
            raise ValueError(f"row {i} of the {what} is empty")
        if len(row) > MAX_PER_ROW:
            raise ValueError(f"row {i} of the {what} has {len(row)} buttons; at most {MAX_PER_ROW}")


class ActionKind(StrEnum):
    """What pressing an inline action does."""

    COMMAND = "command"  # puts a bot command into the input, or sends it (mode)
    URL = "url"  # opens a web page
    INVOKE = "invoke"  # calls the bot back (button-pressed) with the id and params
    MODAL = "modal"  # asks for confirmation (title/content), then calls back like invoke
    DEEPLINK = "deeplink"  # opens a link into an app


CALLBACK_KINDS = frozenset({ActionKind.INVOKE, ActionKind.MODAL})


class Priority(StrEnum):
    """The button's look where the channel has looks (Tailchat); Telegram ignores it."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    DANGER = "danger"
    SUCCESS = "success"


class InlineAction(_Markup):
    """One inline action. Which fields it takes depends on `type`:

    - `command`: `command` (e.g. `/help`, `/order 12`), `mode` replace (into the input) or send;
    - `url` / `deeplink`: `url`;
    - `invoke`: `params` (sent back on a press), `confirm` to ask first;
    - `modal`: `params`, `title`, `content` of the confirmation.
    """

    id: ActionId
    type: ActionKind
    label: Label = Field(description="What the button shows, 1–32 characters.")
    command: str | None = Field(None, description="command: the bot command it fills in or sends.")
    mode: str | None = Field(
        None, pattern=r"^(replace|send)$", description="command: replace (default) or send."
    )
    url: HttpUrlStr | None = Field(None, description="url / deeplink: the absolute http(s) URL it opens.")
    params: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="invoke / modal: up to 8 small values returned on a press; they and the id must fit "
        "64 bytes encoded (see the module's callback data encoding).",
    )
    confirm: bool = Field(False, description="invoke: ask the user to confirm before calling back.")
    title: str | None = Field(None, max_length=64, description="modal: the confirmation's title.")
    content: str | None = Field(None, max_length=512, description="modal: the confirmation's text.")
    priority: Priority | None = None
    disabled: bool = Field(False, description="Shown greyed out; pressing does nothing.")

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return check_label(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, ParamValue]) -> dict[str, ParamValue]:
        if len(value) > MAX_PARAMS:
            raise ValueError(f"at most {MAX_PARAMS} params")
        for key in value:
            if not _PARAM_KEY.match(key):
                raise ValueError(f"param name {key!r}: letters, digits and _ only, up to 32")
            if key == "botId":
                raise ValueError("botId is not a param: the Tailchat renderer adds the app's bot")
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> InlineAction:
        kind = self.type
        given = {
            name for name in ("command", "mode", "url", "title", "content") if getattr(self, name) is not None
        }
        if self.params:
            given.add("params")
        if self.confirm:
            given.add("confirm")
        allowed = {
            ActionKind.COMMAND: {"command", "mode"},
            ActionKind.URL: {"url"},
            ActionKind.DEEPLINK: {"url"},
            ActionKind.INVOKE: {"params", "confirm"},
            ActionKind.MODAL: {"params", "title", "content"},
        }[kind]
        extra = given - allowed
        if extra:
            raise ValueError(f"a {kind.value} action takes no {', '.join(sorted(extra))}")
        if kind is ActionKind.COMMAND:
            if self.command is None:
                raise ValueError("a command action needs command, e.g. '/help'")
            if utf16_len(self.command) > MAX_COMMAND or not _COMMAND.match(self.command):
                raise ValueError(
                    "command is '/' and a name of a-z, 0-9 and _ (up to 32), optionally a space and "
                    f"arguments, {MAX_COMMAND} characters in all"
                )
        if kind in (ActionKind.URL, ActionKind.DEEPLINK) and self.url is None:
            raise ValueError(f"a {kind.value} action needs url")
        if kind in CALLBACK_KINDS:
            size = len(callback_data(self))
            if size > MAX_CALLBACK_DATA:
                raise ValueError(
                    f"action {self.id!r}: its id and params take {size} bytes as callback data; "
                    f"Telegram carries at most {MAX_CALLBACK_DATA} (shorten the id or keep fewer, "
                    "shorter params and look the rest up by them)"
                )
        return self


def callback_data(action: InlineAction) -> bytes:
    """The bytes a press of `action` carries back: `<id>` or `<id>:<sorted compact JSON params>`."""
    if not action.params:
        return action.id.encode()
    params = json.dumps(action.params, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return f"{action.id}:{params}".encode()


def parse_callback_data(data: bytes | str) -> tuple[str, dict[str, ParamValue]]:
    """`(id, params)` of callback data made by `callback_data`; ValueError if it is not such data."""
    text = data.decode() if isinstance(data, bytes) else data
    action_id, sep, params_json = text.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", action_id):
        raise ValueError("not callback data of an inline action: bad id")
    if not sep:
        return action_id, {}
    params = json.loads(params_json)
    if not isinstance(params, dict) or not all(
        isinstance(v, str | int | bool) and not isinstance(v, float) for v in params.values()
    ):
        raise ValueError("not callback data of an inline action: params are not a flat object")
    return action_id, params


class InlineRow(_Markup):
    """One row of the inline keyboard: action ids left to right, and an optional caption (Tailchat
    shows it above the row; Telegram has none)."""

    actions: list[ActionId] = Field(min_length=1, max_length=MAX_PER_ROW)
    label: Label | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return value if value is None else check_label(value, "a row's label")


class TextRange(_Markup):
    """A span of the message text that acts as an action when tapped (UTF-16 offsets)."""

    offset: int = Field(ge=0, description="Where the span starts, in UTF-16 code units of the text.")
    length: int = Field(ge=1, description="How long it is, in UTF-16 code units.")
    action_id: ActionId


class InlineActions(_Markup):
    """The actions under (and inside) a message: each action declared once in `actions`, placed by
    id in keyboard `rows` (up to 8 rows of 8) or on `ranges` of the text."""

    actions: list[InlineAction] = Field(min_length=1, max_length=MAX_ROWS * MAX_PER_ROW)
    rows: list[InlineRow] = Field(default_factory=list, max_length=MAX_ROWS)
    ranges: list[TextRange] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> InlineActions:
        ids = [a.id for a in self.actions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"action ids must be unique: {', '.join(dupes)}")
        known = set(ids)
        placed = [i for row in self.rows for i in row.actions]
        unknown = sorted({i for i in placed + [r.action_id for r in self.ranges] if i not in known})
        if unknown:
            raise ValueError(f"rows or ranges name actions that are not declared: {', '.join(unknown)}")
        twice = sorted({i for i in placed if placed.count(i) > 1})
        if twice:
            raise ValueError(f"an action is placed once in the keyboard: {', '.join(twice)}")
        unused = [i for i in ids if i not in set(placed) | {r.action_id for r in self.ranges}]
        if unused:
            raise ValueError(f"actions neither in a row nor on a range: {', '.join(unused)}")
        spans = sorted((r.offset, r.offset + r.length) for r in self.ranges)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ValueError("text ranges must not overlap")
        return self

    def action(self, action_id: str) -> InlineAction | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def check_text(self, text: str) -> None:
        """ValueError unless every range lies inside `text` (UTF-16 code units)."""
        size = utf16_len(text)
        for r in self.ranges:
            if r.offset + r.length > size:
                raise ValueError(
                    f"range of {r.action_id!r} ({r.offset}+{r.length}) runs past the text's {size} characters"
                )


class MessageMarkup(_Markup):
    """What a message carries besides its text: a reply keyboard, inline actions, or both.

    A contract carrying text and markup calls `check_text(text)` in its validator, so ranges are
    checked against the text they mark."""

    reply_keyboard: ReplyKeyboard | None = None
    inline: InlineActions | None = None

    @model_validator(mode="after")
    def _something(self) -> MessageMarkup:
        if self.reply_keyboard is None and self.inline is None:
            raise ValueError("markup needs replyKeyboard, inline or both; leave markup out for none")
        return self

    def check_text(self, text: str) -> None:
        if self.inline is not None:
            self.inline.check_text(text)
