"""Bots: login by token, and the two sides of an inline-button press (world/bots.py)."""

from __future__ import annotations

from telethon.tl import functions, types

from ..errors import RpcFail
from . import Ctx, handler
from .auth import authorize, check_app


@handler(functions.auth.ImportBotAuthorizationRequest, auth=False)
def import_bot_authorization(ctx: Ctx, req) -> types.auth.Authorization:
    check_app(ctx, req.api_id, req.api_hash)
    return authorize(ctx, ctx.world.bots.login(req.bot_auth_token))


@handler(functions.messages.GetBotCallbackAnswerRequest)
async def get_bot_callback_answer(ctx: Ctx, req) -> types.messages.BotCallbackAnswer:
    """A person's client presses an inline button and waits (bounded) for the bot's answer."""
    me = ctx.me()
    if me.bot:
        raise RpcFail("BOT_METHOD_INVALID")
    peer = ctx.peer_from(req.peer)
    if peer[0] != "user":
        raise RpcFail("PEER_ID_INVALID")
    bot = ctx.world.users[peer[1]]
    q = ctx.world.bots.press(me, bot, req.msg_id, req.data or b"")
    answer = await ctx.world.bots.wait_answer(q)
    return types.messages.BotCallbackAnswer(
        cache_time=answer["cache_time"],
        alert=answer["alert"] or None,
        has_url=bool(answer["url"]) or None,
        message=answer["message"],
        url=answer["url"],
    )


@handler(functions.messages.SetBotCallbackAnswerRequest)
def set_bot_callback_answer(ctx: Ctx, req) -> bool:
    me = ctx.me()
    if not me.bot:
        raise RpcFail("USER_BOT_REQUIRED")
    ctx.world.bots.answer(
        me, req.query_id, message=req.message, alert=bool(req.alert), url=req.url, cache_time=req.cache_time
    )
    return True
