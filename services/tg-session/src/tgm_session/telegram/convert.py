"""Telethon objects into contract models (and a few small Telegram-side facts)."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import errors, utils
from telethon.errors import rpcerrorlist
from telethon.tl import types
from tgm_contracts.models.session import ChatView, GroupMemberView, TelegramProfile, TelegramUser
from tgm_contracts.rpc_session import HistoryMessage, ResolvedPeer

from ..ports import TelegramFailure

# --- errors --------------------------------------------------------------------------------------

_NAME_BY_CLASS: dict[type, str] = {cls: name for name, cls in rpcerrorlist.rpc_errors_dict.items()}
_PATTERN_BY_CLASS: dict[type, str] = {cls: pattern for pattern, cls in rpcerrorlist.rpc_errors_re}
_CAPTURES = ("seconds", "new_dc", "minutes", "dc", "code_length", "which")


def to_failure(exc: errors.RPCError, method: str = "") -> TelegramFailure:
    """Telethon drops the raw error text of the errors it knows; rebuild Telegram's name."""
    cls = type(exc)
    seconds: int | None = None
    if cls in _NAME_BY_CLASS:
        name = full = _NAME_BY_CLASS[cls]
    elif cls in _PATTERN_BY_CLASS:
        pattern = _PATTERN_BY_CLASS[cls]
        for attr in _CAPTURES:
            value = getattr(exc, attr, None)
            if isinstance(value, int):
                seconds = value
                break
        full = pattern.replace("(\\d+)", str(seconds if seconds is not None else "X"))
        name = pattern.replace("_(\\d+)", "").replace("(\\d+)", "X")
    else:
        name = full = str(exc.message or "RPC_ERROR")
        # An unknown numbered error: keep the number apart, like the known ones.
        head, _, tail = name.rpartition("_")
        if head and tail.isdigit():
            name, seconds = head, int(tail)
    return TelegramFailure(
        name.upper(), code=getattr(exc, "code", None), seconds=seconds, method=method, full=full.upper()
    )


def method_name(request: Any) -> str:
    """`messages.sendMessage`-style name of a TL request (for flood-wait categories and events)."""
    qual = type(request).__module__.rsplit(".", 1)[-1]
    name = type(request).__name__.removesuffix("Request")
    if qual in ("functions", ""):
        return name[0].lower() + name[1:]
    return f"{qual}.{name[0].lower()}{name[1:]}"


# --- users and presence --------------------------------------------------------------------------


def presence(status: Any, bot: bool = False) -> tuple[str, datetime | None]:
    now = datetime.now(UTC)
    if isinstance(status, types.UserStatusOnline):
        return "online", now
    if isinstance(status, types.UserStatusOffline):
        seen = status.was_online
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        age = now - seen
        if age <= timedelta(days=3):
            return "recently", seen
        if age <= timedelta(days=7):
            return "last_week", seen
        if age <= timedelta(days=30):
            return "last_month", seen
        return "long_ago", seen
    if isinstance(status, types.UserStatusRecently):
        return "recently", None
    if isinstance(status, types.UserStatusLastWeek):
        return "last_week", None
    if isinstance(status, types.UserStatusLastMonth):
        return "last_month", None
    if isinstance(status, types.UserStatusEmpty):
        return "long_ago", None
    return ("unknown" if bot else "hidden"), None


def _username(entity: Any) -> str | None:
    if getattr(entity, "username", None):
        return entity.username
    for u in getattr(entity, "usernames", None) or ():
        if getattr(u, "active", True):
            return u.username
    return None


