"""contacts.*: usernames, search, the contact list."""

from __future__ import annotations

from telethon.tl import functions, types

from ..errors import RpcFail
from ..world import render
from ..world.world import USERNAME_RE, normalize_phone
from . import Ctx, handler


@handler(functions.contacts.ResolveUsernameRequest)
def resolve_username(ctx: Ctx, req) -> types.contacts.ResolvedPeer:
    me = ctx.me()
    name = (req.username or "").lstrip("@")
    if not USERNAME_RE.match(name):
        raise RpcFail("USERNAME_INVALID")
    hit = ctx.world.resolve_username(name)
    if hit is None:
        raise RpcFail("USERNAME_NOT_OCCUPIED")
    kind, ident = hit
    if kind == "user":
        return types.contacts.ResolvedPeer(
            peer=types.PeerUser(ident), chats=[], users=ctx.world.render_users([ident], me.id)
        )
    return types.contacts.ResolvedPeer(
        peer=types.PeerChannel(ident), chats=ctx.world.render_chats([ident], me.id), users=[]
    )


@handler(functions.contacts.SearchRequest)
def search(ctx: Ctx, req) -> types.contacts.Found:
    me = ctx.me()
    world = ctx.world
    q = (req.q or "").strip().lstrip("@").lower()
    if len(q) < 1:
        raise RpcFail("QUERY_TOO_SHORT")
    limit = max(1, min(req.limit or 50, 100))
    mine, others, users, chats = [], [], [], []
    for u in world.users.values():
        if u.id == me.id or u.deleted or u.id == world.service_user.id:
            continue
        name = f"{u.first_name} {u.last_name}".lower()
        in_contacts = u.id in me.contacts
        by_name = in_contacts and q in name
        by_username = bool(u.username) and u.username.lower().startswith(q)
        if by_name or by_username:
            (mine if in_contacts else others).append(types.PeerUser(u.id))
            users.append(u.id)
    for ch in world.channels.values():
        visible = ch.username or me.id in ch.participants
        if visible and (q in ch.title.lower() or (ch.username and ch.username.lower().startswith(q))):
            (mine if me.id in ch.participants else others).append(types.PeerChannel(ch.id))
            chats.append(ch.id)
    mine, others = mine[:limit], others[:limit]
    return types.contacts.Found(
        my_results=mine,
        results=others,
        chats=world.render_chats(chats, me.id),
        users=world.render_users(users, me.id),
    )


@handler(functions.contacts.GetContactsRequest)
def get_contacts(ctx: Ctx, req) -> types.contacts.Contacts:
    me = ctx.me()
    world = ctx.world
    ids = sorted(c for c in me.contacts if c in world.users)
    return types.contacts.Contacts(
        contacts=[types.Contact(user_id=i, mutual=me.id in world.users[i].contacts) for i in ids],
        saved_count=len(ids),
        users=world.render_users(ids, me.id),
    )


@handler(functions.contacts.ImportContactsRequest, write=True)
def import_contacts(ctx: Ctx, req) -> types.contacts.ImportedContacts:
    me = ctx.me()
    world = ctx.world
    imported, ids = [], []
    for c in req.contacts:
        try:
            u = world.user_by_phone(normalize_phone(c.phone))
        except RpcFail:
            continue
        if u is None or u.id == me.id:
            continue
        me.contacts.add(u.id)
        imported.append(types.ImportedContact(user_id=u.id, client_id=c.client_id))
        ids.append(u.id)
    return types.contacts.ImportedContacts(
        imported=imported, popular_invites=[], retry_contacts=[], users=world.render_users(ids, me.id)
    )


@handler(functions.contacts.AddContactRequest, write=True)
def add_contact(ctx: Ctx, req) -> types.Updates:
    me = ctx.me()
    u = ctx.user_from(req.id)
    me.contacts.add(u.id)
    return ctx.updates([], (u.id,))


@handler(functions.contacts.DeleteContactsRequest)
def delete_contacts(ctx: Ctx, req) -> types.Updates:
    me = ctx.me()
    ids = []
    for inp in req.id:
        u = ctx.user_from(inp)
        me.contacts.discard(u.id)
        ids.append(u.id)
    return ctx.updates([], ids)


@handler(functions.contacts.GetStatusesRequest)
def get_statuses(ctx: Ctx, req) -> list:
    me = ctx.me()
    return [types.ContactStatus(user_id=i, status=types.UserStatusRecently()) for i in sorted(me.contacts)]


@handler(functions.contacts.BlockRequest, functions.contacts.UnblockRequest)
def block(ctx: Ctx, req) -> bool:
    ctx.me()
    render.peer_tl(ctx.peer_from(req.id))
    return True
