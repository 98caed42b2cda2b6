"""MTProto method handlers, one module per TL namespace.

A handler is ``fn(ctx, request) -> answer`` registered with :func:`handler`; the answer is a TL
object, bool, bytes or list (see ``protocol.tl.serialize``). ``auth=False`` marks methods that work
before login; ``write=True`` marks methods a frozen account may not call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from ..errors import RpcFail

if TYPE_CHECKING:
    from ..protocol.connection import Connection
    from ..world import World
    from ..world.model import AuthKeyRecord, Channel, ChannelParticipant, Chat, Peer, User


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    auth: bool
    write: bool


HANDLERS: dict[type, Handler] = {}


def handler(*request_types: type, auth: bool = True, write: bool = False):
    def deco(fn):
        for t in request_types:
            HANDLERS[t] = Handler(fn, auth, write)
        return fn

    return deco


@dataclass
class Ctx:
    world: World
    conn: Connection
    key: AuthKeyRecord | None
    method: str

    @property
    def key_id(self) -> int | None:
        return self.key.key.key_id if self.key else None

    def me(self) -> User:
        """The logged-in user, or the 401 error Telegram gives this key."""
        if self.key is None or self.key.user_id is None:
            raise RpcFail("AUTH_KEY_UNREGISTERED")
        u = self.world.users.get(self.key.user_id)
        if u is None or u.deleted:
            raise RpcFail("USER_DEACTIVATED")
        if u.banned:
            raise RpcFail("USER_DEACTIVATED_BAN")
        return u

    # ------------------------------------------------------------- input peers

    def user_from(self, inp: Any) -> User:
        world = self.world
        if isinstance(inp, types.InputUserSelf | types.InputPeerSelf):
            return self.me()
        if isinstance(inp, types.InputUser | types.InputPeerUser):
            u = world.users.get(inp.user_id)
            if u is None:
                raise RpcFail("USER_ID_INVALID")
            if u.access_hash != inp.access_hash:
                # Like Telegram, a zero hash is accepted for contacts and people who wrote to us.
                me = self.me()
                if inp.access_hash != 0 or (u.id not in me.contacts and u.id not in me.wrote_to_me):
                    raise RpcFail("USER_ID_INVALID")
            return u
        if isinstance(inp, types.InputUserFromMessage | types.InputPeerUserFromMessage):
            u = world.users.get(inp.user_id)
            if u is None:
                raise RpcFail("USER_ID_INVALID")
            return u
        raise RpcFail("USER_ID_INVALID")

    def readable_channel(self, inp: Any) -> tuple[User, Channel, ChannelParticipant | None]:
        """The caller, the channel and the caller's membership (None for a visitor): members read
        any channel, visitors only a public one (CHANNEL_PRIVATE otherwise)."""
        me = self.me()
        ch = self.channel_from(inp)
        part = ch.participants.get(me.id)
        if part is None and not ch.username:
            raise RpcFail("CHANNEL_PRIVATE")
        return me, ch, part

    def joined_channel(self, inp: Any) -> tuple[User, Channel, ChannelParticipant]:
        """The caller, the channel and the caller's membership; CHANNEL_PRIVATE unless a member."""
        me = self.me()
        ch = self.channel_from(inp)
        part = ch.participants.get(me.id)
        if part is None:
            raise RpcFail("CHANNEL_PRIVATE")
        return me, ch, part

    def channel_from(self, inp: Any) -> Channel:
        if isinstance(inp, types.InputChannel | types.InputPeerChannel):
            ch = self.world.channels.get(inp.channel_id)
            if ch is None:
                raise RpcFail("CHANNEL_INVALID")
            # A zero hash works for channels one is in (what Telethon tries for bare ids).
            if ch.access_hash != inp.access_hash and (
                inp.access_hash != 0 or self.me().id not in ch.participants
            ):
                raise RpcFail("CHANNEL_INVALID")
            return ch
        if isinstance(inp, types.InputChannelFromMessage | types.InputPeerChannelFromMessage):
            ch = self.world.channels.get(inp.channel_id)
            if ch is None:
                raise RpcFail("CHANNEL_INVALID")
            return ch
        raise RpcFail("CHANNEL_INVALID")

    def chat_from(self, chat_id: int) -> Chat:
        c = self.world.chats.get(chat_id)
        if c is None:
            raise RpcFail("CHAT_ID_INVALID")
        return c

    def peer_from(self, inp: Any) -> Peer:
        if isinstance(inp, types.InputPeerSelf):
            return ("user", self.me().id)
        if isinstance(inp, types.InputPeerUser | types.InputPeerUserFromMessage):
            try:
                return ("user", self.user_from(inp).id)
            except RpcFail:
                raise RpcFail("PEER_ID_INVALID") from None
        if isinstance(inp, types.InputPeerChat):
            self.chat_from(inp.chat_id)
            return ("chat", inp.chat_id)
        if isinstance(inp, types.InputPeerChannel | types.InputPeerChannelFromMessage):
            return ("channel", self.channel_from(inp).id)
        raise RpcFail("PEER_ID_INVALID")

    def updates(self, updates: list, user_ids=(), chat_ids=()) -> types.Updates:
        return self.world.updates_envelope(self.me().id, updates, user_ids, chat_ids)


# Import the namespaces so their handlers register.
from . import account, auth, bots, channels, contacts, help, messages, updates, users  # noqa: E402

__all__ = [
    "HANDLERS",
    "Ctx",
    "Handler",
    "account",
    "auth",
    "bots",
    "channels",
    "contacts",
    "handler",
    "help",
    "messages",
    "updates",
    "users",
]