def telegram_user(u: Any) -> TelegramUser:
    pres, last = presence(getattr(u, "status", None), bool(getattr(u, "bot", False)))
    phone = getattr(u, "phone", None)
    return TelegramUser(
        user_id=u.id,
        username=_username(u),
        first_name=getattr(u, "first_name", None),
        last_name=getattr(u, "last_name", None),
        phone=("+" + phone) if phone else None,
        is_bot=bool(getattr(u, "bot", False)),
        is_premium=bool(getattr(u, "premium", False)),
        is_verified=bool(getattr(u, "verified", False)),
        is_scam=bool(getattr(u, "scam", False)),
        is_deleted=bool(getattr(u, "deleted", False)),
        is_contact=bool(getattr(u, "contact", False)),
        lang_code=getattr(u, "lang_code", None),
        presence=pres,
        last_online_at=last,
    )


def profile(u: Any, bio: str | None = None) -> TelegramProfile:
    phone = getattr(u, "phone", None)
    return TelegramProfile(
        telegram_id=u.id,
        first_name=getattr(u, "first_name", None),
        last_name=getattr(u, "last_name", None),
        username=_username(u),
        bio=bio,
        phone=("+" + phone) if phone else None,
        premium=bool(getattr(u, "premium", False)),
        verified=bool(getattr(u, "verified", False)),
        has_photo=not isinstance(getattr(u, "photo", None), types.UserProfilePhotoEmpty | type(None)),
        synced_at=datetime.now(UTC),
    )


def member(participant: Any, user: Any) -> GroupMemberView:
    base = telegram_user(user).model_dump(by_alias=False)
    role = "member"
    if isinstance(participant, types.ChannelParticipantCreator | types.ChatParticipantCreator):
        role = "creator"
    elif isinstance(participant, types.ChannelParticipantAdmin | types.ChatParticipantAdmin):
        role = "admin"
    elif isinstance(participant, types.ChannelParticipantBanned):
        role = "banned" if getattr(participant, "left", False) else "restricted"
    elif isinstance(participant, types.ChannelParticipantLeft):
        role = "left"
    joined = getattr(participant, "date", None)
    return GroupMemberView(**base, role=role, joined_at=joined)


# --- chats ---------------------------------------------------------------------------------------


def chat_kind(entity: Any) -> str:
    if isinstance(entity, types.Channel | types.ChannelForbidden):
        if getattr(entity, "gigagroup", False):
            return "gigagroup"
        return "supergroup" if getattr(entity, "megagroup", False) else "channel"
    if isinstance(entity, types.Chat | types.ChatForbidden | types.ChatEmpty):
        return "group"
    return "private"


def chat_view(entity: Any, *, about: str | None = None, members: int | None = None) -> ChatView:
    kind = chat_kind(entity)
    username = _username(entity)
    count = members if members is not None else getattr(entity, "participants_count", None)
    is_admin = bool(getattr(entity, "creator", False) or getattr(entity, "admin_rights", None))
    left = getattr(entity, "left", None)
    return ChatView(
        chat_id=utils.get_peer_id(entity),
        kind=kind,
        title=getattr(entity, "title", "") or "",
        username=username,
        about=about,
        members_count=count,
        invite_link=f"https://t.me/{username}" if username else None,
        is_public=bool(username),
        is_member=None if left is None else not left,
        is_admin=is_admin,
        verified=bool(getattr(entity, "verified", False)),
        scam=bool(getattr(entity, "scam", False)),
        forum=bool(getattr(entity, "forum", False)),
    )


def resolved(entity: Any, me_id: int | None) -> ResolvedPeer:
    if isinstance(entity, types.User):
        name = " ".join(p for p in (entity.first_name, entity.last_name) if p) or None
        phone = entity.phone
        return ResolvedPeer(
            peer_id=entity.id,
            kind="bot" if entity.bot else "user",
            username=_username(entity),
            title=name,
            first_name=entity.first_name,
            last_name=entity.last_name,
            phone=("+" + phone) if phone else None,
            is_contact=bool(entity.contact),
            is_self=bool(entity.is_self) or entity.id == me_id,
            can_write=not bool(entity.deleted),
        )
    kind = chat_kind(entity)
    can_write: bool | None = None
    if kind == "channel":
        can_write = bool(getattr(entity, "creator", False) or getattr(entity, "admin_rights", None))
    elif not getattr(entity, "left", False):
        can_write = True
    return ResolvedPeer(
        peer_id=utils.get_peer_id(entity),
        kind={"gigagroup": "supergroup", "private": "user"}.get(kind, kind),
        username=_username(entity),
        title=getattr(entity, "title", None),
        can_write=can_write,
    )


