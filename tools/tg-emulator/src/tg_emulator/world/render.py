"""Rendering world data as Telethon TL objects, as one viewer sees them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from telethon.tl import types

from .model import BoxMessage, Channel, ChannelMessage, Chat, Peer, User

if TYPE_CHECKING:
    from .world import World

ADMIN_RIGHTS = types.ChatAdminRights(
    change_info=True,
    delete_messages=True,
    ban_users=True,
    invite_users=True,
    pin_messages=True,
    add_admins=True,
    manage_call=True,
    other=True,
)


def ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)


def peer_tl(peer: Peer) -> types.TypePeer:
    kind, pid = peer
    if kind == "user":
        return types.PeerUser(pid)
    if kind == "chat":
        return types.PeerChat(pid)
    return types.PeerChannel(pid)


def user(u: User, viewer: int | None, world: World) -> types.User:
    is_self = u.id == viewer
    viewer_user = world.users.get(viewer) if viewer else None
    contact = bool(viewer_user and u.id in viewer_user.contacts)
    mutual = contact and viewer in u.contacts
    return types.User(
        id=u.id,
        is_self=is_self,
        contact=contact,
        mutual_contact=mutual,
        deleted=u.deleted or None,
        bot=u.bot or None,
        # `bot` and `bot_info_version` share one flag bit in the TL schema: a bot needs both.
        bot_info_version=1 if u.bot else None,
        access_hash=u.access_hash,
        first_name=None if u.deleted else (u.first_name or None),
        last_name=None if u.deleted else (u.last_name or None),
        username=u.username,
        # Visible to the user and to whoever has the number as a contact (what Telethon needs to
        # find a contact by phone).
        phone=u.phone if (is_self or contact) else None,
        status=types.UserStatusRecently() if not u.deleted else None,
    )


def chat(c: Chat, viewer: int | None) -> types.Chat:
    return types.Chat(
        id=c.id,
        title=c.title,
        photo=types.ChatPhotoEmpty(),
        participants_count=len(c.members),
        date=ts(c.date),
        version=c.version,
        creator=c.creator_id == viewer,
        left=viewer is not None and viewer not in c.members,
        deactivated=c.deactivated or None,
        admin_rights=ADMIN_RIGHTS if viewer in c.admins or viewer == c.creator_id else None,
    )


def channel(ch: Channel, viewer: int | None) -> types.Channel:
    part = ch.participants.get(viewer) if viewer is not None else None
    role = part.role if part else None
    return types.Channel(
        id=ch.id,
        title=ch.title,
        photo=types.ChatPhotoEmpty(),
        date=ts(ch.date),
        creator=role == "creator",
        left=part is None,
        broadcast=ch.broadcast or None,
        megagroup=ch.megagroup or None,
        access_hash=ch.access_hash,
        username=ch.username,
        slowmode_enabled=bool(ch.slowmode_seconds) or None,
        participants_count=len(ch.participants),
        admin_rights=ADMIN_RIGHTS if role in ("creator", "admin") else None,
    )


def box_message(m: BoxMessage, owner: int) -> types.TypeMessage:
    return _message(m, peer_tl(m.peer), out=m.out, from_id=types.PeerUser(m.from_id))


def channel_message(ch: Channel, m: ChannelMessage, viewer: int | None) -> types.TypeMessage:
    # A broadcast channel's posts are signed by the channel: no from_id, and `post` set.
    from_id = types.PeerUser(m.from_id) if ch.megagroup else None
    return _message(
        m, types.PeerChannel(ch.id), out=m.from_id == viewer, from_id=from_id, post=ch.broadcast or None
    )


def _message(
    m: BoxMessage | ChannelMessage,
    peer: types.TypePeer,
    *,
    out: bool,
    from_id: types.PeerUser | None,
    post: bool | None = None,
) -> types.TypeMessage:
    """A message as a box or a channel keeps it: a service message (an action) or a text message."""
    if m.action is not None:
        return types.MessageService(
            id=m.id, peer_id=peer, date=ts(m.date), action=m.action, out=out, from_id=from_id
        )
    reply = types.MessageReplyHeader(reply_to_msg_id=m.reply_to_id) if m.reply_to_id else None
    return types.Message(
        id=m.id,
        peer_id=peer,
        date=ts(m.date),
        message=m.text,
        out=out,
        post=post,
        from_id=from_id,
        entities=m.entities,
        reply_to=reply,
        reply_markup=m.reply_markup,
    )


def markup_dict(markup: Any) -> dict[str, Any] | None:
    """A keyboard as plain JSON data for the admin API: the TL object's fields, bytes as text."""
    if markup is None:
        return None

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value

    return plain(markup.to_dict())


def notify_settings() -> types.PeerNotifySettings:
    return types.PeerNotifySettings(show_previews=True, silent=False)
