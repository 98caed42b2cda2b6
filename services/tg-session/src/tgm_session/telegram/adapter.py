"""`AccountClient` on Telethon: every Telegram call of the product goes through here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient, errors, events, functions, types, utils
from telethon.sessions import StringSession
from tgm_contracts.commands.telegram_ops import CreateGroupRequest
from tgm_contracts.models.session import ChatView, TelegramProfile
from tgm_contracts.rpc_session import HistoryMessage, ResolvedPeer, SendRequest

from ..fleet.catchup import UpdateState
from ..fleet.peers import KnownPeer
from ..ports import (
    CreatedChat,
    InboundHandlers,
    InboundJoin,
    InboundMessage,
    LoginToken,
    ParticipantsPage,
    PeerNotFound,
    SentCode,
    SentMessage,
    TelegramFailure,
    TelegramUnreachable,
)
from . import convert
from .peer_session import PeerSession

log = logging.getLogger("tgm.session.telegram")

SERVICE_USER_ID = 777000


def _unix(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value or 0)


def _has_photo(user: Any) -> bool:
    return not isinstance(getattr(user, "photo", None), types.UserProfilePhotoEmpty | type(None))


class TelethonAccountClient:
    """One account's TelegramClient behind the `AccountClient` protocol."""

    def __init__(self, client: TelegramClient, key: str, *, timeout: float, has_proxy: bool) -> None:
        self.client = client
        self.key = key
        self.timeout = timeout
        self.has_proxy = has_proxy
        self._me_id: int | None = None
        self._dialogs_loaded = False
        #: Inbound updates whose handling raised (catch-up does not store a state past a failure).
        self._inbound_errors = 0

    # --- plumbing --------------------------------------------------------------------------------

    async def _call(
        self, awaitable: Awaitable[Any], method: str = "", *, timeout: float | None = None
    ) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout or self.timeout)
        except errors.RPCError as exc:
            raise convert.to_failure(exc, method) from None
        except TimeoutError:
            raise TelegramUnreachable(
                f"Telegram did not answer {method or 'the call'} in time", "timeout"
            ) from None
        except (ConnectionError, OSError) as exc:
            raise TelegramUnreachable(
                f"connection lost: {type(exc).__name__}", "proxy" if self.has_proxy else "network"
            ) from None

    async def _invoke(self, request: Any) -> Any:
        return await self._call(self.client(request), convert.method_name(request))

    async def _entity(self, peer: int | str) -> Any:
        """The full entity for a peer ref (`@name`, `+phone`, marked id, `+hash` invite)."""
        try:
            return await self._call(self.client.get_entity(peer), "resolve")
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            # IndexError: Telethon indexes channels.getChannels' answer, empty for a channel whose
            # access hash this connection does not know (one the account is not in, or banned from);
            # KeyError: it indexes messages.getChats' answer by id, which lacks a basic group (`-5`)
            # that does not exist or the account cannot see.
            raise PeerNotFound(f"cannot resolve {peer!r}: {exc}") from None
        except TelegramFailure as exc:
            if exc.name in (
                "USERNAME_NOT_OCCUPIED",
                "USERNAME_INVALID",
                "PEER_ID_INVALID",
                "CHANNEL_INVALID",
            ):
                raise PeerNotFound(f"cannot resolve {peer!r}: {exc.name}") from None
            raise

    async def member_chats(self, limit: int) -> list[int]:
        """The groups and channels among the account's `limit` most recent dialogs (peer ids,
        `-100…` for channels); reading them also teaches the connection their access hashes."""
        dialogs = await self._call(self.client.get_dialogs(limit=limit), "messages.getDialogs")
        self._dialogs_loaded = True
        return [int(d.id) for d in dialogs if d.is_group or d.is_channel]

    async def _input(self, peer: int | str) -> Any:
        try:
            return await self._call(self.client.get_input_entity(peer), "resolve")
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # see `_entity`
            if isinstance(peer, int) and not self._dialogs_loaded:
                # A fresh connection (a new holder) knows no access hashes yet: the dialogs teach them.
                self._dialogs_loaded = True
                await self._call(self.client.get_dialogs(limit=200), "messages.getDialogs")
                return await self._input(peer)
            raise PeerNotFound(f"cannot resolve {peer!r}: {exc}") from None
        except TelegramFailure as exc:
            if exc.name in ("USERNAME_NOT_OCCUPIED", "USERNAME_INVALID", "PEER_ID_INVALID"):
                raise PeerNotFound(f"cannot resolve {peer!r}: {exc.name}") from None
            raise

    # --- connection ------------------------------------------------------------------------------

    async def connect(self) -> None:
        try:
            await asyncio.wait_for(self.client.connect(), self.timeout)
        except errors.RPCError as exc:
            raise convert.to_failure(exc, "initConnection") from None
        except TimeoutError:
            await self._quiet_disconnect()
            raise TelegramUnreachable("connecting timed out", "timeout") from None
        except (ConnectionError, OSError) as exc:
            await self._quiet_disconnect()
            raise TelegramUnreachable(
                f"cannot connect: {type(exc).__name__}: {exc}"[:300], "proxy" if self.has_proxy else "network"
            ) from None

    async def _quiet_disconnect(self) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5)
        except Exception:
            pass

    async def disconnect(self) -> None:
        await self._quiet_disconnect()

    def is_connected(self) -> bool:
        return bool(self.client.is_connected())

    def session_string(self) -> str:
        return StringSession.save(self.client.session)

    # --- peers remembered across connections (`fleet/peers.py`) ------------------------------------

    def learn_peers(self, peers: Iterable[KnownPeer]) -> int:
        """Saved rows into this connection's session (before it connects)."""
        session = self.client.session
        if not isinstance(session, PeerSession):
            return 0
        return session.load(peers)

    def new_peers(self) -> list[KnownPeer]:
        session = self.client.session
        if not isinstance(session, PeerSession):
            return []
        return [KnownPeer(*row) for row in session.take_seen()]

    def socket_peer(self) -> str | None:
        try:
            writer = self.client._sender._connection._writer  # Telethon internals: the live socket
            peer = writer.get_extra_info("peername")
        except AttributeError:
            return None
        return f"{peer[0]}:{peer[1]}" if peer else None

    async def wait_disconnected(self) -> None:
        try:
            await self.client.disconnected
        except Exception:  # the future carries the reason the connection ended; we only need the fact
            pass

    # --- self ------------------------------------------------------------------------------------

    async def get_me(self) -> TelegramProfile | None:
        users = await self._invoke(functions.users.GetUsersRequest([types.InputUserSelf()]))
        if not users:
            return None
        me = users[0]
        self._me_id = me.id
        return convert.profile(me)

    async def get_bio(self) -> str | None:
        full = await self._invoke(functions.users.GetFullUserRequest(types.InputUserSelf()))
        return full.full_user.about

    async def ping(self) -> float:
        started = asyncio.get_running_loop().time()
        await self._invoke(functions.updates.GetStateRequest())
        return (asyncio.get_running_loop().time() - started) * 1000

    # --- login -----------------------------------------------------------------------------------

    @staticmethod
    def _sent(sent: Any) -> SentCode:
        length = getattr(sent.type, "length", None)
        return SentCode(
            phone_code_hash=sent.phone_code_hash,
            code_type=convert.code_type(sent.type) or "unknown",
            next_type=convert.code_type(getattr(sent, "next_type", None)),
            length=length,
            timeout=getattr(sent, "timeout", None),
        )

    async def send_code(self, phone: str, force_sms: bool) -> SentCode:
        sent = await self._call(self.client.send_code_request(phone, force_sms=force_sms), "auth.sendCode")
        return self._sent(sent)

    async def resend_code(self, phone: str, phone_code_hash: str) -> SentCode:
        sent = await self._invoke(functions.auth.ResendCodeRequest(phone, phone_code_hash))
        return self._sent(sent)

    async def sign_in(self, phone: str, code: str, phone_code_hash: str) -> TelegramProfile:
        user = await self._call(
            self.client.sign_in(phone, code, phone_code_hash=phone_code_hash), "auth.signIn"
        )
        return convert.profile(user)

    async def check_password(self, password: str) -> TelegramProfile:
        # Telethon computes the SRP check; the password itself never leaves this call.
        user = await self._call(self.client.sign_in(password=password), "auth.checkPassword", timeout=60)
        return convert.profile(user)

    async def password_hint(self) -> str | None:
        info = await self._invoke(functions.account.GetPasswordRequest())
        return info.hint or None

    async def export_login_token(self) -> LoginToken | TelegramProfile:
        api_id, api_hash = self.client.api_id, self.client.api_hash
        result = await self._invoke(functions.auth.ExportLoginTokenRequest(api_id, api_hash, except_ids=[]))
        if isinstance(result, types.auth.LoginTokenMigrateTo):
            await self._call(self.client._switch_dc(result.dc_id), "auth.importLoginToken")
            result = await self._invoke(functions.auth.ImportLoginTokenRequest(result.token))
        if isinstance(result, types.auth.LoginTokenSuccess):
            return convert.profile(result.authorization.user)
        expires = result.expires
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return LoginToken(token=result.token, expires=expires)

    def on_login_token(self, callback: Callable[[], Awaitable[None]]) -> None:
        async def handler(update: Any) -> None:
            await callback()

        self.client.add_event_handler(handler, events.Raw(types.UpdateLoginToken))

    async def log_out(self) -> bool:
        result = await self._invoke(functions.auth.LogOutRequest())
        return result is not None

    # --- profile ---------------------------------------------------------------------------------

    async def update_profile(
        self, first_name: str | None, last_name: str | None, bio: str | None
    ) -> TelegramProfile:
        user = await self._invoke(
            functions.account.UpdateProfileRequest(first_name=first_name, last_name=last_name, about=bio)
        )
        return convert.profile(user)

    async def update_username(self, username: str) -> TelegramProfile:
        try:
            user = await self._invoke(functions.account.UpdateUsernameRequest(username))
        except TelegramFailure as exc:
            if exc.name != "USERNAME_NOT_MODIFIED":
                raise
            me = await self.get_me()
            assert me is not None
            return me
        return convert.profile(user)

    async def set_photo(self, url: str) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=30, follow_redirects=True, trust_env=False) as http:
                resp = await http.get(url)
                resp.raise_for_status()
                data = resp.content
        except httpx.HTTPError as exc:
            raise TelegramFailure("PHOTO_URL_UNREACHABLE", method="photos.uploadProfilePhoto") from exc
        if len(data) > 10 * 1024 * 1024:
            raise TelegramFailure("PHOTO_FILE_TOO_BIG", method="photos.uploadProfilePhoto")
        uploaded = await self._call(
            self.client.upload_file(data, file_name="photo.jpg"), "upload.saveFilePart"
        )
        await self._invoke(functions.photos.UploadProfilePhotoRequest(file=uploaded))

    # --- messages --------------------------------------------------------------------------------

    async def send_message(self, message: SendRequest, random_id: int) -> SentMessage:
        """Send `message` (a text, or a media with its caption) to its peer, as `random_id`.

        A group or channel given by marked id that this account cannot address even after its
        dialogs (not a member: removed, banned, never joined; a connection learns a channel's access
        hash only from the chats it is in) is Telegram's `CHANNEL_PRIVATE`, as Telegram answers a
        non-member, not a lookup failure: campaign fails such a post `chat_write_forbidden` (a pool
        job tries its other accounts first), where an unknown peer would be `peer_invalid`."""
        peer = message.peer
        try:
            entity = await self._input(peer)
        except PeerNotFound:
            if isinstance(peer, int) and peer < 0:
                raise TelegramFailure("CHANNEL_PRIVATE", method="messages.sendMessage") from None
            raise
        mode = {"md": "md", "html": "html"}.get(message.parse_mode)
        try:
            text, entities = await self.client._parse_message_text(message.text, mode)
        except ValueError as exc:
            raise TelegramFailure("MESSAGE_PARSE_FAILED", method="messages.sendMessage") from exc
        reply = types.InputReplyToMessage(reply_to_msg_id=message.reply_to) if message.reply_to else None
        silent = message.silent or None
        if message.media_url is not None or message.file_id is not None:
            try:
                media = (
                    convert.external_media(message.media_url, message.media_kind)
                    if message.media_url is not None
                    else convert.input_media(message.file_id or "")
                )
            except ValueError as exc:
                raise TelegramFailure("MEDIA_INVALID", method="messages.sendMedia") from exc
            request: Any = functions.messages.SendMediaRequest(
                peer=entity,
                media=media,
                message=text,
                random_id=random_id,
                reply_to=reply,
                silent=silent,
                entities=entities or None,
            )
        else:
            request = functions.messages.SendMessageRequest(
                peer=entity,
                message=text,
                random_id=random_id,
                reply_to=reply,
                silent=silent,
                no_webpage=not message.link_preview or None,
                entities=entities or None,
            )
        result = await self._invoke(request)
        peer_id = utils.get_peer_id(entity)
        kind = self._kind_of(entity)
        if isinstance(result, types.UpdateShortSentMessage):
            return SentMessage(message_id=result.id, peer_id=peer_id, chat_kind=kind, date=result.date)
        msg = self.client._get_response_message(request, result, entity)
        if msg is None:
            raise TelegramFailure("NO_MESSAGE_IN_ANSWER", method=convert.method_name(request))
        return SentMessage(
            message_id=msg.id,
            peer_id=peer_id,
            chat_kind=kind,
            date=msg.date,
            media_ref=convert.media_ref(msg),
        )

    def _kind_of(self, entity: Any) -> str | None:
        if isinstance(entity, types.InputPeerUser | types.InputPeerSelf | types.InputPeerUserFromMessage):
            return "private"
        if isinstance(entity, types.InputPeerChat):
            return "group"
        return None  # a channel or a supergroup: not knowable without another call

    async def find_sent(self, peer: int | str, text: str, limit: int = 50) -> SentMessage | None:
        entity = await self._input(peer)
        msgs = await self._call(self.client.get_messages(entity, limit=limit), "messages.getHistory")
        for msg in msgs:
            if msg.out and (msg.message or "") == text:
                return SentMessage(
                    message_id=msg.id,
                    peer_id=utils.get_peer_id(entity),
                    chat_kind=self._kind_of(entity),
                    date=msg.date,
                    media_ref=convert.media_ref(msg),
                )
        return None

    async def set_typing(self, peer: int | str) -> None:
        entity = await self._input(peer)
        await self._invoke(functions.messages.SetTypingRequest(entity, types.SendMessageTypingAction()))

    async def resolve(self, peer: int | str) -> ResolvedPeer:
        entity = await self._entity(peer)
        return convert.resolved(entity, self._me_id)

    async def history(
        self, peer: int | str, limit: int, offset_id: int | None, min_id: int | None
    ) -> list[HistoryMessage]:
        entity = await self._input(peer)
        msgs = await self._call(
            self.client.get_messages(entity, limit=limit, offset_id=offset_id or 0, min_id=min_id or 0),
            "messages.getHistory",
        )
        return [convert.history_message(m) for m in msgs]

    async def mark_read(self, peer: int | str, max_id: int | None) -> None:
        entity = await self._input(peer)
        await self._call(self.client.send_read_acknowledge(entity, max_id=max_id), "messages.readHistory")

    # --- chats -----------------------------------------------------------------------------------

    async def _chat_entity(self, chat: int | str) -> Any:
        if isinstance(chat, str) and chat.startswith("+"):
            invite = await self._invoke(functions.messages.CheckChatInviteRequest(chat[1:]))
            if isinstance(invite, types.ChatInviteAlready | types.ChatInvitePeek):
                return invite.chat
            raise TelegramFailure("CHANNEL_PRIVATE", method="messages.checkChatInvite")
        entity = await self._entity(chat)
        if isinstance(entity, types.User):
            raise PeerNotFound(f"{chat!r} is a user, not a group or channel")
        return entity

    async def chat_info(self, chat: int | str) -> ChatView:
        entity = await self._chat_entity(chat)
        return await self._full_view(entity)

    async def _full_view(self, entity: Any) -> ChatView:
        try:
            if isinstance(entity, types.Channel):
                full = await self._invoke(functions.channels.GetFullChannelRequest(entity))
                return convert.chat_view(
                    full.chats[0] if full.chats else entity,
                    about=full.full_chat.about or None,
                    members=full.full_chat.participants_count,
                )
            if isinstance(entity, types.Chat):
                full = await self._invoke(functions.messages.GetFullChatRequest(entity.id))
                parts = getattr(full.full_chat.participants, "participants", None)
                return convert.chat_view(
                    entity, about=full.full_chat.about or None, members=len(parts) if parts else None
                )
        except TelegramFailure as exc:
            if exc.is_flood or exc.session_dead:
                raise
        return convert.chat_view(entity)

    async def join(self, chat: int | str) -> tuple[ChatView | None, bool, bool]:
        if isinstance(chat, str) and chat.startswith("+"):
            code = chat[1:]
            invite = await self._invoke(functions.messages.CheckChatInviteRequest(code))
            if isinstance(invite, types.ChatInviteAlready):
                return await self._full_view(invite.chat), True, False
            try:
                updates = await self._invoke(functions.messages.ImportChatInviteRequest(code))
            except TelegramFailure as exc:
                if exc.name == "INVITE_REQUEST_SENT":
                    return None, False, True
                if exc.name == "USER_ALREADY_PARTICIPANT":
                    return None, True, False
                raise
            chats = getattr(updates, "chats", None) or []
            if not chats:
                raise TelegramFailure("CHAT_INVALID", method="messages.importChatInvite")
            return await self._full_view(chats[0]), False, False
        entity = await self._chat_entity(chat)
        if isinstance(entity, types.Chat):
            if not entity.left and not entity.deactivated:
                return await self._full_view(entity), True, False
            raise TelegramFailure("INVITE_HASH_EMPTY", method="messages.importChatInvite")
        if not getattr(entity, "left", True):
            return await self._full_view(entity), True, False
        try:
            updates = await self._invoke(functions.channels.JoinChannelRequest(entity))
        except TelegramFailure as exc:
            if exc.name == "USER_ALREADY_PARTICIPANT":
                return await self._full_view(entity), True, False
            if exc.name == "INVITE_REQUEST_SENT":
                return None, False, True
            raise
        chats = getattr(updates, "chats", None) or [entity]
        return await self._full_view(chats[0]), False, False

    async def leave(self, chat: int | str) -> tuple[int, bool]:
        entity = await self._chat_entity(chat)
        chat_id = utils.get_peer_id(entity)
        try:
            if isinstance(entity, types.Chat):
                await self._invoke(functions.messages.DeleteChatUserRequest(entity.id, types.InputUserSelf()))
            else:
                await self._invoke(functions.channels.LeaveChannelRequest(entity))
        except TelegramFailure as exc:
            if exc.name in ("USER_NOT_PARTICIPANT", "CHANNEL_PRIVATE"):
                return chat_id, False
            raise
        return chat_id, True

    async def search_chats(self, keyword: str, limit: int) -> list[ChatView]:
        found = await self._invoke(functions.contacts.SearchRequest(q=keyword, limit=limit))
        return [convert.chat_view(c) for c in found.chats if isinstance(c, types.Channel | types.Chat)]

    async def participants(
        self, chat: int | str, *, filter: str, query: str | None, offset: int, limit: int
    ) -> ParticipantsPage:
        entity = await self._chat_entity(chat)
        if isinstance(entity, types.Chat):
            full = await self._invoke(functions.messages.GetFullChatRequest(entity.id))
            users = {u.id: u for u in full.users}
            parts = list(getattr(full.full_chat.participants, "participants", None) or [])
            rows = [(p, users[p.user_id]) for p in parts if p.user_id in users]
            if filter == "admins":
                rows = [
                    r
                    for r in rows
                    if isinstance(r[0], types.ChatParticipantCreator | types.ChatParticipantAdmin)
                ]
            elif filter == "bots":
                rows = [r for r in rows if r[1].bot]
            if query:
                q = query.lower()
                rows = [
                    r
                    for r in rows
                    if q in f"{r[1].first_name or ''} {r[1].last_name or ''} {r[1].username or ''}".lower()
                ]
            page = rows[offset : offset + limit]
            return ParticipantsPage(
                total=len(rows),
                members=[convert.member(p, u) for p, u in page],
                with_photo={u.id for _, u in page if _has_photo(u)},
            )
        flt: Any
        if filter == "admins":
            flt = types.ChannelParticipantsAdmins()
        elif filter == "bots":
            flt = types.ChannelParticipantsBots()
        elif query:
            flt = types.ChannelParticipantsSearch(query)
        else:
            flt = types.ChannelParticipantsRecent()
        result = await self._invoke(
            functions.channels.GetParticipantsRequest(entity, flt, offset=offset, limit=limit, hash=0)
        )
        if isinstance(result, types.channels.ChannelParticipantsNotModified):
            return ParticipantsPage(total=0, members=[])
        users = {u.id: u for u in result.users}
        members = []
        for p in result.participants:
            uid = getattr(p, "user_id", None) or utils.get_peer_id(getattr(p, "peer", None))
            if uid in users:
                members.append(convert.member(p, users[uid]))
        return ParticipantsPage(
            total=result.count, members=members, with_photo={u.id for u in result.users if _has_photo(u)}
        )

    async def message_authors(
        self, chat: int | str, offset_id: int, limit: int
    ) -> tuple[list[tuple[Any, datetime, bool]], int | None]:
        entity = await self._chat_entity(chat)
        msgs = await self._call(
            self.client.get_messages(entity, limit=limit, offset_id=offset_id), "messages.getHistory"
        )
        out = []
        for m in msgs:
            sender = getattr(m, "sender", None)
            if isinstance(sender, types.User):
                out.append((convert.telegram_user(sender), m.date, _has_photo(sender)))
        next_offset = msgs[-1].id if len(msgs) == limit and msgs else None
        return out, next_offset

    async def create_chat(self, req: CreateGroupRequest) -> CreatedChat:
        kind, title, about, username = req.kind, req.title, req.about, req.username
        users, failed = [], []
        for ref in req.members:
            try:
                users.append(await self._input(ref))
            except PeerNotFound as exc:
                failed.append({"peer": str(ref), "error": str(exc)[:200]})
        invited: list[int] = []
        if kind == "group":
            if not users:
                raise TelegramFailure("USERS_TOO_FEW", method="messages.createChat")
            result = await self._invoke(functions.messages.CreateChatRequest(users=users, title=title))
            updates = getattr(result, "updates", result)
            missing = {m.user_id for m in getattr(result, "missing_invitees", None) or []}
            entity = next(c for c in updates.chats if isinstance(c, types.Chat))
            for u in users:
                uid = utils.get_peer_id(u)
                (
                    failed.append({"peer": str(uid), "error": "USER_PRIVACY_RESTRICTED"})
                    if uid in missing
                    else invited.append(uid)
                )
            if about:
                try:
                    await self._invoke(functions.messages.EditChatAboutRequest(entity, about))
                except TelegramFailure:
                    pass
        else:
            updates = await self._invoke(
                functions.channels.CreateChannelRequest(
                    title=title,
                    about=about or "",
                    megagroup=kind == "supergroup" or None,
                    broadcast=kind == "channel" or None,
                    forum=req.forum or None,
                )
            )
            entity = next(c for c in updates.chats if isinstance(c, types.Channel))
            if users:
                try:
                    result = await self._invoke(functions.channels.InviteToChannelRequest(entity, users))
                    missing = {m.user_id for m in getattr(result, "missing_invitees", None) or []}
                    for u in users:
                        uid = utils.get_peer_id(u)
                        (
                            failed.append({"peer": str(uid), "error": "USER_PRIVACY_RESTRICTED"})
                            if uid in missing
                            else invited.append(uid)
                        )
                except TelegramFailure as exc:
                    if exc.is_flood or exc.session_dead:
                        raise
                    failed += [{"peer": str(utils.get_peer_id(u)), "error": exc.full} for u in users]
            if username:
                try:
                    await self._invoke(functions.channels.UpdateUsernameRequest(entity, username))
                    entity.username = username
                except TelegramFailure as exc:
                    if exc.is_flood or exc.session_dead:
                        raise
                    failed.append({"peer": "@" + username, "error": exc.full})
        link = None
        try:
            exported = await self._invoke(functions.messages.ExportChatInviteRequest(entity))
            link = getattr(exported, "link", None)
        except TelegramFailure as exc:
            if exc.session_dead:
                raise
        view = await self._full_view(entity)
        return CreatedChat(chat=view, invited=invited, failed=failed, invite_link=link)

    # --- inbound updates -------------------------------------------------------------------------

    def set_inbound(self, handlers: InboundHandlers) -> None:
        async def wanted(event: Any, edited: bool) -> bool:
            # Chat id and direction come with the update; the chat and sender may cost a fetch.
            if handlers.wanted is None or event.is_private:
                return True
            return await handlers.wanted(event.chat_id, bool(event.message.out), edited)

        async def on_message(event: Any) -> None:
            try:
                if await wanted(event, False):
                    await handlers.on_message(await self._inbound(event, edited=False))
            except Exception:
                self._inbound_errors += 1
                log.exception("inbound message of %s could not be handled", self.key)

        async def on_edit(event: Any) -> None:
            try:
                if await wanted(event, True):
                    await handlers.on_message(await self._inbound(event, edited=True))
            except Exception:
                self._inbound_errors += 1
                log.exception("edited message of %s could not be handled", self.key)

        async def on_action(event: Any) -> None:
            if event.user_left or event.user_kicked:
                try:
                    if handlers.on_left is not None and await self._me_among(event.user_ids or []):
                        await handlers.on_left(event.chat_id)
                except Exception:
                    log.exception("chat action of %s could not be handled", self.key)
                return
            if not (event.user_joined or event.user_added):
                return
            try:
                users = await event.get_users() or []
                chat = await event.get_chat()
                via = "invite" if event.user_added else "join"
                action = getattr(event.action_message, "action", None)
                if isinstance(action, types.MessageActionChatJoinedByLink):
                    via = "link"
                elif isinstance(action, types.MessageActionChatJoinedByRequest):
                    via = "request_approved"
                inviter = None
                if event.user_added:
                    inviter = getattr(event.action_message, "sender_id", None)
                await handlers.on_join(
                    InboundJoin(
                        chat_id=event.chat_id,
                        chat_title=getattr(chat, "title", None),
                        users=[convert.telegram_user(u) for u in users if isinstance(u, types.User)],
                        inviter_id=inviter,
                        via=via,
                        date=getattr(event.action_message, "date", None) or datetime.now(UTC),
                    )
                )
            except Exception:
                self._inbound_errors += 1
                log.exception("chat action of %s could not be handled", self.key)

        self.client.add_event_handler(on_message, events.NewMessage())
        self.client.add_event_handler(on_edit, events.MessageEdited())
        self.client.add_event_handler(on_action, events.ChatAction())

    # --- catch-up (`fleet/catchup.py`) -------------------------------------------------------------

    async def update_state(self) -> UpdateState:
        st = await self._invoke(functions.updates.GetStateRequest())
        return UpdateState(pts=st.pts, qts=st.qts, date=_unix(st.date), seq=st.seq)

    async def _feed(self, updates: list[Any], users: list[Any], chats: list[Any]) -> int:
        """Hand updates to the registered handlers (those of `set_inbound`), one after the other,
        as Telethon hands live ones; the count of new messages among them."""
        if not updates:
            return 0
        prepared = await self.client._preprocess_updates(updates, users, chats)
        for update in prepared:
            await self.client._dispatch_update(update)
        return sum(isinstance(u, types.UpdateNewMessage | types.UpdateNewChannelMessage) for u in updates)

    async def catch_up(self, state: UpdateState) -> UpdateState:
        """Everything since `state`, through the inbound handlers; the state reached. Raises if a
        handler failed (the caller keeps its stored state and tries again later)."""
        errors_before = self._inbound_errors
        out = UpdateState(state.pts, state.qts, state.date, state.seq, dict(state.channels))
        named: dict[int, int] = {}  # channels with messages after our date -> their pts now
        while True:
            diff = await self._invoke(
                functions.updates.GetDifferenceRequest(
                    pts=out.pts, date=datetime.fromtimestamp(out.date, UTC), qts=out.qts
                )
            )
            if isinstance(diff, types.updates.DifferenceEmpty):
                out.date, out.seq = max(out.date, _unix(diff.date)), diff.seq
                break
            if isinstance(diff, types.updates.DifferenceTooLong):
                out.fed += await self._recent_history(out.date, None)
                now = await self.update_state()
                out.pts, out.qts, out.date, out.seq = now.pts, now.qts, now.date, now.seq
                out.too_long = True
                break
            updates: list[Any] = [types.UpdateNewMessage(m, 0, 0) for m in diff.new_messages]
            for u in diff.other_updates:
                if isinstance(u, types.UpdateChannelTooLong):
                    named[u.channel_id] = u.pts or 0
                else:
                    updates.append(u)
            out.fed += await self._feed(updates, diff.users, diff.chats)
            st = diff.intermediate_state if isinstance(diff, types.updates.DifferenceSlice) else diff.state
            out.pts, out.qts, out.date, out.seq = st.pts, st.qts, max(out.date, _unix(st.date)), st.seq
            if not isinstance(diff, types.updates.DifferenceSlice):
                break
        for channel_id, now_pts in named.items():
            out.channels[channel_id] = await self._channel_catch_up(
                channel_id, state.channels.get(channel_id), now_pts, state.date, out
            )
        if self._inbound_errors != errors_before:
            raise RuntimeError(f"{self._inbound_errors - errors_before} caught-up update(s) failed")
        return out

    async def _channel_catch_up(
        self, channel_id: int, pts: int | None, now_pts: int, since: int, out: UpdateState
    ) -> int:
        """A channel's messages after our pts (getChannelDifference), or after `since` (its recent
        history) when we have no pts or it is too far behind; the channel's pts reached."""
        marked = utils.get_peer_id(types.PeerChannel(channel_id))
        try:
            entity = await self._input(marked)
        except PeerNotFound:
            return pts or now_pts
        while pts:
            diff = await self._invoke(
                functions.updates.GetChannelDifferenceRequest(
                    channel=entity, filter=types.ChannelMessagesFilterEmpty(), pts=pts, limit=100
                )
            )
            if isinstance(diff, types.updates.ChannelDifferenceEmpty):
                return max(pts, diff.pts)
            if isinstance(diff, types.updates.ChannelDifferenceTooLong):
                break
            updates: list[Any] = [types.UpdateNewChannelMessage(m, 0, 0) for m in diff.new_messages]
            updates += list(diff.other_updates)
            out.fed += await self._feed(updates, diff.users, diff.chats)
            pts = max(pts, diff.pts)
            if diff.final:
                return pts
        out.fed += await self._recent_history(since, entity)
        return now_pts

    async def _recent_history(self, since: int, only: Any) -> int:
        """Messages after `since` of the dialogs active since then (or of `only`), bounded by
        TOO_LONG_DIALOGS x TOO_LONG_MESSAGES, oldest first."""
        from ..fleet.catchup import TOO_LONG_DIALOGS, TOO_LONG_MESSAGES

        peers: list[Any] = [only] if only is not None else []
        if only is None:
            dialogs = await self._invoke(
                functions.messages.GetDialogsRequest(
                    offset_date=None,
                    offset_id=0,
                    offset_peer=types.InputPeerEmpty(),
                    limit=TOO_LONG_DIALOGS,
                    hash=0,
                )
            )
            tops = {(utils.get_peer_id(m.peer_id), m.id): m for m in getattr(dialogs, "messages", [])}
            await self.client._preprocess_updates([], dialogs.users, dialogs.chats)
            for d in getattr(dialogs, "dialogs", []):
                top = tops.get((utils.get_peer_id(d.peer), d.top_message))
                if top is not None and _unix(top.date) > since:
                    peers.append(await self.client.get_input_entity(d.peer))
        fed = 0
        for peer in peers:
            page = await self._invoke(
                functions.messages.GetHistoryRequest(
                    peer=peer,
                    offset_id=0,
                    offset_date=None,
                    add_offset=0,
                    limit=TOO_LONG_MESSAGES,
                    max_id=0,
                    min_id=0,
                    hash=0,
                )
            )
            channel = isinstance(peer, types.InputPeerChannel)
            wrap = types.UpdateNewChannelMessage if channel else types.UpdateNewMessage
            msgs = [
                m for m in reversed(getattr(page, "messages", [])) if _unix(getattr(m, "date", None)) > since
            ]
            fed += await self._feed([wrap(m, 0, 0) for m in msgs], page.users, page.chats)
        return fed

    async def _me_among(self, user_ids: list[int]) -> bool:
        """The account's own user is one of `user_ids` (its id is asked once, then kept)."""
        if not user_ids:
            return False
        if self._me_id is None:
            await self.get_me()
        return self._me_id in user_ids

    async def _inbound(self, event: Any, *, edited: bool) -> InboundMessage:
        msg = event.message
        chat = await event.get_chat()
        kind = "private" if event.is_private else (convert.chat_kind(chat) if chat is not None else "group")
        sender = await event.get_sender()
        reply = getattr(msg, "reply_to", None)
        return InboundMessage(
            chat_kind=kind,
            chat_id=event.chat_id,
            chat_title=getattr(chat, "title", None),
            chat_username=getattr(chat, "username", None),
            message_id=msg.id,
            sender_id=msg.sender_id,
            sender=convert.telegram_user(sender) if isinstance(sender, types.User) else None,
            text=msg.message or "",
            date=msg.date,
            reply_to_message_id=getattr(reply, "reply_to_msg_id", None),
            media_kind=convert.media_kind(msg),
            mentioned=bool(getattr(msg, "mentioned", False)),
            outgoing=bool(msg.out),
            forwarded=msg.fwd_from is not None,
            grouped_id=getattr(msg, "grouped_id", None),
            edited=edited,
            edit_date=getattr(msg, "edit_date", None),
        )