def media_kind(msg: Any) -> str | None:
    if not getattr(msg, "media", None):
        return None
    if msg.photo:
        return "photo"
    if msg.voice:
        return "voice"
    if msg.video or msg.video_note or msg.gif:
        return "video"
    if msg.audio:
        return "audio"
    if msg.sticker:
        return "sticker"
    if msg.contact:
        return "contact"
    if msg.geo or msg.venue:
        return "location"
    if msg.poll:
        return "poll"
    if msg.document:
        return "document"
    return "other"


def history_message(msg: Any) -> HistoryMessage:
    reply = getattr(msg, "reply_to", None)
    return HistoryMessage(
        message_id=msg.id,
        sender_id=msg.sender_id,
        is_outgoing=bool(msg.out),
        text=getattr(msg, "message", "") or "",
        date=msg.date,
        edit_date=getattr(msg, "edit_date", None),
        reply_to_message_id=getattr(reply, "reply_to_msg_id", None),
        media_kind=media_kind(msg) if isinstance(msg, types.Message) else None,
    )


# --- media references ----------------------------------------------------------------------------


def media_ref(msg: Any) -> str | None:
    """A compact reusable reference to the photo or document a sent message carries."""
    media = msg.photo or msg.document if isinstance(msg, types.Message) else None
    if media is None or not hasattr(media, "access_hash"):
        return None
    tag = b"p" if isinstance(media, types.Photo) else b"d"
    raw = tag + struct.pack("<qq", media.id, media.access_hash) + (media.file_reference or b"")
    return "tgm:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def input_media(ref: str) -> Any:
    """Our `tgm:` media reference or a Bot API file id, as an InputMedia; ValueError if neither."""
    if ref.startswith("tgm:"):
        body = ref[4:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if len(raw) < 17 or raw[:1] not in (b"p", b"d"):
            raise ValueError("not a media reference")
        ident, access = struct.unpack("<qq", raw[1:17])
        ref_bytes = raw[17:]
        if raw[:1] == b"p":
            return types.InputMediaPhoto(types.InputPhoto(ident, access, ref_bytes))
        return types.InputMediaDocument(types.InputDocument(ident, access, ref_bytes))
    media = utils.resolve_bot_file_id(ref)
    if media is None:
        raise ValueError("not a media reference or Bot API file id")
    return utils.get_input_media(media)


def _file_like(url: str, kind: str) -> str:
    if kind != "auto":
        return kind
    path = url.split("?", 1)[0].lower()
    if path.endswith((".jpg", ".jpeg", ".png", ".webp", ".gif")):
        return "photo"
    return "document"


def external_media(url: str, kind: str) -> Any:
    if _file_like(url, kind) == "photo":
        return types.InputMediaPhotoExternal(url=url)
    return types.InputMediaDocumentExternal(url=url)


CODE_TYPES = {
    types.auth.SentCodeTypeApp: "app",
    types.auth.SentCodeTypeSms: "sms",
    types.auth.SentCodeTypeCall: "call",
    types.auth.SentCodeTypeFlashCall: "flash_call",
    types.auth.SentCodeTypeMissedCall: "missed_call",
    types.auth.SentCodeTypeEmailCode: "email",
    types.auth.SentCodeTypeFragmentSms: "fragment",
    types.auth.CodeTypeSms: "sms",
    types.auth.CodeTypeCall: "call",
    types.auth.CodeTypeFlashCall: "flash_call",
    types.auth.CodeTypeMissedCall: "missed_call",
    types.auth.CodeTypeFragmentSms: "fragment",
}


def code_type(obj: Any) -> str | None:
    if obj is None:
        return None
    return CODE_TYPES.get(type(obj), "unknown")
