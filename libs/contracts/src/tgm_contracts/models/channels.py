"""Shapes of the `channels` domain: Tailchat bot apps and the messages they send (issue 15).

A Tailchat app is a bot of the fork `blooworet/tailchat` (its `/api/openapi/bot/*` and `/api/openapi/app/*`
endpoints, `X-App-Secret: <appId>:<secret>`). Views never carry the app's secret: `secretSet` says one is
held, encrypted at rest, and nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..base import Request, Response

#: Tailchat's app ids are the first 10 hex digits of an ObjectId; other deployments may differ, so any
#: short token is accepted (it travels in a header and in a URL path).
TailchatAppId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The app's appId.")
]
#: A Tailchat object id (converse, group, user, message): a Mongo ObjectId on the real server.
TailchatId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$", description="A Tailchat id.")
]

CommandScopeType = Literal["default", "all_private_chats", "all_group_chats", "chat", "chat_member"]


class TailchatAppView(Response):
    """A registered app as the catalogue shows it: never its secret, nor its callback token."""

    app_id: str
    name: str
    server_url: str
    secret_set: bool = Field(True, description="A secret is held (encrypted at rest); it is never shown.")
    bot_user_id: str | None = Field(None, description="The bot's Tailchat user id (from whoami).")
    bot_nickname: str | None = None
    status: Literal["ok", "rejected", "unreachable", "unchecked"] = "unchecked"
    last_error: str | None = None
    last_checked_at: datetime | None = None
    callback_token_set: bool = Field(False, description="A callback token exists (only its hash is kept).")
    callback_token_rotated_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class CommandScope(Request):
    """Where a command is offered: `chat` needs chatId, `chat_member` chatId and userId."""

    type: CommandScopeType = "default"
    chat_id: str | None = Field(None, max_length=128)
    user_id: str | None = Field(None, max_length=128)

    @model_validator(mode="after")
    def _needs(self) -> CommandScope:
        if self.type in ("chat", "chat_member") and not self.chat_id:
            raise ValueError(f"scope {self.type!r} needs chatId")
        if self.type == "chat_member" and not self.user_id:
            raise ValueError("scope 'chat_member' needs userId")
        return self


class BotCommand(Request):
    """One bot command as Tailchat stores it (`setAppBotInfo` field `commands`)."""

    command: str = Field(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=32)
    description: str = Field(min_length=1, max_length=256)
    scope: CommandScope | None = Field(None, description="Where it is offered; `default` when null.")


class BotCommandView(Response):
    command: str
    description: str
    scope: dict | None = None


class ChannelMessageView(Response):
    """A message the bot sent or edited, as Tailchat stored it."""

    app_id: str
    message_id: str
    converse_id: str
    group_id: str | None = None
    content: str
    has_reply_keyboard: bool = False
    inline_action_ids: list[str] = Field(default_factory=list, description="The inline actions it carries.")
    edited: bool = False
    created_at: datetime | None = None
