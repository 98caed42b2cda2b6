"""messages.*: sending, history, dialogs, basic groups, invites."""

from __future__ import annotations

from collections.abc import Callable

from telethon.tl import functions, types

from ..errors import RpcFail
from ..world import render
from ..world.model import Channel, ChannelParticipant, Chat, DialogState, Peer, User
from . import Ctx, handler


def page_ids(
    ids_asc: list[int],
    date_of: Callable[[int], int],
    *,
    offset_id: int,
    offset_date,
    add_offset: int,
    limit: int,
    max_id: int,
    min_id: int,
) -> list[int]:
    """Telegram's history paging: newest first, starting below offset_id/offset_date."""
    desc = ids_asc[::-1]
    start = 0
    if offset_id:
        while start < len(desc) and desc[start] >= offset_id:
            start += 1
    elif offset_date and int(offset_date.timestamp()) > 0:
        stamp = int(offset_date.timestamp())
        while start < len(desc) and date_of(desc[start]) >= stamp:
            start += 1
    start += add_offset
    if start < 0:
        limit += start
        start = 0
    if limit <= 0:
        return []
    page = desc[start : start + limit]
    if max_id:
        page = [i for i in page if i < max_id]
    if min_id:
        page = [i for i in page if i > min_id]
    return page


@handler(functions.messages.SendMessageRequest, write=True)
def send_message(ctx: Ctx, req):
    me = ctx.me()
    world = ctx.world
    peer = ctx.peer_from(req.peer)
    reply_to = getattr(req.reply_to, "reply_to_msg_id", None) if req.reply_to else None
    res = world.send_message(
        me,
        peer,
        req.message or "",
        random_id=req.random_id,
        entities=req.entities or None,
        reply_to=reply_to,
        origin_key=ctx.key_id,
        reply_markup=req.reply_markup,
    )
    if res.kind == "private":
        return types.UpdateShortSentMessage(
            id=res.msg_id, pts=res.pts, pts_count=1, date=render.ts(res.date), out=True
        )
    users = (me.id,)
    return ctx.updates(
        [types.UpdateMessageID(id=res.msg_id, random_id=req.random_id), res.update], users, (peer[1],)
    )


@handler(functions.messages.SetTypingRequest)
def set_typing(ctx: Ctx, req) -> bool:
    ctx.me()
    ctx.peer_from(req.peer)
    return True


def _history_of(ctx: Ctx, me: User, peer: Peer):
    world = ctx.world
    if peer[0] == "channel":
        ch = world.channels[peer[1]]
        if me.id not in ch.participants and not ch.username:
            raise RpcFail("CHANNEL_PRIVATE")
        return (
            ch.order,
            (lambda i: ch.messages[i].date),
            (lambda i: render.channel_message(ch, ch.messages[i], me.id)),
        )
    ids = me.history.get(peer, [])
    return ids, (lambda i: me.messages[i].date), (lambda i: render.box_message(me.messages[i], me.id))


def _messages_answer(ctx: Ctx, me: User, peer: Peer, msgs: list, total: int, full: bool):
    world = ctx.world
    users, chats = {me.id}, set()
    for m in msgs:
        if isinstance(getattr(m, "from_id", None), types.PeerUser):
            users.add(m.from_id.user_id)
        if isinstance(m.peer_id, types.PeerUser):
            users.add(m.peer_id.user_id)
        action = getattr(m, "action", None)
        for uid in getattr(action, "users", None) or ():
            users.add(uid)
        if getattr(action, "user_id", None):
            users.add(action.user_id)
    if peer[0] != "user":
        chats.add(peer[1])
    rusers = world.render_users(users, me.id)
    rchats = world.render_chats(chats, me.id)
    if peer[0] == "channel":
        ch = world.channels[peer[1]]
        return types.messages.ChannelMessages(
            pts=ch.pts, count=total, messages=msgs, topics=[], chats=rchats, users=rusers
        )
    if full:
        return types.messages.Messages(messages=msgs, topics=[], chats=rchats, users=rusers)
    return types.messages.MessagesSlice(count=total, messages=msgs, topics=[], chats=rchats, users=rusers)


#: The paging fields of messages.getHistory that `page_ids` takes as they come.
_PAGING = ("offset_id", "offset_date", "add_offset", "max_id", "min_id")


@handler(functions.messages.GetHistoryRequest)
def get_history(ctx: Ctx, req):
    me = ctx.me()
    peer = ctx.peer_from(req.peer)
    ids, date_of, render_one = _history_of(ctx, me, peer)
    limit = max(0, min(req.limit, ctx.world.limits.history_page_max))
    page = page_ids(ids, date_of, limit=limit, **{name: getattr(req, name) for name in _PAGING})
    msgs = [render_one(i) for i in page]
    return _messages_answer(ctx, me, peer, msgs, len(ids), full=len(page) == len(ids))


@handler(functions.messages.GetMessagesRequest)
def get_messages(ctx: Ctx, req):
    me = ctx.me()
    msgs = []
    for inp in req.id:
        mid = getattr(inp, "id", None)
        if isinstance(mid, int) and mid in me.messages:
            msgs.append(render.box_message(me.messages[mid], me.id))
    return _messages_answer(ctx, me, ("user", me.id), msgs, len(msgs), full=True)


