"""A Telegram bot account on Telethon: login by token, its incoming messages and button presses as
plain data (`bots/ports.py`), sends with rendered keyboards (`markup.py`), callback answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telethon import TelegramClient, errors, events, functions
from tgm_contracts.markup import MessageMarkup

from ..bots.ports import BotInbound, BotPress, BotProfile
from ..ports import ConnectionSpec, TelegramFailure, TelegramUnreachable
from ..settings import SessionSettings
from . import convert
from .client_factory import build_client
from .markup import render


class TelethonBotClient:
    """One bot's connection. Every call is bounded by the settings' request timeout."""

    def __init__(self, client: TelegramClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    @classmethod
    def build(
        cls, session: str | None, api_id: int, api_hash: str, settings: SessionSettings
    ) -> TelethonBotClient:
        spec = ConnectionSpec(key="bot", session=session, api_id=api_id, api_hash=api_hash)
        return cls(build_client(spec, settings), settings.request_timeout_seconds)

    async def _call(self, coro: Awaitable[Any], method: str) -> Any:
        try:
            return await asyncio.wait_for(coro, self.timeout)
        except errors.RPCError as exc:
            raise convert.to_failure(exc, method) from None
        except TimeoutError:
            raise TelegramUnreachable(f"{method} did not answer in {self.timeout:g}s", "timeout") from None
        except (ConnectionError, OSError) as exc:
            raise TelegramUnreachable(f"connection lost: {type(exc).__name__}") from None

    async def start(self, token: str) -> BotProfile:
        """Connect, log in by token unless the session already is, and say who the bot is."""
        await self._call(self.client.connect(), "connect")
        if not await self._call(self.client.is_user_authorized(), "updates.getState"):
            await self._call(self.client.sign_in(bot_token=token), "auth.importBotAuthorization")
        me = await self._call(self.client.get_me(), "users.getUsers")
        if me is None or not me.bot:
            raise TelegramFailure("BOT_INVALID", method="users.getUsers")
        name = " ".join(p for p in (me.first_name, me.last_name) if p) or (me.username or str(me.id))
        return BotProfile(user_id=int(me.id), username=me.username, name=name)

    def session_string(self) -> str:
        return self.client.session.save()

    def on_message(self, callback: Callable[[BotInbound], Awaitable[None]]) -> None:
        async def handle(event: Any) -> None:
            msg = event.message
            sender = await event.get_sender()
            name = None
            if sender is not None:
                name = " ".join(
                    p for p in (getattr(sender, "first_name", None), getattr(sender, "last_name", None)) if p
                )
            await callback(
                BotInbound(
                    chat_id=int(event.chat_id),
                    message_id=int(msg.id),
                    sender_id=int(event.sender_id or 0),
                    sender_name=name or getattr(sender, "username", None),
                    text=msg.message or "",
                    is_dm=bool(event.is_private),
                    date=msg.date.timestamp() if msg.date else 0.0,
                )
            )

        self.client.add_event_handler(handle, events.NewMessage(incoming=True))

    def on_press(self, callback: Callable[[BotPress], Awaitable[None]]) -> None:
        async def handle(event: Any) -> None:
            await callback(
                BotPress(
                    query_id=int(event.query.query_id),
                    user_id=int(event.query.user_id),
                    chat_id=int(event.chat_id),
                    message_id=int(event.query.msg_id),
                    data=bytes(event.query.data or b""),
                    is_dm=bool(event.is_private),
                )
            )

        self.client.add_event_handler(handle, events.CallbackQuery())

    async def send(
        self, chat_id: int, text: str, markup: MessageMarkup | None, reply_to: int | None
    ) -> list[int]:
        """Send `text` with `markup` rendered (one message, or two with both keyboards): the ids."""
        ids = []
        for i, part in enumerate(render(text, markup)):
            sent = await self._call(
                self.client.send_message(
                    chat_id,
                    part.text,
                    buttons=part.reply_markup,
                    formatting_entities=part.entities or None,
                    reply_to=reply_to if i == 0 else None,
                    parse_mode=None,
                    link_preview=False,
                ),
                "messages.sendMessage",
            )
            ids.append(int(sent.id))
        return ids

    async def answer(
        self, query_id: int, text: str | None, alert: bool, url: str | None, cache_time: int
    ) -> None:
        await self._call(
            self.client(
                functions.messages.SetBotCallbackAnswerRequest(
                    query_id=query_id, cache_time=cache_time, alert=alert or None, message=text, url=url
                )
            ),
            "messages.setBotCallbackAnswer",
        )

    async def disconnect(self) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), self.timeout)
        except Exception:  # a connection that will not close cleanly is dropped anyway
            pass
