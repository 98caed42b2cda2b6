"""updates.*: state and differences, consistent with the pts of pushed updates."""

from __future__ import annotations

from telethon.tl import functions

from . import Ctx, handler


@handler(functions.updates.GetStateRequest)
def get_state(ctx: Ctx, req):
    return ctx.world.state(ctx.me())


@handler(functions.updates.GetDifferenceRequest)
def get_difference(ctx: Ctx, req):
    limit = req.pts_total_limit or req.pts_limit or 1000
    date = int(req.date.timestamp()) if req.date else None
    return ctx.world.difference(ctx.me(), req.pts, max(1, min(limit, 1000)), date)


@handler(functions.updates.GetChannelDifferenceRequest)
def get_channel_difference(ctx: Ctx, req):
    me, ch, _part = ctx.readable_channel(req.channel)
    return ctx.world.channel_difference(ch, me, req.pts, max(1, min(req.limit or 100, 1000)))
