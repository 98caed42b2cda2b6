"""Bot accounts: login by token, inline-button presses (callback queries) and their answers.

A bot is a `User` with `bot=True` (no phone a person could log in with) and a token
`<bot id>:<secret>` that `auth.importBotAuthorization` accepts. A person presses an inline button of a
bot's message (the admin API, or `messages.getBotCallbackAnswer` from a user's client): the bot gets
`updateBotCallbackQuery` pushed to its live connections, answers with
`messages.setBotCallbackAnswer` (a toast, an alert or a URL, with a cache time), and the presser's
`getBotCallbackAnswer` returns that answer, or `BOT_RESPONSE_TIMEOUT` when none came within
`answer_timeout` seconds (Telegram waits about that long). A query can be answered once, and only
while it is fresh (`QUERY_ID_INVALID` after `query_ttl`, as Telegram forgets unanswered queries).

Callback queries are not in the bot's pts sequence (on Telegram neither): a bot offline at the press
does not get it later.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from ..errors import RpcFail
from .model import User

if TYPE_CHECKING:
    from .world import World

#: Telegram's limit of an answer's text (`MESSAGE_TOO_LONG` beyond it).
ANSWER_TEXT_MAX = 200


@dataclass
class CallbackQuery:
    """One press of an inline button, and the bot's answer once it came."""

    query_id: int
    user_id: int
    bot_id: int
    user_msg_id: int  # the message's id in the presser's box
    bot_msg_id: int  # the same message in the bot's box
    data: bytes
    date: float
    answer: dict[str, Any] | None = None
    answered_at: float | None = None
    _done: asyncio.Event | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_id": str(self.query_id),
            "user_id": self.user_id,
            "bot_id": self.bot_id,
            "msg_id": self.user_msg_id,
            "bot_msg_id": self.bot_msg_id,
            "data": self.data.decode("utf-8", "replace"),
            "date": self.date,
            "answer": self.answer,
            "answered_at": self.answered_at,
        }


def inline_buttons(markup: Any) -> list[Any]:
    """Every button of an inline keyboard, row by row (none for other markup)."""
    if not isinstance(markup, types.ReplyInlineMarkup):
        return []
    return [b for row in markup.rows for b in row.buttons]


def callback_data_of(markup: Any) -> dict[str, bytes]:
    """label -> callback data of the callback buttons of an inline keyboard (the first of a label)."""
    found: dict[str, bytes] = {}
    for b in inline_buttons(markup):
        kind = getattr(b, "type", None)
        if isinstance(kind, types.InlineButtonTypeCallback):
            found.setdefault(b.text, kind.data)
    return found


class Bots:
    """The world's bots: tokens, and the callback queries of their inline buttons."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.tokens: dict[str, int] = {}  # token -> bot user id
        self.queries: dict[int, CallbackQuery] = {}
        self.answer_timeout = 10.0
        self.query_ttl = 60.0

    def add(self, username: str, *, first_name: str = "", token: str | None = None) -> tuple[User, str]:
        """A new bot (username ending in 'bot', as Telegram requires) and its token."""
        if not username.lower().endswith("bot"):
            raise ValueError("a bot's username ends with 'bot'")
        world = self.world
        u = world.add_user(
            f"424{len(world.users) + 1:08d}", first_name=first_name or username, username=username, bot=True
        )
        token = token or f"{u.id}:{secrets.token_urlsafe(26)}"
        head, sep, _ = token.partition(":")
        if not sep or head != str(u.id):
            raise ValueError("a bot token is '<bot id>:<secret>'")
        self.tokens[token] = u.id
        return u, token

    def login(self, token: str) -> User:
        uid = self.tokens.get(token)
        if uid is None:
            raise RpcFail("ACCESS_TOKEN_INVALID")
        return self.world.users[uid]

    def press(self, user: User, bot: User, msg_id: int, data: bytes) -> CallbackQuery:
        """`user` presses the inline button carrying `data` on message `msg_id` (of `user`'s box)
        from `bot`: the bot is told (updateBotCallbackQuery); the query waits for its answer."""
        world = self.world
        if not bot.bot:
            raise RpcFail("BOT_INVALID")
        m = user.messages.get(msg_id)
        if m is None or m.peer != ("user", bot.id) or m.from_id != bot.id:
            raise RpcFail("MESSAGE_ID_INVALID")
        if data not in callback_data_of(m.reply_markup).values():
            raise RpcFail("DATA_INVALID")
        bot_msg_id = bot.gid_to_msg.get(m.gid)
        if bot_msg_id is None:
            raise RpcFail("MESSAGE_ID_INVALID")
        digest = hashlib.sha256(f"{world.seed}:cbq:{len(self.queries)}:{secrets.token_hex(4)}".encode())
        query_id = struct.unpack("<q", digest.digest()[:8])[0]
        q = CallbackQuery(query_id, user.id, bot.id, msg_id, bot_msg_id, data, world.now())
        self.queries[query_id] = q
        chat_instance = struct.unpack("<q", hashlib.sha256(f"{user.id}:{bot.id}".encode()).digest()[:8])[0]
        update = types.UpdateBotCallbackQuery(
            query_id=query_id,
            user_id=user.id,
            peer=types.PeerUser(user.id),
            msg_id=bot_msg_id,
            chat_instance=chat_instance,
            data=data,
        )
        world.hub.push_user(bot.id, lambda: world.updates_envelope(bot.id, [update], (user.id, bot.id)))
        return q

    def answer(
        self,
        bot: User,
        query_id: int,
        *,
        message: str | None = None,
        alert: bool = False,
        url: str | None = None,
        cache_time: int = 0,
    ) -> CallbackQuery:
        """The bot's answer to one of its queries: once, while the query is fresh."""
        q = self.queries.get(query_id)
        if q is None or q.bot_id != bot.id or q.answer is not None:
            raise RpcFail("QUERY_ID_INVALID")
        if self.world.now() - q.date > self.query_ttl:
            raise RpcFail("QUERY_ID_INVALID")
        if message is not None and len(message) > ANSWER_TEXT_MAX:
            raise RpcFail("MESSAGE_TOO_LONG")
        if url is not None and not url.startswith(("https://", "http://", "t.me/")):
            raise RpcFail("URL_INVALID")
        q.answer = {"message": message, "alert": bool(alert), "url": url, "cache_time": int(cache_time)}
        q.answered_at = self.world.now()
        if q._done is not None:
            q._done.set()
        return q

    async def wait_answer(self, q: CallbackQuery, timeout: float | None = None) -> dict[str, Any]:
        """The bot's answer, or BOT_RESPONSE_TIMEOUT when it did not come in time."""
        if q.answer is None:
            if q._done is None:
                q._done = asyncio.Event()
            try:
                await asyncio.wait_for(q._done.wait(), self.answer_timeout if timeout is None else timeout)
            except TimeoutError:
                raise RpcFail("BOT_RESPONSE_TIMEOUT") from None
        assert q.answer is not None
        return q.answer

    def latest_markup_message(self, user: User, bot: User) -> int | None:
        """The newest message from `bot` in `user`'s box that has an inline keyboard."""
        for mid in reversed(user.history.get(("user", bot.id), [])):
            m = user.messages[mid]
            if m.from_id == bot.id and inline_buttons(m.reply_markup):
                return mid
        return None
