"""channels.*: supergroups and broadcast channels."""

from __future__ import annotations

from telethon.tl import functions, types

from ..errors import RpcFail
from ..world import render
from ..world.model import Channel, ChannelParticipant, User
from . import Ctx, handler


def _member_tl(ch: Channel, p: ChannelParticipant, viewer: int):
    if p.role == "creator":
        return types.ChannelParticipantCreator(user_id=p.user_id, admin_rights=render.ADMIN_RIGHTS)
    if p.role == "admin":
        return types.ChannelParticipantAdmin(
            user_id=p.user_id,
            promoted_by=ch.creator_id,
            date=render.ts(p.date),
            admin_rights=render.ADMIN_RIGHTS,
            is_self=p.user_id == viewer or None,
        )
    if p.user_id == viewer:
        return types.ChannelParticipantSelf(
            user_id=p.user_id, inviter_id=p.inviter_id, date=render.ts(p.date)
        )
    return types.ChannelParticipant(user_id=p.user_id, date=render.ts(p.date))


def _channel_updates(ctx: Ctx, me: User, ch: Channel, msg) -> types.Updates:
    ups: list = [types.UpdateChannel(channel_id=ch.id)]
    if msg is not None:
        ups.append(
            types.UpdateNewChannelMessage(
                message=render.channel_message(ch, msg, me.id), pts=ch.pts, pts_count=1
            )
        )
    return ctx.updates(ups, (me.id,), (ch.id,))


@handler(functions.channels.CreateChannelRequest, write=True)
def create_channel(ctx: Ctx, req):
    me = ctx.me()
    ch = ctx.world.create_channel(
        me,
        req.title or "",
        about=req.about or "",
        megagroup=bool(req.megagroup) or not req.broadcast,
        origin_key=ctx.key_id,
    )
    return _channel_updates(ctx, me, ch, ch.messages[ch.order[-1]])


@handler(functions.channels.JoinChannelRequest, write=True)
def join_channel(ctx: Ctx, req):
    me = ctx.me()
    ch = ctx.channel_from(req.channel)
    m = ctx.world.join_channel(me, ch, origin_key=ctx.key_id)
    return _channel_updates(ctx, me, ch, m)


@handler(functions.channels.LeaveChannelRequest)
def leave_channel(ctx: Ctx, req):
    me = ctx.me()
    ch = ctx.channel_from(req.channel)
    m = ctx.world.leave_channel(me, ch, origin_key=ctx.key_id)
    return _channel_updates(ctx, me, ch, m)


@handler(functions.channels.InviteToChannelRequest, write=True)
def invite_to_channel(ctx: Ctx, req):
    me, ch, part = ctx.joined_channel(req.channel)
    if ch.broadcast and part.role == "member":
        raise RpcFail("CHAT_ADMIN_REQUIRED")
    targets = [ctx.user_from(u) for u in req.users]
    added, restricted = ctx.world.invite_to_channel(me, ch, targets, origin_key=ctx.key_id)
    if restricted and not added and len(targets) == 1:
        raise RpcFail("USER_PRIVACY_RESTRICTED")
    return types.messages.InvitedUsers(
        updates=ctx.updates([types.UpdateChannel(channel_id=ch.id)], [u.id for u in added], (ch.id,)),
        missing_invitees=[types.MissingInvitee(user_id=u.id) for u in restricted],
    )


def _filtered(ctx: Ctx, ch: Channel, flt, me: User) -> list[ChannelParticipant]:
    parts = sorted(
        ch.participants.values(), key=lambda p: (p.role != "creator", p.role != "admin", -p.date, p.user_id)
    )
    world = ctx.world
    if isinstance(flt, types.ChannelParticipantsAdmins):
        return [p for p in parts if p.role in ("creator", "admin")]
    if isinstance(flt, types.ChannelParticipantsKicked | types.ChannelParticipantsBanned):
        return []
    if isinstance(flt, types.ChannelParticipantsBots):
        return [p for p in parts if world.users[p.user_id].bot]
    if isinstance(flt, types.ChannelParticipantsContacts):
        return [p for p in parts if p.user_id in me.contacts]
    q = getattr(flt, "q", "") or ""
    if q:
        q = q.lower()
        out = []
        for p in parts:
            u = world.users[p.user_id]
            hay = f"{u.first_name} {u.last_name} {u.username or ''}".lower()
            if q in hay:
                out.append(p)
        return out
    return parts


