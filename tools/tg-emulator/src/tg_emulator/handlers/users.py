"""users.*"""

from __future__ import annotations

from telethon.tl import functions, types

from ..errors import RpcFail
from ..world import render
from . import Ctx, handler


@handler(functions.users.GetUsersRequest)
def get_users(ctx: Ctx, req) -> list:
    me = ctx.me()
    out = []
    for inp in req.id:
        try:
            u = ctx.user_from(inp)
        except RpcFail:
            continue
        out.append(render.user(u, me.id, ctx.world))
    return out


@handler(functions.users.GetFullUserRequest)
def get_full_user(ctx: Ctx, req) -> types.users.UserFull:
    me = ctx.me()
    u = ctx.user_from(req.id)
    world = ctx.world
    common = sum(1 for ch in world.channels.values() if me.id in ch.participants and u.id in ch.participants)
    common += sum(1 for c in world.chats.values() if me.id in c.members and u.id in c.members)
    full = types.UserFull(
        id=u.id,
        settings=types.PeerSettings(),
        notify_settings=render.notify_settings(),
        common_chats_count=common,
        about=u.about or None,
        phone_calls_available=False,
    )
    return types.users.UserFull(full_user=full, chats=[], users=[render.user(u, me.id, world)])
