"""Events of the chat channels beside Telegram, published by the tailchat service (issue 15).

They are **channel-neutral**: `channel` says where it happened: "tailchat", or "telegram" for a Telegram
bot account (tg-session publishes `channel-message-received` and `button-pressed` for those, with the
same names and fields under its own subjects, see the end of this module: `appId` is the bot `tg-<id>`, `converseId` the Telegram chat id, `traceId` the callback
query id that `answer-callback` with `channel: telegram` answers), ids are the channel's own strings, and a consumer (automation's
rules, AI replies, analytics) reads them without knowing Tailchat's callback bodies. The tailchat
service makes them from the callbacks Tailchat POSTs to the gateway
(`POST /api/v1/channels/tailchat/{appId}/callback/{token}`, `X-TC-Payload-Type` inbox / dm.start /
buttonCallback).

The event id is derived from the delivery (the app and the message id, the trace id, …), so a
duplicate delivery carries the same id: JetStream drops it as a repeated `Nats-Msg-Id`, and the
service's own record of deliveries drops it after JetStream's two-minute window too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from .base import WireModel
from .enums import Service
from .events import Event

Channel = Literal["tailchat", "telegram"]


class Mention(WireModel):
    """A person or bot named in a message (`[at=<id>]name[/at]` on Tailchat)."""

    user_id: str
    name: str = Field(description="The name as the sender's client wrote it (empty when none).")


class ChannelMessageReceived(Event):
    """A message to one of our bots: a DM, a group message naming the bot, or (with the bot's
    receive-all setting) any group message. The bot's own messages are not published."""

    OWNER: ClassVar[Service] = Service.TAILCHAT
    NAME: ClassVar[str] = "channel-message-received"

    channel: Channel = "tailchat"
    app_id: str = Field(description="The bot app that received it.")
    bot_user_id: str = Field(description="The bot's user id on the channel.")
    converse_id: str = Field(description="The conversation: a DM or a group's text channel.")
    group_id: str | None = Field(None, description="The group of a group message; null in a DM.")
    message_id: str
    sender_id: str
    sender_name: str | None = Field(
        None, description="Null on Tailchat: its callbacks carry the author's id only."
    )
    text: str = Field(
        description="The message's text with mentions written `@name` (the plain text when the sender "
        "gave one); empty for an end-to-end encrypted message."
    )
    raw_text: str = Field(description="The content as the channel sent it (Tailchat: with `[at=…]` markup).")
    mentions: list[Mention] = Field(default_factory=list)
    bot_mentioned: bool = Field(description="The message names this bot.")
    is_dm: bool
    encrypted: bool = Field(False, description="End-to-end encrypted: the channel gave no readable text.")


class ChannelDmStarted(Event):
    """A person started a DM with a bot (Tailchat's start button or a deep link; `/start <arg>` typed,
    when the server's `botDmStartFromTyped` feature is on)."""

    OWNER: ClassVar[Service] = Service.TAILCHAT
    NAME: ClassVar[str] = "channel-dm-started"

    channel: Channel = "tailchat"
    app_id: str
    bot_user_id: str
    converse_id: str
    user_id: str = Field(description="Who started it.")
    start_param: str | None = Field(
        None, description="The deep link's payload (≤ 64 of A-Z a-z 0-9 _) or the typed /start argument."
    )
    params: dict[str, Any] | None = Field(
        None, description="The params object as sent, when the channel sent an object (typed /start)."
    )
    started_at_ms: int | None = Field(None, description="The channel's timestamp, epoch milliseconds.")


class ButtonPressed(Event):
    """A person pressed an inline button (an `invoke` or `modal` action) of a message a bot sent.
    Answer it with `answer-callback {appId, traceId, text}` within 30 s (Tailchat forgets the trace)."""

    OWNER: ClassVar[Service] = Service.TAILCHAT
    NAME: ClassVar[str] = "button-pressed"

    channel: Channel = "tailchat"
    app_id: str
    bot_user_id: str
    action_id: str = Field(description="The action's id in the markup (`InlineAction.id`).")
    kind: Literal["invoke", "modal"] = Field(description="The action's type.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The action's own params, as the markup gave them (the renderer's botId, priority, "
        "disabled, confirm, title and content taken out).",
    )
    trace_id: str | None = Field(
        None,
        description="What answer-callback answers; null when the client sent none (no answer can succeed).",
    )
    user_id: str = Field(description="Who pressed.")
    converse_id: str | None = None
    group_id: str | None = None
    message_id: str | None = Field(None, description="The message carrying the button.")
    is_dm: bool
    pressed_at_ms: int | None = Field(None, description="The channel's timestamp, epoch milliseconds.")


# --- Telegram bot accounts (tg-session) ------------------------------------------------------------
# The same events, published by tg-session for its bot accounts: the same names and fields, under
# tg-session's own subjects (`tgm.tg-session.evt.<name>.v1`: a service publishes only its own
# subjects, `tgm_contracts.bus`). A consumer of channel messages hears both classes
# (`CHANNEL_MESSAGE_EVENTS`, `BUTTON_PRESSED_EVENTS`) and tells them apart by `channel`.


class TelegramBotMessageReceived(ChannelMessageReceived):
    """`channel-message-received` of a Telegram bot account: a user's message to the bot (`appId`
    `tg-<bot id>`, `converseId` the chat id, `senderName` the user's name)."""

    OWNER: ClassVar[Service] = Service.TG_SESSION
    NAME: ClassVar[str] = "channel-message-received"

    channel: Channel = "telegram"


class TelegramButtonPressed(ButtonPressed):
    """`button-pressed` of a Telegram bot account's inline button: answer it with `answer-callback`
    `{channel: telegram, appId, traceId, userId, text}` (Telegram keeps a press answerable briefly)."""

    OWNER: ClassVar[Service] = Service.TG_SESSION
    NAME: ClassVar[str] = "button-pressed"

    channel: Channel = "telegram"


#: Every class of `channel-message-received` / `button-pressed`, one per publishing service.
CHANNEL_MESSAGE_EVENTS: tuple[type[ChannelMessageReceived], ...] = (
    ChannelMessageReceived,
    TelegramBotMessageReceived,
)
BUTTON_PRESSED_EVENTS: tuple[type[ButtonPressed], ...] = (ButtonPressed, TelegramButtonPressed)
