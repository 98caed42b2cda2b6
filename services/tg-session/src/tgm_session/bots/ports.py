"""What the bot use cases need of Telegram (`telegram/bot_client.py` is the Telethon side), as plain data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from tgm_contracts.markup import MessageMarkup


@dataclass(frozen=True)
class BotProfile:
    user_id: int
    username: str | None
    name: str


@dataclass(frozen=True)
class BotInbound:
    """A message someone sent to the bot (a DM, or a group message the bot may read)."""

    chat_id: int
    message_id: int
    sender_id: int
    sender_name: str | None
    text: str
    is_dm: bool
    date: float


@dataclass(frozen=True)
class BotPress:
    """A press of one of the bot's inline callback buttons (`updateBotCallbackQuery`)."""

    query_id: int
    user_id: int
    chat_id: int
    message_id: int
    data: bytes
    is_dm: bool


class BotClient(Protocol):
    async def start(self, token: str) -> BotProfile: ...
    def session_string(self) -> str: ...
    def on_message(self, callback: Callable[[BotInbound], Awaitable[None]]) -> None: ...
    def on_press(self, callback: Callable[[BotPress], Awaitable[None]]) -> None: ...
    async def send(
        self, chat_id: int, text: str, markup: MessageMarkup | None, reply_to: int | None
    ) -> list[int]: ...
    async def answer(
        self, query_id: int, text: str | None, alert: bool, url: str | None, cache_time: int
    ) -> None: ...
    async def disconnect(self) -> None: ...


#: Builds a bot's client: (stored session or None, api_id, api_hash).
BotClientFactory = Callable[[str | None, int, str], BotClient]