@handler(functions.channels.GetParticipantsRequest)
def get_participants(ctx: Ctx, req):
    me, ch, part = ctx.readable_channel(req.channel)
    if ch.broadcast and (part is None or part.role == "member"):
        raise RpcFail("CHAT_ADMIN_REQUIRED")
    lim = ctx.world.limits
    if req.limit < 0 or req.offset < 0:
        raise RpcFail("LIMIT_INVALID")
    parts = _filtered(ctx, ch, req.filter, me)
    # Telegram lists at most `participants_total_max` members and `participants_page_max` per call.
    listable = parts[: lim.participants_total_max]
    page = listable[req.offset : req.offset + min(req.limit, lim.participants_page_max)]
    return types.channels.ChannelParticipants(
        count=len(parts),
        participants=[_member_tl(ch, p, me.id) for p in page],
        chats=[],
        users=ctx.world.render_users([p.user_id for p in page], me.id),
    )


@handler(functions.channels.GetParticipantRequest)
def get_participant(ctx: Ctx, req):
    me = ctx.me()
    ch = ctx.channel_from(req.channel)
    uid = ctx.peer_from(req.participant)[1]
    p = ch.participants.get(uid)
    if p is None:
        raise RpcFail("USER_NOT_PARTICIPANT")
    return types.channels.ChannelParticipant(
        participant=_member_tl(ch, p, me.id), chats=[], users=ctx.world.render_users([uid], me.id)
    )


@handler(functions.channels.GetFullChannelRequest)
def get_full_channel(ctx: Ctx, req):
    me, ch, part = ctx.readable_channel(req.channel)
    admins = sum(1 for p in ch.participants.values() if p.role in ("creator", "admin"))
    full = types.ChannelFull(
        id=ch.id,
        about=ch.about,
        read_inbox_max_id=part.read_inbox_max_id if part else 0,
        read_outbox_max_id=part.read_outbox_max_id if part else 0,
        unread_count=ctx.world.unread_in(me, ("channel", ch.id)),
        chat_photo=types.PhotoEmpty(id=0),
        notify_settings=render.notify_settings(),
        bot_info=[],
        pts=ch.pts,
        participants_count=len(ch.participants),
        admins_count=admins,
        can_view_participants=ch.megagroup or (part is not None and part.role != "member"),
        slowmode_seconds=ch.slowmode_seconds or None,
    )
    return types.messages.ChatFull(full_chat=full, chats=[render.channel(ch, me.id)], users=[])


@handler(functions.channels.GetChannelsRequest)
def get_channels(ctx: Ctx, req):
    me = ctx.me()
    out = []
    for inp in req.id:
        try:
            ch = ctx.channel_from(inp)
        except RpcFail:
            continue
        out.append(render.channel(ch, me.id))
    return types.messages.Chats(chats=out)


@handler(functions.channels.ReadHistoryRequest)
def read_channel_history(ctx: Ctx, req) -> bool:
    _me, ch, part = ctx.joined_channel(req.channel)
    top = ch.order[-1] if ch.order else 0
    part.read_inbox_max_id = max(part.read_inbox_max_id, min(req.max_id or top, top))
    return True


@handler(functions.channels.GetMessagesRequest)
def get_channel_messages(ctx: Ctx, req):
    me, ch, _part = ctx.readable_channel(req.channel)
    msgs, users = [], {me.id}
    for inp in req.id:
        mid = getattr(inp, "id", None)
        if isinstance(mid, int) and mid in ch.messages:
            msgs.append(render.channel_message(ch, ch.messages[mid], me.id))
            users.add(ch.messages[mid].from_id)
    return types.messages.ChannelMessages(
        pts=ch.pts,
        count=len(msgs),
        messages=msgs,
        topics=[],
        chats=[render.channel(ch, me.id)],
        users=ctx.world.render_users(users, me.id),
    )


def _require_admin(ch: Channel, me: User) -> None:
    part = ch.participants.get(me.id)
    if part is None or part.role not in ("creator", "admin"):
        raise RpcFail("CHAT_ADMIN_REQUIRED")


@handler(functions.channels.ToggleSlowModeRequest, write=True)
def toggle_slow_mode(ctx: Ctx, req):
    me = ctx.me()
    ch = ctx.channel_from(req.channel)
    _require_admin(ch, me)
    if req.seconds not in (0, 10, 30, 60, 300, 900, 3600):
        raise RpcFail("SECONDS_INVALID")
    ch.slowmode_seconds = req.seconds
    return _channel_updates(ctx, me, ch, None)


@handler(functions.channels.UpdateUsernameRequest, write=True)
def update_channel_username(ctx: Ctx, req) -> bool:
    me = ctx.me()
    ch = ctx.channel_from(req.channel)
    _require_admin(ch, me)
    ctx.world.set_channel_username(ch, req.username or None)
    return True


@handler(functions.channels.CheckUsernameRequest)
def check_channel_username(ctx: Ctx, req) -> bool:
    ctx.me()
    try:
        ctx.world.check_name("check", 0, req.username)
    except RpcFail as e:
        if e.message == "USERNAME_OCCUPIED":
            return False
        raise
    return True