def _dialog_entries(ctx: Ctx, me: User) -> list[tuple[int, int, Peer]]:
    """(top date, top id, peer) of every dialog, newest first."""
    world = ctx.world
    out = []
    for peer, ids in me.history.items():
        if ids:
            top = me.messages[ids[-1]]
            out.append((top.date, top.id, peer))
    for cid in me.channels:
        ch = world.channels.get(cid)
        if ch and ch.order:
            top_id = ch.order[-1]
            out.append((ch.messages[top_id].date, top_id, ("channel", cid)))
    out.sort(key=lambda e: (e[0], e[1], e[2][1]), reverse=True)
    return out


def _dialog(ctx: Ctx, me: User, peer: Peer, top_id: int):
    """A dialog and its top message; a channel keeps its read marks per participant and has a pts."""
    world = ctx.world
    pts = None
    read: ChannelParticipant | DialogState | None
    if peer[0] == "channel":
        ch = world.channels[peer[1]]
        read = ch.participants.get(me.id)
        pts = ch.pts
        top = render.channel_message(ch, ch.messages[top_id], me.id)
    else:
        read = me.dialogs.get(peer)
        top = render.box_message(me.messages[top_id], me.id)
    dialog = types.Dialog(
        peer=render.peer_tl(peer),
        top_message=top_id,
        read_inbox_max_id=read.read_inbox_max_id if read else 0,
        read_outbox_max_id=read.read_outbox_max_id if read else 0,
        unread_count=world.unread_in(me, peer),
        unread_mentions_count=0,
        unread_reactions_count=0,
        unread_poll_votes_count=0,
        notify_settings=render.notify_settings(),
        pts=pts,
    )
    return dialog, top


def _dialogs_answer(ctx: Ctx, me: User, entries, total: int | None):
    dialogs, msgs, users, chats = [], [], {me.id}, set()
    for _date, top_id, peer in entries:
        d, m = _dialog(ctx, me, peer, top_id)
        dialogs.append(d)
        msgs.append(m)
        if peer[0] == "user":
            users.add(peer[1])
        else:
            chats.add(peer[1])
        if isinstance(getattr(m, "from_id", None), types.PeerUser):
            users.add(m.from_id.user_id)
    kwargs = dict(
        dialogs=dialogs,
        messages=msgs,
        chats=ctx.world.render_chats(chats, me.id),
        users=ctx.world.render_users(users, me.id),
    )
    if total is None:
        return types.messages.Dialogs(**kwargs)
    return types.messages.DialogsSlice(count=total, **kwargs)


@handler(functions.messages.GetDialogsRequest)
def get_dialogs(ctx: Ctx, req):
    me = ctx.me()
    entries = _dialog_entries(ctx, me)
    start = 0
    offset_peer = None
    if not isinstance(req.offset_peer, types.InputPeerEmpty | type(None)):
        try:
            offset_peer = ctx.peer_from(req.offset_peer)
        except RpcFail:
            offset_peer = None
    if offset_peer is not None and any(e[2] == offset_peer for e in entries):
        start = next(i for i, e in enumerate(entries) if e[2] == offset_peer) + 1
    elif (req.offset_date and int(req.offset_date.timestamp()) > 0) or req.offset_id:
        stamp = int(req.offset_date.timestamp()) if req.offset_date else None
        stamp = stamp or None
        while start < len(entries):
            d, mid, _ = entries[start]
            if (stamp is None or d < stamp) or (d == stamp and mid < req.offset_id):
                break
            start += 1
    limit = max(1, min(req.limit or 100, ctx.world.limits.history_page_max))
    page = entries[start : start + limit]
    total = None if start == 0 and len(page) == len(entries) else len(entries)
    return _dialogs_answer(ctx, me, page, total)


@handler(functions.messages.GetPeerDialogsRequest)
def get_peer_dialogs(ctx: Ctx, req):
    me = ctx.me()
    wanted = {ctx.peer_from(p.peer) for p in req.peers if isinstance(p, types.InputDialogPeer)}
    entries = [e for e in _dialog_entries(ctx, me) if e[2] in wanted]
    ans = _dialogs_answer(ctx, me, entries, None)
    return types.messages.PeerDialogs(
        dialogs=ans.dialogs,
        messages=ans.messages,
        chats=ans.chats,
        users=ans.users,
        state=ctx.world.state(me),
    )


@handler(functions.messages.ReadHistoryRequest)
def read_history(ctx: Ctx, req):
    me = ctx.me()
    peer = ctx.peer_from(req.peer)
    if peer[0] == "channel":
        raise RpcFail("PEER_ID_INVALID")
    pts, count = ctx.world.read_history(me, peer, req.max_id)
    return types.messages.AffectedMessages(pts=pts, pts_count=count)


# ------------------------------------------------------------------ basic groups


def _invited(ctx: Ctx, me: User, res, chat_id: int, restricted: list[User]):
    updates = ctx.updates([res.update], (me.id, *ctx.world.chats[chat_id].members), (chat_id,))
    return types.messages.InvitedUsers(
        updates=updates,
        missing_invitees=[types.MissingInvitee(user_id=u.id) for u in restricted],
    )


