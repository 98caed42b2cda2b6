"""The world: the emulator's single source of truth, shared by the MTProto handlers and admin API.

Everything runs on one event loop, so operations are plain synchronous methods. Updates produced
by an operation are pushed through ``self.hub`` (the running server, or nothing) right away, in
pts order.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from telethon.tl import types

from ..errors import RpcFail
from ..limits import Faults, Limits, RateLimit, RateLimiter
from ..protocol.crypto import AuthKeyData
from . import render
from .bots import Bots
from .model import (
    AuthKeyRecord,
    Authorization,
    BoxMessage,
    Channel,
    ChannelLogEntry,
    ChannelMessage,
    ChannelParticipant,
    Chat,
    Delivery,
    DialogState,
    LogEntry,
    Peer,
    SentCode,
    User,
)

GroupT = TypeVar("GroupT", Chat, Channel)

USERNAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{4,31}$")
SERVICE_USER_ID = 777000


class Hub(Protocol):
    """What the world needs from the server: pushing updates and dropping connections."""

    def user_online(self, user_id: int) -> bool: ...
    def push_user(self, user_id: int, build: Callable[[], Any], exclude_key: int | None = None) -> None: ...
    def push_key(self, key_id: int, obj: Any) -> None: ...
    def drop(self, *, user_id: int | None = None, key_id: int | None = None) -> int: ...
    def connection_count(self) -> int: ...


class NullHub:
    """No server attached: nothing is online."""

    def user_online(self, user_id: int) -> bool:
        return False

    def push_user(self, user_id: int, build: Callable[[], Any], exclude_key: int | None = None) -> None:
        return None

    def push_key(self, key_id: int, obj: Any) -> None:
        return None

    def drop(self, *, user_id: int | None = None, key_id: int | None = None) -> int:
        return 0

    def connection_count(self) -> int:
        return 0


def normalize_phone(phone: str | int) -> str:
    digits = re.sub(r"\D", "", str(phone))
    if not 5 <= len(digits) <= 15:
        raise RpcFail("PHONE_NUMBER_INVALID")
    return digits


@dataclass
class SendResult:
    kind: str  # private | chat | channel
    msg_id: int
    pts: int
    date: int
    gid: int
    update: Any  # the sender's UpdateNewMessage / UpdateNewChannelMessage
    peer: Peer


class World:
    """Users, groups, channels, messages, sessions; limits and faults; the delivery log."""

    def __init__(self, *, seed: int | str = 0, limits: Limits | None = None) -> None:
        self.seed = str(seed)
        self.limits = limits or Limits()
        self.faults = Faults()
        self.rate = RateLimiter()
        self.hub: Hub = NullHub()
        self.time_offset = 0.0
        self.fixed_login_code: str | None = None
        # api_id -> api_hash of registered apps; empty means any app is accepted.
        self.apps: dict[int, str] = {}
        # Revoke the login of a key used from two connections at once (as Telegram does).
        self.duplicated_key_revokes = True
        # updates.getDifference answers differenceTooLong to a client this many pts behind.
        self.difference_too_long = 10_000
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.channels: dict[int, Channel] = {}
        self.auth_keys: dict[int, AuthKeyRecord] = {}
        self.sent_codes: dict[str, SentCode] = {}  # phone -> last code
        self.code_log: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.duplicate_attempts: list[dict[str, Any]] = []
        self._phones: dict[str, int] = {}
        self._usernames: dict[str, tuple[str, int]] = {}
        self._login_tokens: dict[bytes, int] = {}  # token -> key id
        self._next_user_id = 7_000_000_001
        self._next_chat_id = 4_000_001
        self._next_channel_id = 1_500_000_001
        self._next_gid = 1
        self.service_user = self.add_user("42777", first_name="Telegram", id=SERVICE_USER_ID)
        self.bots = Bots(self)

    # ----------------------------------------------------------------- basics

    def now(self) -> float:
        return time.time() + self.time_offset

    def advance(self, seconds: float) -> None:
        """Move the world's clock forward (rate-limit windows, code expiry)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.time_offset += seconds

    def _hash(self, kind: str, ident: int) -> int:
        digest = hashlib.sha256(f"{self.seed}:{kind}:{ident}".encode()).digest()
        return struct.unpack("<q", digest[:8])[0]

    def _gid(self) -> int:
        gid = self._next_gid
        self._next_gid += 1
        return gid

    # ----------------------------------------------------------------- users

    def add_user(
        self,
        phone: str | int,
        *,
        first_name: str = "",
        last_name: str = "",
        username: str | None = None,
        password: str | None = None,
        password_hint: str = "",
        id: int | None = None,
        about: str = "",
        bot: bool = False,
        login_code: str | None = None,
        privacy_invites: str = "everybody",
        frozen: bool = False,
        banned: bool = False,
    ) -> User:
        phone = normalize_phone(phone)
        if phone in self._phones:
            raise ValueError(f"phone {phone} is already registered")
        if id is None:
            while self._next_user_id in self.users:
                self._next_user_id += 1
            id = self._next_user_id
            self._next_user_id += 1
        elif id in self.users:
            raise ValueError(f"user id {id} is taken")
        if privacy_invites not in ("everybody", "contacts", "nobody"):
            raise ValueError("privacy_invites is everybody, contacts or nobody")
        if username:
            self.check_name("user", id, username)
        u = User(
            id=id,
            access_hash=self._hash("user", id),
            phone=phone,
            first_name=first_name,
            last_name=last_name,
            password=password or None,
            password_hint=password_hint,
            about=about,
            bot=bot,
            login_code=login_code,
            privacy_invites=privacy_invites,
            frozen=frozen,
            banned=banned,
            created=self.now(),
        )
        self.users[id] = u
        self._phones[phone] = id
        if username:
            self.set_username(u, username)
        return u

    def user(self, ref: int | str | User) -> User:
        """A user by id, phone, or (@)username; KeyError if none."""
        if isinstance(ref, User):
            return ref
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and int(ref) in self.users):
            u = self.users.get(int(ref))
            if u:
                return u
        if isinstance(ref, str):
            if ref.startswith("@") or not re.sub(r"[\s+()-]", "", ref).isdigit():
                hit = self._usernames.get(ref.lstrip("@").lower())
                if hit and hit[0] == "user":
                    return self.users[hit[1]]
            else:
                uid = self._phones.get(re.sub(r"\D", "", ref))
                if uid:
                    return self.users[uid]
        raise KeyError(f"no user {ref!r}")

    def user_by_phone(self, phone: str) -> User | None:
        uid = self._phones.get(normalize_phone(phone))
        return self.users.get(uid) if uid else None

    def resolve_username(self, username: str) -> tuple[str, int] | None:
        return self._usernames.get(username.lstrip("@").lower())

    def check_name(self, kind: str, ident: int, new: str | None) -> None:
        """USERNAME_INVALID / USERNAME_OCCUPIED checks, as Telegram does them (5-32 chars)."""
        if new is not None and new != "":
            if not USERNAME_RE.match(new) or new.endswith("_") or "__" in new:
                raise RpcFail("USERNAME_INVALID")
            holder = self._usernames.get(new.lower())
            if holder and holder != (kind, ident):
                raise RpcFail("USERNAME_OCCUPIED")

    def _set_name(self, kind: str, ident: int, old: str | None, new: str | None) -> None:
        self.check_name(kind, ident, new)
        if old:
            self._usernames.pop(old.lower(), None)
        if new:
            self._usernames[new.lower()] = (kind, ident)

    def set_username(self, u: User, username: str | None) -> None:
        if (username or None) == u.username:
            raise RpcFail("USERNAME_NOT_MODIFIED")
        self._set_name("user", u.id, u.username, username)
        u.username = username or None

    def add_contact(self, owner: int | str | User, other: int | str | User, *, mutual: bool = False) -> None:
        a, b = self.user(owner), self.user(other)
        a.contacts.add(b.id)
        if mutual:
            b.contacts.add(a.id)

    def set_password(self, user: int | str | User, password: str | None, hint: str = "") -> None:
        u = self.user(user)
        u.password = password or None
        u.password_hint = hint
        u.srp = None

    # ------------------------------------------------------------- auth keys

    def register_key(self, key: AuthKeyData) -> AuthKeyRecord:
        rec = AuthKeyRecord(key=key, salt=struct.unpack("<q", os.urandom(8))[0], created=self.now())
        self.auth_keys[key.key_id] = rec
        return rec

    def bind_key(self, rec: AuthKeyRecord, u: User, *, init: dict[str, Any] | None = None) -> Authorization:
        """Log the key in as ``u`` (a new authorization)."""
        init = init or {}
        auth = Authorization(
            hash=struct.unpack("<q", os.urandom(8))[0],
            user_id=u.id,
            created=int(self.now()),
            api_id=int(init.get("api_id") or 0),
            device_model=str(init.get("device_model") or ""),
            system_version=str(init.get("system_version") or ""),
            app_version=str(init.get("app_version") or ""),
            active=int(self.now()),
        )
        rec.user_id = u.id
        rec.authorization = auth
        rec.pending_password_user = None
        rec.revoked = None
        rec.login_token = None
        return auth

    def create_session(self, user: int | str | User, *, host: str = "127.0.0.1", port: int = 443) -> str:
        """A logged-in Telethon ``StringSession`` for ``user``, without any handshake."""
        from telethon.crypto import AuthKey
        from telethon.sessions import StringSession

        u = self.user(user)
        while True:
            raw = os.urandom(256)
            if raw[0]:
                break
        rec = self.register_key(AuthKeyData(raw))
        self.bind_key(rec, u, init={"device_model": "emulator-session"})
        s = StringSession()
        s.set_dc(2, host, port)
        s.auth_key = AuthKey(raw)
        return s.save()

    def sessions_of(self, user: int | str | User) -> list[AuthKeyRecord]:
        u = self.user(user)
        return [r for r in self.auth_keys.values() if r.user_id == u.id]

    def revoke(
        self, *, user: int | str | User | None = None, key_id: int | None = None, reason: str = "revoked"
    ) -> int:
        """Terminate sessions (AUTH_KEY_UNREGISTERED afterwards). Returns how many."""
        recs: list[AuthKeyRecord] = []
        if key_id is not None and key_id in self.auth_keys:
            recs.append(self.auth_keys[key_id])
        if user is not None:
            recs.extend(self.sessions_of(user))
        for rec in recs:
            rec.user_id = None
            rec.authorization = None
            rec.pending_password_user = None
            rec.revoked = reason
        return len(recs)

    # ----------------------------------------------------------------- login

    def send_code(self, phone: str) -> SentCode:
        phone = normalize_phone(phone)
        u = self.user_by_phone(phone)
        if u and u.banned:
            raise RpcFail("PHONE_NUMBER_BANNED")
        code = (u.login_code if u and u.login_code else None) or self.fixed_login_code
        code = code or f"{secrets.randbelow(90000) + 10000}"
        sent = SentCode(
            phone=phone, code=code, hash=secrets.token_hex(8), expires=self.now() + self.limits.code_ttl
        )
        self.sent_codes[phone] = sent
        self.code_log.append({"phone": phone, "code": code, "date": self.now()})
        return sent

    def resend_code(self, phone: str, code_hash: str) -> SentCode:
        sent = self._sent(phone, code_hash)
        if u := self.user_by_phone(phone):
            fixed = u.login_code or self.fixed_login_code
        else:
            fixed = self.fixed_login_code
        sent.code = fixed or f"{secrets.randbelow(90000) + 10000}"
        sent.expires = self.now() + self.limits.code_ttl
        sent.attempts = 0
        self.code_log.append({"phone": sent.phone, "code": sent.code, "date": self.now()})
        return sent

    def last_code(self, phone: str) -> str | None:
        """The login code last 'sent' to ``phone`` (what a test types in)."""
        sent = self.sent_codes.get(normalize_phone(phone))
        return sent.code if sent else None

    def _sent(self, phone: str, code_hash: str) -> SentCode:
        if not code_hash:
            raise RpcFail("PHONE_CODE_HASH_EMPTY")
        sent = self.sent_codes.get(normalize_phone(phone))
        if sent is None or sent.hash != code_hash:
            raise RpcFail("PHONE_CODE_EXPIRED")
        return sent

    def check_code(self, phone: str, code_hash: str, code: str) -> None:
        sent = self._sent(phone, code_hash)
        if not code:
            raise RpcFail("PHONE_CODE_EMPTY")
        if self.now() > sent.expires:
            raise RpcFail("PHONE_CODE_EXPIRED")
        if code != sent.code:
            sent.attempts += 1
            if sent.attempts >= 5:
                self.sent_codes.pop(sent.phone, None)
                raise RpcFail("PHONE_CODE_EXPIRED")
            raise RpcFail("PHONE_CODE_INVALID")

    def consume_code(self, phone: str) -> None:
        self.sent_codes.pop(normalize_phone(phone), None)

    def create_login_token(self, rec: AuthKeyRecord) -> tuple[bytes, float]:
        if rec.login_token and rec.login_token[0] in self._login_tokens:
            self._login_tokens.pop(rec.login_token[0], None)
        token = os.urandom(32)
        expires = self.now() + self.limits.login_token_ttl
        rec.login_token = [token, expires, None]
        self._login_tokens[token] = rec.key.key_id
        return token, expires

    def accept_login_token(self, user: int | str | User, token: bytes) -> AuthKeyRecord:
        """What scanning a QR code does: authorize the key that exported ``token`` as ``user``."""
        u = self.user(user)
        key_id = self._login_tokens.get(token)
        rec = self.auth_keys.get(key_id) if key_id is not None else None
        if rec is None or not rec.login_token or rec.login_token[0] != token:
            raise RpcFail("AUTH_TOKEN_INVALID")
        if self.now() > rec.login_token[1]:
            raise RpcFail("AUTH_TOKEN_EXPIRED")
        if rec.login_token[2] is not None:
            raise RpcFail("AUTH_TOKEN_ALREADY_ACCEPTED")
        rec.login_token[2] = u.id
        self.hub.push_key(
            rec.key.key_id, types.UpdateShort(update=types.UpdateLoginToken(), date=render.ts(self.now()))
        )
        return rec

    def pending_login_token(self, token: bytes) -> str | None:
        """``tg://login`` token of a key waiting to be scanned, as base64url (admin API)."""
        return token.hex() if token in self._login_tokens else None

    def latest_login_token(self) -> bytes | None:
        """The most recently exported, not yet accepted QR token (demo and admin helpers)."""
        best = None
        for token, key_id in self._login_tokens.items():
            rec = self.auth_keys.get(key_id)
            if rec and rec.login_token and rec.login_token[2] is None and self.now() <= rec.login_token[1]:
                best = token
        return best

    # --------------------------------------------------------------- updates

    def _user_update(
        self,
        u: User,
        make: Callable[[int], Any],
        *,
        pts_count: int = 1,
        user_ids: Iterable[int] = (),
        chat_ids: Iterable[int] = (),
        is_message: bool = False,
    ) -> tuple[Any, int]:
        """Advance ``u``'s pts, log the update for getDifference, return (update, pts)."""
        u.pts += pts_count
        update = make(u.pts)
        u.log.append(
            LogEntry(u.pts, pts_count, update, tuple(user_ids), tuple(chat_ids), is_message, int(self.now()))
        )
        return update, u.pts

    def updates_envelope(
        self, viewer: int, updates: list, user_ids: Iterable[int] = (), chat_ids: Iterable[int] = ()
    ) -> types.Updates:
        return types.Updates(
            updates=updates,
            users=self.render_users(user_ids, viewer),
            chats=self.render_chats(chat_ids, viewer),
            date=render.ts(self.now()),
            seq=0,
        )

    def render_users(self, ids: Iterable[int], viewer: int | None) -> list:
        out, seen = [], set()
        for uid in ids:
            if uid in seen or uid not in self.users:
                continue
            seen.add(uid)
            out.append(render.user(self.users[uid], viewer, self))
        return out

    def render_chats(self, ids: Iterable[int], viewer: int | None) -> list:
        """Chats by id: basic chats and channels share the id list (ids never collide)."""
        out, seen = [], set()
        for cid in ids:
            if cid in seen:
                continue
            seen.add(cid)
            if cid in self.channels:
                out.append(render.channel(self.channels[cid], viewer))
            elif cid in self.chats:
                out.append(render.chat(self.chats[cid], viewer))
        return out

    def state(self, u: User) -> types.updates.State:
        return types.updates.State(
            pts=u.pts, qts=0, date=render.ts(self.now()), seq=0, unread_count=self.unread_total(u)
        )

    def difference(self, u: User, pts: int, limit: int = 1000, date: Any = None) -> Any:
        """updates.getDifference as Telegram answers it, per user (so per account, whatever auth key
        or connection asks): the message box's updates after ``pts`` (``differenceSlice`` with an
        intermediate state when more than ``limit`` remain), ``differenceTooLong`` when the client
        is more than ``difference_too_long`` pts behind (or ahead: the world was reset), and, in the
        final part, one ``updateChannelTooLong`` per channel the user is in that had a message after
        ``date`` (channel messages have their own pts: the client asks getChannelDifference)."""
        if pts > u.pts or u.pts - pts > self.difference_too_long:
            return types.updates.DifferenceTooLong(pts=u.pts)
        channels = self._channels_active_since(u, date)
        entries = [e for e in u.log if e.pts > pts]
        if not entries and not channels:
            return types.updates.DifferenceEmpty(date=render.ts(self.now()), seq=0)
        part = entries[:limit]
        users, chats = {u.id}, set(channels)
        new_messages, other = [], []
        for e in part:
            users.update(e.user_ids)
            chats.update(e.chat_ids)
            if e.is_message:
                new_messages.append(e.update.message)
            else:
                other.append(e.update)
        last = part[-1].pts if part else u.pts
        if len(entries) <= limit:
            other.extend(types.UpdateChannelTooLong(cid, pts=self.channels[cid].pts) for cid in channels)
        state = types.updates.State(
            pts=last, qts=0, date=render.ts(self.now()), seq=0, unread_count=self.unread_total(u)
        )
        kwargs = dict(
            new_messages=new_messages,
            new_encrypted_messages=[],
            other_updates=other,
            chats=self.render_chats(chats, u.id),
            users=self.render_users(users, u.id),
        )
        if len(entries) > limit:
            return types.updates.DifferenceSlice(intermediate_state=state, **kwargs)
        return types.updates.Difference(state=state, **kwargs)

    def _channels_active_since(self, u: User, date: Any) -> list[int]:
        """Channels ``u`` is in with a message at or after ``date`` (unix seconds: a message in the
        same second as the client's date may be newer than it; None: none asked)."""
        if not date:
            return []
        if not isinstance(date, int | float):
            date = int(date.timestamp())  # a State's date, as Telethon types carry it
        return sorted(
            cid for cid, ch in self.channels.items() if u.id in ch.participants and ch.last_activity >= date
        )

    def channel_difference(self, ch: Channel, u: User, pts: int, limit: int) -> Any:
        if pts >= ch.pts or pts <= 0:
            return types.updates.ChannelDifferenceEmpty(pts=ch.pts, final=True, timeout=30)
        entries = [e for e in ch.log if e.pts > pts]
        if not entries:
            return types.updates.ChannelDifferenceEmpty(pts=ch.pts, final=True, timeout=30)
        part = entries[: max(1, limit)]
        new_messages, other, users = [], [], set()
        for e in part:
            if e.msg_id is not None and e.msg_id in ch.messages:
                m = ch.messages[e.msg_id]
                users.add(m.from_id)
                new_messages.append(render.channel_message(ch, m, u.id))
            elif e.deleted:
                other.append(types.UpdateDeleteChannelMessages(ch.id, list(e.deleted), e.pts, e.pts_count))
        final = len(entries) <= len(part)
        return types.updates.ChannelDifference(
            pts=part[-1].pts,
            new_messages=new_messages,
            other_updates=other,
            chats=[render.channel(ch, u.id)],
            users=self.render_users(users | {u.id}, u.id),
            final=final,
            timeout=None if not final else 30,
        )

    # --------------------------------------------------------------- dialogs

    def unread_in(self, u: User, peer: Peer) -> int:
        if peer[0] == "channel":
            ch = self.channels.get(peer[1])
            part = ch.participants.get(u.id) if ch else None
            if not ch or not part:
                return 0
            n = 0
            for mid in reversed(ch.order):
                if mid <= part.read_inbox_max_id:
                    break
                if ch.messages[mid].from_id != u.id:
                    n += 1
            return n
        state = u.dialogs.get(peer)
        read = state.read_inbox_max_id if state else 0
        n = 0
        for mid in reversed(u.history.get(peer, [])):
            if mid <= read:
                break
            if not u.messages[mid].out:
                n += 1
        return n

    def unread_total(self, u: User) -> int:
        return sum(self.unread_in(u, p) for p in u.history) + sum(
            self.unread_in(u, ("channel", c)) for c in u.channels
        )

    # -------------------------------------------------------------- messages

    def _check_text(self, text: str) -> None:
        if not text or not text.strip():
            raise RpcFail("MESSAGE_EMPTY")
        if len(text) > self.limits.message_length_max:
            raise RpcFail("MESSAGE_TOO_LONG")

    def _record(
        self,
        sender: User,
        to: User | Chat | Channel,
        gid: int,
        text: str,
        random_id: int | None,
        msg_id: int,
        markup: Any = None,
    ) -> None:
        """Log one delivered message (the admin API's deliveries): to a user, or into a group."""
        group: Chat | Channel | None
        if isinstance(to, User):
            kind, recipients, to_user_id, group = "private", 1, to.id, None
        elif isinstance(to, Chat):
            kind, recipients, to_user_id, group = "chat", len(to.members) - 1, None, to
        else:
            kind, recipients, to_user_id, group = "channel", len(to.participants) - 1, None, to
        self.deliveries.append(
            Delivery(
                seq=len(self.deliveries) + 1,
                gid=gid,
                from_user_id=sender.id,
                from_phone=sender.phone,
                kind=kind,
                to_user_id=to_user_id,
                chat_id=group.id if group else None,
                chat_title=group.title if group else None,
                text=text,
                date=self.now(),
                random_id=random_id,
                msg_id=msg_id,
                recipients=recipients,
                reply_markup=render.markup_dict(markup),
            )
        )

    def _dedupe(self, sender: User, random_id: int | None, peer: Peer) -> None:
        if random_id is None:
            return
        if random_id in sender.random_ids:
            self.duplicate_attempts.append(
                {"from_user_id": sender.id, "random_id": random_id, "peer": list(peer), "date": self.now()}
            )
            raise RpcFail("RANDOM_ID_DUPLICATE")

    def _box_append(self, u: User, m: BoxMessage) -> None:
        u.messages[m.id] = m
        u.history.setdefault(m.peer, []).append(m.id)
        u.dialogs.setdefault(m.peer, DialogState())
        u.gid_to_msg[m.gid] = m.id

    def _reply_for(self, owner: User, sender: User, reply_to: int | None) -> int | None:
        """Translate the sender's reply-to id into the owner's box ids (ids differ per box)."""
        if not reply_to:
            return None
        src = sender.messages.get(reply_to)
        if src is None:
            return None
        return owner.gid_to_msg.get(src.gid)

    def _send_limits(self, sender: User, peer: Peer) -> list[tuple[tuple, RateLimit | None, str]]:
        """The rate limits one message from `sender` to `peer` counts against: (key, limit, error)."""
        lim = self.limits
        counted: list[tuple[tuple, RateLimit | None, str]] = []
        if peer[0] == "user" and peer[1] != sender.id:
            target = self.users[peer[1]]
            stranger = target.id not in sender.contacts and target.id not in sender.wrote_to_me
            if stranger and not sender.bot:  # bots have no PEER_FLOOD budget
                counted.append((("noncontact", sender.id), lim.non_contact_messages, "PEER_FLOOD"))
        counted.append((("account", sender.id), lim.account_messages, "FLOOD_WAIT"))
        chat_limit = lim.private_chat_messages if peer[0] == "user" else lim.group_messages
        counted.append((("chat", sender.id, peer), chat_limit, "FLOOD_WAIT"))
        return counted

    def check_send_limits(self, sender: User, peer: Peer) -> None:
        """FLOOD_WAIT_X (PEER_FLOOD to strangers) if one more message would exceed a limit."""
        now = self.now()
        for key, limit, error in self._send_limits(sender, peer):
            self.rate.check(key, limit, now, error=error)

    def _hit_send_limits(self, sender: User, peer: Peer) -> None:
        now = self.now()
        for key, limit, _error in self._send_limits(sender, peer):
            self.rate.hit(key, limit, now)

    def send_message(
        self,
        sender: User,
        peer: Peer,
        text: str,
        *,
        random_id: int | None = None,
        entities: list | None = None,
        reply_to: int | None = None,
        origin_key: int | None = None,
        enforce_limits: bool = True,
        reply_markup: Any = None,
    ) -> SendResult:
        """Deliver a text message from ``sender`` to ``peer``, with Telegram's checks. A keyboard
        (``reply_markup``) is kept only on a bot's message, as Telegram ignores one from a user."""
        self._check_text(text)
        markup = reply_markup if sender.bot else None
        kind = peer[0]
        if kind == "user":
            if peer[1] not in self.users:
                raise RpcFail("PEER_ID_INVALID")
            target = self.users[peer[1]]
            if target.deleted:
                raise RpcFail("USER_ID_INVALID")
        elif kind == "chat":
            c = self.chats.get(peer[1])
            if c is None:
                raise RpcFail("CHAT_ID_INVALID")
            if sender.id not in c.members or c.deactivated:
                raise RpcFail("CHAT_WRITE_FORBIDDEN")
        else:
            ch = self.channels.get(peer[1])
            if ch is None:
                raise RpcFail("CHANNEL_INVALID")
            part = ch.participants.get(sender.id)
            if sender.id in ch.banned:
                raise RpcFail("USER_BANNED_IN_CHANNEL")
            if part is None:
                raise RpcFail("CHANNEL_PRIVATE")
            if ch.broadcast and part.role == "member":
                raise RpcFail("CHAT_WRITE_FORBIDDEN")
            if ch.slowmode_seconds and part.role == "member" and enforce_limits:
                last = ch.last_post.get(sender.id)
                if last is not None and self.now() - last < ch.slowmode_seconds:
                    wait = max(1, int(ch.slowmode_seconds - (self.now() - last) + 0.999))
                    raise RpcFail(f"SLOWMODE_WAIT_{wait}")
        self._dedupe(sender, random_id, peer)
        if enforce_limits:
            self.check_send_limits(sender, peer)
            self._hit_send_limits(sender, peer)
        gid = self._gid()
        if random_id is not None:
            sender.random_ids[random_id] = gid
        if kind == "user":
            return self._send_private(
                sender, self.users[peer[1]], text, gid, random_id, entities, reply_to, origin_key, markup
            )
        if kind == "chat":
            return self._send_chat(
                sender,
                self.chats[peer[1]],
                text,
                gid,
                random_id,
                entities,
                reply_to,
                origin_key,
                markup=markup,
            )
        return self._send_channel(
            sender, self.channels[peer[1]], text, gid, random_id, entities, reply_to, origin_key, markup
        )

    def _new_box_message(
        self,
        owner: User,
        peer: Peer,
        sender: User,
        text: str,
        gid: int,
        entities,
        reply_to,
        action=None,
        markup=None,
    ) -> BoxMessage:
        m = BoxMessage(
            id=owner.next_msg_id,
            peer=peer,
            from_id=sender.id,
            out=owner.id == sender.id,
            date=int(self.now()),
            text=text,
            gid=gid,
            action=action,
            entities=entities,
            reply_to_id=self._reply_for(owner, sender, reply_to),
            reply_markup=markup,
        )
        owner.next_msg_id += 1
        self._box_append(owner, m)
        return m

    def _deliver_box(self, owner: User, m: BoxMessage, user_ids, chat_ids, exclude_key: int | None) -> Any:
        update, _pts = self._user_update(
            owner,
            lambda p: types.UpdateNewMessage(message=render.box_message(m, owner.id), pts=p, pts_count=1),
            user_ids=user_ids,
            chat_ids=chat_ids,
            is_message=True,
        )
        self.hub.push_user(
            owner.id, lambda: self.updates_envelope(owner.id, [update], user_ids, chat_ids), exclude_key
        )
        return update

    def _send_private(
        self, sender, target, text, gid, random_id, entities, reply_to, origin_key, markup=None
    ) -> SendResult:
        users = (sender.id, target.id)
        m_out = self._new_box_message(
            sender, ("user", target.id), sender, text, gid, entities, reply_to, markup=markup
        )
        upd_out = self._deliver_box(sender, m_out, users, (), origin_key)
        if target.id != sender.id:
            m_in = self._new_box_message(
                target, ("user", sender.id), sender, text, gid, entities, reply_to, markup=markup
            )
            target.wrote_to_me.add(sender.id)
            self._deliver_box(target, m_in, users, (), None)
        self._record(sender, target, gid, text, random_id, m_out.id, markup)
        return SendResult("private", m_out.id, sender.pts, m_out.date, gid, upd_out, ("user", target.id))

    def _send_chat(
        self, sender, c: Chat, text, gid, random_id, entities, reply_to, origin_key, action=None, markup=None
    ):
        upd_out = None
        m_out = None
        users = (sender.id,)
        for uid in list(c.members):
            owner = self.users[uid]
            m = self._new_box_message(
                owner, ("chat", c.id), sender, text, gid, entities, reply_to, action, markup
            )
            upd = self._deliver_box(owner, m, users, (c.id,), origin_key if uid == sender.id else None)
            if uid == sender.id:
                upd_out, m_out = upd, m
        if m_out is None:
            raise RpcFail("CHAT_WRITE_FORBIDDEN")
        if action is None:
            self._record(sender, c, gid, text, random_id, m_out.id, markup)
        return SendResult("chat", m_out.id, sender.pts, m_out.date, gid, upd_out, ("chat", c.id))

    def _chat_action(self, author: User, c: Chat, action: Any, origin_key: int | None) -> SendResult:
        """A service message (created, joined, left …) into a basic group, sent like a text message."""
        return self._send_chat(author, c, "", self._gid(), None, None, None, origin_key, action=action)

    def _channel_post(
        self, sender: User, ch: Channel, text: str, gid: int, entities, reply_to, action=None, markup=None
    ):
        m = ChannelMessage(
            id=ch.next_msg_id,
            from_id=sender.id,
            date=int(self.now()),
            text=text,
            gid=gid,
            action=action,
            entities=entities,
            reply_to_id=reply_to if reply_to in ch.messages else None,
            reply_markup=markup,
        )
        ch.next_msg_id += 1
        ch.messages[m.id] = m
        ch.order.append(m.id)
        ch.pts += 1
        ch.log.append(ChannelLogEntry(ch.pts, 1, m.id))
        ch.last_activity = m.date
        return m

    def _push_channel_message(
        self, ch: Channel, m: ChannelMessage, exclude_key: int | None, skip: int | None
    ):
        pts = ch.pts
        for uid in ch.participants:
            if uid == skip or not self.hub.user_online(uid):
                continue

            def build(uid=uid):
                upd = types.UpdateNewChannelMessage(
                    message=render.channel_message(ch, m, uid), pts=pts, pts_count=1
                )
                return self.updates_envelope(uid, [upd], (m.from_id,), (ch.id,))

            self.hub.push_user(uid, build, exclude_key if uid == m.from_id else None)

    def _send_channel(
        self, sender, ch: Channel, text, gid, random_id, entities, reply_to, origin_key, markup=None
    ):
        m = self._channel_post(sender, ch, text, gid, entities, reply_to, markup=markup)
        ch.last_post[sender.id] = self.now()
        part = ch.participants[sender.id]
        part.read_inbox_max_id = max(part.read_inbox_max_id, m.id)
        self._push_channel_message(ch, m, origin_key, None)
        upd = types.UpdateNewChannelMessage(
            message=render.channel_message(ch, m, sender.id), pts=ch.pts, pts_count=1
        )
        self._record(sender, ch, gid, text, random_id, m.id, markup)
        return SendResult("channel", m.id, ch.pts, m.date, gid, upd, ("channel", ch.id))

    def post(self, sender: int | str | User, to: int | str | User | Chat | Channel, text: str) -> SendResult:
        """Send a message server-side (admin API, demo writers): no rate limits."""
        u = self.user(sender)
        return self.send_message(u, self.peer_of(to), text, random_id=None, enforce_limits=False)

    def peer_of(self, ref: Any) -> Peer:
        if isinstance(ref, Channel):
            return ("channel", ref.id)
        if isinstance(ref, Chat):
            return ("chat", ref.id)
        if isinstance(ref, User):
            return ("user", ref.id)
        if isinstance(ref, int):
            if ref in self.channels:
                return ("channel", ref)
            if ref in self.chats:
                return ("chat", ref)
            return ("user", self.user(ref).id)
        if isinstance(ref, str):
            name = ref.lstrip("@")
            hit = self.resolve_username(name)
            if hit:
                return hit
            for ch in self.channels.values():
                if ch.title == ref:
                    return ("channel", ch.id)
            for c in self.chats.values():
                if c.title == ref:
                    return ("chat", c.id)
            return ("user", self.user(ref).id)
        raise KeyError(f"no peer {ref!r}")

    def read_history(self, u: User, peer: Peer, max_id: int) -> tuple[int, int]:
        """messages.readHistory for private chats and basic groups: (pts, pts_count)."""
        ids = u.history.get(peer, [])
        state = u.dialogs.setdefault(peer, DialogState())
        top = ids[-1] if ids else 0
        max_id = top if max_id <= 0 or max_id > top else max_id
        if max_id <= state.read_inbox_max_id:
            return u.pts, 0
        state.read_inbox_max_id = max_id
        still = self.unread_in(u, peer)
        user_ids = (peer[1],) if peer[0] == "user" else ()
        chat_ids = (peer[1],) if peer[0] == "chat" else ()
        self._user_update(
            u,
            lambda p: types.UpdateReadHistoryInbox(
                peer=render.peer_tl(peer), max_id=max_id, still_unread_count=still, pts=p, pts_count=1
            ),
            user_ids=user_ids,
            chat_ids=chat_ids,
        )
        if peer[0] == "user" and peer[1] != u.id and peer[1] in self.users:
            other = self.users[peer[1]]
            last_read = u.messages[max_id].gid if max_id in u.messages else None
            other_max = other.gid_to_msg.get(last_read) if last_read else None
            if other_max:
                ostate = other.dialogs.setdefault(("user", u.id), DialogState())
                if other_max > ostate.read_outbox_max_id:
                    ostate.read_outbox_max_id = other_max
                    upd, _ = self._user_update(
                        other,
                        lambda p: types.UpdateReadHistoryOutbox(
                            peer=types.PeerUser(u.id), max_id=other_max, pts=p, pts_count=1
                        ),
                        user_ids=(u.id,),
                    )
                    self.hub.push_user(other.id, lambda: self.updates_envelope(other.id, [upd], (u.id,)))
        return u.pts, 1

    # --------------------------------------------------------------- channels

    def _check_channel_room(self, u: User) -> None:
        if len(u.channels) >= self.limits.max_channels:
            raise RpcFail("CHANNELS_TOO_MUCH")

    def create_channel(
        self,
        creator: int | str | User,
        title: str,
        *,
        about: str = "",
        megagroup: bool = True,
        username: str | None = None,
        members: Iterable[int | str | User] = (),
        slowmode_seconds: int = 0,
        id: int | None = None,
        origin_key: int | None = None,
    ) -> Channel:
        u = self.user(creator)
        if not title.strip():
            raise RpcFail("CHAT_TITLE_EMPTY")
        self._check_channel_room(u)
        if id is None:
            while self._next_channel_id in self.channels:
                self._next_channel_id += 1
            id = self._next_channel_id
            self._next_channel_id += 1
        elif id in self.channels or id in self.chats:
            raise ValueError(f"chat id {id} is taken")
        now = int(self.now())
        ch = Channel(
            id=id,
            access_hash=self._hash("channel", id),
            title=title,
            creator_id=u.id,
            date=now,
            megagroup=megagroup,
            about=about,
            slowmode_seconds=slowmode_seconds,
        )
        if username:
            self._set_name("channel", id, None, username)
            ch.username = username
        self.channels[id] = ch
        ch.participants[u.id] = ChannelParticipant(u.id, now, u.id, role="creator")
        u.channels.add(id)
        self._channel_post(u, ch, "", self._gid(), None, None, types.MessageActionChannelCreate(title=title))
        self.hub.push_user(
            u.id,
            lambda: self.updates_envelope(u.id, [types.UpdateChannel(channel_id=id)], (), (id,)),
            origin_key,
        )
        for member in members:
            m = self.user(member)
            if m.id not in ch.participants:
                self._add_participant(ch, m, inviter=u, via_link=False)
        return ch

    def channel(self, ref: int | str | Channel) -> Channel:
        return self._group(ref, Channel, self.channels, "channel")

    def _group(self, ref: Any, kind: type[GroupT], table: dict[int, GroupT], name: str) -> GroupT:
        """A basic chat or a channel by object, id, @username or title; KeyError if it is not one."""
        if isinstance(ref, kind):
            return ref
        if isinstance(ref, int) and ref in table:
            return table[ref]
        peer = self.peer_of(ref)
        if peer[0] != name:
            raise KeyError(f"no {name} {ref!r}")
        return table[peer[1]]

    def set_channel_username(self, ch: Channel, username: str | None) -> None:
        self._set_name("channel", ch.id, ch.username, username)
        ch.username = username or None

    def _add_participant(
        self, ch: Channel, u: User, *, inviter: User | None, via_link: bool, origin_key: int | None = None
    ) -> ChannelMessage:
        self._check_channel_room(u)
        if len(ch.participants) >= self.limits.megagroup_size_max:
            raise RpcFail("USERS_TOO_MUCH")
        now = int(self.now())
        ch.participants[u.id] = ChannelParticipant(u.id, now, inviter.id if inviter else u.id)
        u.channels.add(ch.id)
        if via_link or inviter is None or inviter.id == u.id:
            action = types.MessageActionChatJoinedByLink(inviter_id=inviter.id if inviter else u.id)
            if not via_link:
                action = types.MessageActionChatAddUser(users=[u.id])
            author = u
        else:
            action = types.MessageActionChatAddUser(users=[u.id])
            author = inviter
        m = self._channel_post(author, ch, "", self._gid(), None, None, action)
        ch.participants[u.id].read_inbox_max_id = m.id - 1
        self._push_channel_message(ch, m, origin_key, skip=None)
        return m

    def join_channel(
        self,
        user: int | str | User,
        channel: int | str | Channel,
        *,
        via_invite: bool = False,
        origin_key=None,
    ) -> ChannelMessage:
        u, ch = self.user(user), self.channel(channel)
        if u.id in ch.banned:
            raise RpcFail("USER_BANNED_IN_CHANNEL")
        if u.id in ch.participants:
            raise RpcFail("USER_ALREADY_PARTICIPANT")
        if not via_invite and not ch.username:
            raise RpcFail("CHANNEL_PRIVATE")
        return self._add_participant(ch, u, inviter=None, via_link=via_invite, origin_key=origin_key)

    def ban_in_channel(self, user: int | str | User, channel: int | str | Channel) -> None:
        """An admin bans `user`: out of the group, and every send or join is refused
        (`USER_BANNED_IN_CHANNEL`) until `unban_in_channel`."""
        u, ch = self.user(user), self.channel(channel)
        ch.banned.add(u.id)
        if u.id in ch.participants and ch.participants[u.id].role != "creator":
            del ch.participants[u.id]
            u.channels.discard(ch.id)

    def unban_in_channel(self, user: int | str | User, channel: int | str | Channel) -> None:
        self.channel(channel).banned.discard(self.user(user).id)

    def leave_channel(
        self, user: int | str | User, channel: int | str | Channel, *, origin_key=None
    ) -> ChannelMessage:
        u, ch = self.user(user), self.channel(channel)
        part = ch.participants.get(u.id)
        if part is None:
            raise RpcFail("USER_NOT_PARTICIPANT")
        m = self._channel_post(
            u, ch, "", self._gid(), None, None, types.MessageActionChatDeleteUser(user_id=u.id)
        )
        self._push_channel_message(ch, m, origin_key, skip=None)
        del ch.participants[u.id]
        u.channels.discard(ch.id)
        return m

    def invite_to_channel(
        self, inviter: User, ch: Channel, users: list[User], origin_key=None
    ) -> tuple[list[User], list[User]]:
        added, restricted = [], []
        for u in users:
            if u.id in ch.participants:
                continue
            if not self.may_invite(inviter, u):
                restricted.append(u)
                continue
            self._add_participant(ch, u, inviter=inviter, via_link=False, origin_key=origin_key)
            added.append(u)
        return added, restricted

    def may_invite(self, inviter: User, target: User) -> bool:
        if target.privacy_invites == "everybody":
            return True
        if target.privacy_invites == "contacts":
            return inviter.id in target.contacts
        return False

    # ------------------------------------------------------------ basic chats

    def create_chat(
        self, creator: int | str | User, title: str, members: Iterable[int | str | User], *, origin_key=None
    ) -> tuple[Chat, list[User], SendResult]:
        u = self.user(creator)
        if not title.strip():
            raise RpcFail("CHAT_TITLE_EMPTY")
        targets = [self.user(m) for m in members]
        allowed = [t for t in targets if t.id != u.id and self.may_invite(u, t)]
        restricted = [t for t in targets if t.id != u.id and not self.may_invite(u, t)]
        if not targets:
            raise RpcFail("USERS_TOO_FEW")
        while self._next_chat_id in self.chats:
            self._next_chat_id += 1
        cid = self._next_chat_id
        self._next_chat_id += 1
        c = Chat(id=cid, title=title, creator_id=u.id, date=int(self.now()))
        c.members[u.id] = u.id
        for t in allowed:
            c.members[t.id] = u.id
        self.chats[cid] = c
        res = self._chat_action(
            u, c, types.MessageActionChatCreate(title=title, users=list(c.members)), origin_key
        )
        return c, restricted, res

    def chat(self, ref: int | str | Chat) -> Chat:
        return self._group(ref, Chat, self.chats, "chat")

    def add_chat_user(
        self, inviter: User, c: Chat, target: User, *, via_link=False, origin_key=None
    ) -> SendResult:
        if target.id in c.members:
            raise RpcFail("USER_ALREADY_PARTICIPANT")
        if not via_link and not self.may_invite(inviter, target):
            raise RpcFail("USER_PRIVACY_RESTRICTED")
        if len(c.members) >= self.limits.chat_size_max:
            raise RpcFail("USERS_TOO_MUCH")
        c.members[target.id] = inviter.id
        c.version += 1
        action = (
            types.MessageActionChatJoinedByLink(inviter_id=inviter.id)
            if via_link
            else types.MessageActionChatAddUser(users=[target.id])
        )
        author = target if via_link else inviter
        return self._chat_action(author, c, action, origin_key)

    def delete_chat_user(self, actor: User, c: Chat, target: User, *, origin_key=None) -> SendResult:
        if target.id not in c.members:
            raise RpcFail("USER_NOT_PARTICIPANT")
        if actor.id != target.id and actor.id != c.creator_id and actor.id not in c.admins:
            raise RpcFail("CHAT_ADMIN_REQUIRED")
        res = self._chat_action(actor, c, types.MessageActionChatDeleteUser(user_id=target.id), origin_key)
        del c.members[target.id]
        c.version += 1
        return res

    # --------------------------------------------------------------- invites

    def export_invite(self, target: Chat | Channel) -> str:
        code = secrets.token_urlsafe(12).replace("-", "a").replace("_", "b")
        target.invites.add(code)
        return code

    def invite_target(self, code: str) -> Chat | Channel:
        code = code.rsplit("/", 1)[-1].lstrip("+")
        for ch in self.channels.values():
            if code in ch.invites:
                return ch
        for c in self.chats.values():
            if code in c.invites:
                return c
        raise RpcFail("INVITE_HASH_INVALID")

    # -------------------------------------------------------------- inspect

    def find_duplicates(self, by: str = "random_id") -> list[list[dict[str, Any]]]:
        """Groups of deliveries that look like the same message sent twice.

        ``by="random_id"``: same sender and random_id (Telegram refuses these, so this lists what
        got through anyway, normally nothing, plus the refused attempts in ``duplicate_attempts``);
        ``by="text"``: same sender, same destination, same text.
        """
        groups: dict[tuple, list[Delivery]] = {}
        for d in self.deliveries:
            if by == "random_id":
                if d.random_id is None:
                    continue
                key = (d.from_user_id, d.random_id)
            elif by == "text":
                key = (d.from_user_id, d.kind, d.to_user_id, d.chat_id, d.text)
            else:
                raise ValueError("by is 'random_id' or 'text'")
            groups.setdefault(key, []).append(d)
        return [[d.to_dict() for d in g] for g in groups.values() if len(g) > 1]

    def summary(self) -> dict[str, Any]:
        return {
            "users": len(self.users) - 1,
            "chats": len(self.chats),
            "channels": len(self.channels),
            "auth_keys": len(self.auth_keys),
            "sessions": sum(1 for r in self.auth_keys.values() if r.user_id),
            "deliveries": len(self.deliveries),
            "duplicate_attempts": len(self.duplicate_attempts),
            "connections": self.hub.connection_count(),
        }
