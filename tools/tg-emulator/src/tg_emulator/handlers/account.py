"""account.*: password info, profile, username, sessions."""

from __future__ import annotations

from telethon.tl import functions, types

from .. import srp
from ..errors import RpcFail
from ..world.render import ts
from ..world.render import user as render_user
from . import Ctx, handler


@handler(functions.account.GetPasswordRequest, auth=False)
def get_password(ctx: Ctx, req) -> types.account.Password:
    rec = ctx.key
    if rec is None:
        raise RpcFail("AUTH_KEY_UNREGISTERED")
    uid = rec.pending_password_user or rec.user_id
    if uid is None:
        raise RpcFail("AUTH_KEY_UNREGISTERED")
    return srp.password_info(ctx.world.users.get(uid), rec)


@handler(functions.account.UpdateProfileRequest, write=True)
def update_profile(ctx: Ctx, req) -> types.User:
    me = ctx.me()
    if req.first_name is not None:
        if not req.first_name.strip() or len(req.first_name) > 64:
            raise RpcFail("FIRSTNAME_INVALID")
        me.first_name = req.first_name.strip()
    if req.last_name is not None:
        me.last_name = req.last_name.strip()[:64]
    if req.about is not None:
        if len(req.about) > 70:
            raise RpcFail("ABOUT_TOO_LONG")
        me.about = req.about
    _announce_name(ctx)
    return render_user(me, me.id, ctx.world)


def _announce_name(ctx: Ctx) -> None:
    me = ctx.me()
    usernames = [types.Username(username=me.username, active=True)] if me.username else []
    upd = types.UpdateUserName(
        user_id=me.id, first_name=me.first_name, last_name=me.last_name, usernames=usernames
    )
    world = ctx.world
    for uid in {me.id, *me.contacts}:
        world.hub.push_user(uid, lambda uid=uid: world.updates_envelope(uid, [upd], (me.id,)), ctx.key_id)


@handler(functions.account.UpdateUsernameRequest, write=True)
def update_username(ctx: Ctx, req) -> types.User:
    me = ctx.me()
    ctx.world.set_username(me, req.username or None)
    _announce_name(ctx)
    return render_user(me, me.id, ctx.world)


@handler(functions.account.CheckUsernameRequest)
def check_username(ctx: Ctx, req) -> bool:
    me = ctx.me()
    try:
        ctx.world.check_name("check", 0, req.username)
    except RpcFail as e:
        if e.message == "USERNAME_OCCUPIED":
            hit = ctx.world.resolve_username(req.username)
            return hit == ("user", me.id)
        raise
    return True


@handler(functions.account.UpdateStatusRequest)
def update_status(ctx: Ctx, req) -> bool:
    ctx.me()
    return True


@handler(functions.account.GetAuthorizationsRequest)
def get_authorizations(ctx: Ctx, req) -> types.account.Authorizations:
    me = ctx.me()
    out = []
    for rec in ctx.world.sessions_of(me):
        a = rec.authorization
        if a is None:
            continue
        out.append(
            types.Authorization(
                hash=0 if rec is ctx.key else a.hash,
                device_model=a.device_model or "Unknown",
                platform="",
                system_version=a.system_version,
                api_id=a.api_id,
                app_name="",
                app_version=a.app_version,
                date_created=ts(a.created),
                date_active=ts(a.active),
                ip=a.ip,
                country="",
                region="",
                current=rec is ctx.key,
            )
        )
    return types.account.Authorizations(authorization_ttl_days=180, authorizations=out)


@handler(functions.account.ResetAuthorizationRequest, write=True)
def reset_authorization(ctx: Ctx, req) -> bool:
    me = ctx.me()
    for rec in ctx.world.sessions_of(me):
        if rec.authorization and rec.authorization.hash == req.hash and rec is not ctx.key:
            ctx.world.revoke(key_id=rec.key.key_id, reason="terminated by the user")
            return True
    raise RpcFail("HASH_INVALID")