@handler(functions.messages.CreateChatRequest, write=True)
def create_chat(ctx: Ctx, req):
    me = ctx.me()
    members = [ctx.user_from(u) for u in req.users]
    c, restricted, res = ctx.world.create_chat(me, req.title or "", members, origin_key=ctx.key_id)
    return _invited(ctx, me, res, c.id, restricted)


@handler(functions.messages.AddChatUserRequest, write=True)
def add_chat_user(ctx: Ctx, req):
    me = ctx.me()
    c = ctx.chat_from(req.chat_id)
    if me.id not in c.members:
        raise RpcFail("CHAT_ADMIN_REQUIRED")
    target = ctx.user_from(req.user_id)
    res = ctx.world.add_chat_user(me, c, target, origin_key=ctx.key_id)
    return _invited(ctx, me, res, c.id, [])


@handler(functions.messages.DeleteChatUserRequest)
def delete_chat_user(ctx: Ctx, req):
    me = ctx.me()
    c = ctx.chat_from(req.chat_id)
    target = ctx.user_from(req.user_id)
    res = ctx.world.delete_chat_user(me, c, target, origin_key=ctx.key_id)
    return ctx.updates([res.update], (me.id, target.id), (c.id,))


@handler(functions.messages.GetFullChatRequest)
def get_full_chat(ctx: Ctx, req):
    me = ctx.me()
    c = ctx.chat_from(req.chat_id)
    parts = [
        types.ChatParticipantCreator(user_id=uid)
        if uid == c.creator_id
        else types.ChatParticipant(user_id=uid, inviter_id=inv, date=render.ts(c.date))
        for uid, inv in c.members.items()
    ]
    full = types.ChatFull(
        id=c.id,
        about=c.about,
        participants=types.ChatParticipants(chat_id=c.id, participants=parts, version=c.version),
        notify_settings=render.notify_settings(),
    )
    return types.messages.ChatFull(
        full_chat=full,
        chats=[render.chat(c, me.id)],
        users=ctx.world.render_users(c.members, me.id),
    )


@handler(functions.messages.GetChatsRequest)
def get_chats(ctx: Ctx, req):
    me = ctx.me()
    return types.messages.Chats(
        chats=ctx.world.render_chats([i for i in req.id if i in ctx.world.chats], me.id)
    )


# ------------------------------------------------------------------ invites


def _invite_target(ctx: Ctx, code: str) -> Chat | Channel:
    return ctx.world.invite_target(code)


@handler(functions.messages.ExportChatInviteRequest, write=True)
def export_chat_invite(ctx: Ctx, req):
    me = ctx.me()
    peer = ctx.peer_from(req.peer)
    if peer[0] == "user":
        raise RpcFail("PEER_ID_INVALID")
    target = ctx.world.chats[peer[1]] if peer[0] == "chat" else ctx.world.channels[peer[1]]
    if peer[0] == "chat":
        allowed = me.id == target.creator_id or me.id in target.admins
    else:
        part = target.participants.get(me.id)
        allowed = part is not None and part.role in ("creator", "admin")
    if not allowed:
        raise RpcFail("CHAT_ADMIN_REQUIRED")
    code = ctx.world.export_invite(target)
    return types.ChatInviteExported(
        link=f"https://t.me/+{code}", admin_id=me.id, date=render.ts(ctx.world.now()), permanent=True
    )


@handler(functions.messages.CheckChatInviteRequest)
def check_chat_invite(ctx: Ctx, req):
    me = ctx.me()
    target = _invite_target(ctx, req.hash)
    if isinstance(target, Channel):
        if me.id in target.participants:
            return types.ChatInviteAlready(chat=render.channel(target, me.id))
        return types.ChatInvite(
            title=target.title,
            photo=types.PhotoEmpty(id=0),
            participants_count=len(target.participants),
            color=0,
            channel=True,
            broadcast=target.broadcast or None,
            megagroup=target.megagroup or None,
            public=bool(target.username) or None,
            about=target.about or None,
        )
    if me.id in target.members:
        return types.ChatInviteAlready(chat=render.chat(target, me.id))
    return types.ChatInvite(
        title=target.title, photo=types.PhotoEmpty(id=0), participants_count=len(target.members), color=0
    )


@handler(functions.messages.ImportChatInviteRequest, write=True)
def import_chat_invite(ctx: Ctx, req):
    me = ctx.me()
    world = ctx.world
    target = _invite_target(ctx, req.hash)
    if isinstance(target, Channel):
        m = world.join_channel(me, target, via_invite=True, origin_key=ctx.key_id)
        upd = types.UpdateNewChannelMessage(
            message=render.channel_message(target, m, me.id), pts=target.pts, pts_count=1
        )
        return ctx.updates([types.UpdateChannel(channel_id=target.id), upd], (me.id,), (target.id,))
    res = world.add_chat_user(me, target, me, via_link=True, origin_key=ctx.key_id)
    return ctx.updates([res.update], tuple(target.members), (target.id,))
