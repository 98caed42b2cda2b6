"""The `channels` commands of Telegram bot accounts, served by tg-session (issue 15).

A bot account logs in with its BotFather token (`auth.importBotAuthorization`); its messages from users
are published as the channel-neutral `channel-message-received` (`channel: telegram`) and presses of
its inline buttons as `button-pressed`, the same events a Tailchat bot gives
(`tgm_contracts.events_channels`); a press is answered with the one public `answer-callback`
(`channel: telegram`), which the tailchat service hands to tg-session (`answer-telegram-callback`,
`tgm_contracts.rpc_bots`).

Not seed commands (`seed=False`). Least roles as for accounts: adding a bot is `operator` (like
`add-account`), removing one `admin` (like `remove-account` and `remove-tailchat-app`), sending
`operator` (like `send-private-message`), reading `viewer`.

Ids: a bot is `tg-<its Telegram user id>` (fits the `appId` of `answer-callback`); chats and users
are Telegram ids as decimal strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from ..base import Ack, Empty, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..markup import MessageMarkup
from ..models.session import write_only_secret

TS = Service.TG_SESSION
CH = Domain.CHANNELS

TelegramBotId = Annotated[
    str, Field(pattern=r"^tg-[0-9]{1,20}$", description="A bot account: `tg-<its Telegram user id>`.")
]
TelegramChatId = Annotated[
    str, Field(pattern=r"^-?[0-9]{1,20}$", description="A Telegram user or chat id, as a decimal string.")
]

if TYPE_CHECKING:
    BotToken = SecretStr
else:
    BotToken = write_only_secret(
        min_length=30,
        max_length=128,
        pattern=r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}",
        normalize=str.strip,
        what="bot token",
    )
"""A BotFather token `<bot id>:<secret>`: a login in itself; encrypted at rest, never shown or logged."""


class AddTelegramBotRequest(Request):
    token: BotToken
    name: str | None = Field(None, max_length=100, description="A label; the bot's name when null.")


class TelegramBotView(Response):
    """A bot account as the catalogue shows it: never its token or session."""

    bot_id: str
    telegram_user_id: int
    username: str | None = None
    name: str
    status: Literal["active", "unauthorized"] = Field(
        description="`unauthorized`: Telegram refused the token (revoked at BotFather); add it again."
    )
    held_by: str | None = Field(None, description="The tg-session replica running it now.")
    added_at: datetime | None = None
    last_error: str | None = None


class AddTelegramBot(
    Command,
    name="add-telegram-bot",
    owner=TS,
    domain=CH,
    role=Role.OPERATOR,
    request=AddTelegramBotRequest,
    response=TelegramBotView,
    seed=False,
    timeout=30,
):
    """Log a bot in by its token and run it: its messages and button presses become channel events."""


class TelegramBotList(Response):
    items: list[TelegramBotView] = Field(default_factory=list)


class GetTelegramBots(
    Command,
    name="get-telegram-bots",
    owner=TS,
    domain=CH,
    role=Role.VIEWER,
    request=Empty,
    response=TelegramBotList,
    seed=False,
):
    """The bot accounts (never their tokens)."""


class BotRef(Request):
    bot_id: TelegramBotId


class RemoveTelegramBotRequest(BotRef):
    """Like remove-tailchat-app: no confirmation (the bot is added again by its token)."""


class RemoveTelegramBot(
    Command,
    name="remove-telegram-bot",
    owner=TS,
    domain=CH,
    role=Role.ADMIN,
    request=RemoveTelegramBotRequest,
    response=Ack,
    seed=False,
):
    """Stop a bot and forget its token, session and remembered messages."""


class SendBotMessageRequest(BotRef):
    """A message from the bot to a user who wrote to it (Telegram lets a bot write to no one else) or
    to a group it is in, with optional channel-neutral markup."""

    chat_id: TelegramChatId
    text: str = Field(min_length=1, max_length=4096)
    markup: MessageMarkup | None = Field(
        None,
        description="A reply keyboard and/or inline actions (tgm_contracts.markup), rendered as Telegram "
        "keyboards; a markup with both is two messages (the reply keyboard on the second).",
    )
    reply_to_message_id: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _text(self) -> SendBotMessageRequest:
        if self.markup is not None:
            self.markup.check_text(self.text)
        return self


class BotMessageSent(Response):
    bot_id: str
    chat_id: str
    message_ids: list[int] = Field(
        description="The Telegram message ids, in order (two with both keyboards)."
    )
    inline_action_ids: list[str] = Field(default_factory=list)
    duplicate: bool = Field(False, description="This key was sent before: the stored answer, nothing sent.")


class SendBotMessage(
    Command,
    name="send-bot-message",
    owner=TS,
    domain=CH,
    role=Role.OPERATOR,
    request=SendBotMessageRequest,
    response=BotMessageSent,
    seed=False,
    timeout=30,
):
    """Send a message as a bot account, with reply and inline keyboards; never retried (no duplicates)."""
