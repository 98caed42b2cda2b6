"""auth.*: code login, sign-up, 2FA, QR login, logout."""

from __future__ import annotations

from telethon.tl import functions, types

from .. import srp
from ..errors import RpcFail
from ..world.model import AuthKeyRecord, User
from ..world.render import ts
from ..world.render import user as render_user
from ..world.world import normalize_phone
from . import Ctx, handler


def _key(ctx: Ctx) -> AuthKeyRecord:
    if ctx.key is None:
        raise RpcFail("AUTH_KEY_UNREGISTERED")
    return ctx.key


def check_app(ctx: Ctx, api_id: int, api_hash: str) -> None:
    apps = ctx.world.apps
    if apps and apps.get(api_id) != api_hash:
        raise RpcFail("API_ID_INVALID")


def authorize(ctx: Ctx, u: User) -> types.auth.Authorization:
    """Bind the key to ``u`` (or demand the 2FA password first)."""
    rec = _key(ctx)
    if u.banned:
        raise RpcFail("USER_DEACTIVATED_BAN")
    ctx.world.bind_key(rec, u, init=ctx.conn.init)
    ctx.conn.server.track_user(ctx.conn)
    return types.auth.Authorization(user=render_user(u, u.id, ctx.world))


def _code_step_done(ctx: Ctx, u: User) -> types.auth.Authorization:
    rec = _key(ctx)
    if u.password:
        rec.pending_password_user = u.id
        raise RpcFail("SESSION_PASSWORD_NEEDED")
    return authorize(ctx, u)


@handler(functions.auth.SendCodeRequest, auth=False)
def send_code(ctx: Ctx, req) -> types.auth.SentCode:
    world = ctx.world
    check_app(ctx, req.api_id, req.api_hash)
    phone = normalize_phone(req.phone_number)
    limit = world.limits.methods.get("auth.sendCode")
    world.rate.check(("sendCode", phone), limit, world.now())
    world.rate.hit(("sendCode", phone), limit, world.now())
    sent = world.send_code(phone)
    u = world.user_by_phone(phone)
    has_sessions = bool(u and world.sessions_of(u))
    code_type = (
        types.auth.SentCodeTypeApp(length=len(sent.code))
        if has_sessions
        else types.auth.SentCodeTypeSms(length=len(sent.code))
    )
    return types.auth.SentCode(
        type=code_type,
        phone_code_hash=sent.hash,
        next_type=types.auth.CodeTypeSms(),
        timeout=int(world.limits.code_ttl),
    )


@handler(functions.auth.ResendCodeRequest, auth=False)
def resend_code(ctx: Ctx, req) -> types.auth.SentCode:
    sent = ctx.world.resend_code(req.phone_number, req.phone_code_hash)
    return types.auth.SentCode(
        type=types.auth.SentCodeTypeSms(length=len(sent.code)),
        phone_code_hash=sent.hash,
        timeout=int(ctx.world.limits.code_ttl),
    )


@handler(functions.auth.CancelCodeRequest, auth=False)
def cancel_code(ctx: Ctx, req) -> bool:
    ctx.world._sent(req.phone_number, req.phone_code_hash)
    ctx.world.consume_code(req.phone_number)
    return True


@handler(functions.auth.SignInRequest, auth=False)
def sign_in(ctx: Ctx, req):
    world = ctx.world
    phone = normalize_phone(req.phone_number)
    world.check_code(phone, req.phone_code_hash, req.phone_code or "")
    u = world.user_by_phone(phone)
    if u is None:
        # The code stays valid for auth.signUp, as on Telegram.
        return types.auth.AuthorizationSignUpRequired()
    if u.banned:
        raise RpcFail("PHONE_NUMBER_BANNED")
    world.consume_code(phone)
    return _code_step_done(ctx, u)


@handler(functions.auth.SignUpRequest, auth=False)
def sign_up(ctx: Ctx, req):
    world = ctx.world
    phone = normalize_phone(req.phone_number)
    sent = world._sent(phone, req.phone_code_hash)
    if world.now() > sent.expires:
        raise RpcFail("PHONE_CODE_EXPIRED")
    if world.user_by_phone(phone) is not None:
        raise RpcFail("PHONE_NUMBER_OCCUPIED")
    if not (req.first_name or "").strip() or len(req.first_name) > 64:
        raise RpcFail("FIRSTNAME_INVALID")
    u = world.add_user(phone, first_name=req.first_name.strip(), last_name=(req.last_name or "").strip())
    world.consume_code(phone)
    return authorize(ctx, u)


@handler(functions.auth.CheckPasswordRequest, auth=False)
def check_password(ctx: Ctx, req):
    rec = _key(ctx)
    uid = rec.pending_password_user or rec.user_id
    if uid is None or uid not in ctx.world.users:
        raise RpcFail("AUTH_KEY_UNREGISTERED")
    u = ctx.world.users[uid]
    srp.check(u, rec, req.password)
    return authorize(ctx, u)


@handler(functions.auth.LogOutRequest)
def log_out(ctx: Ctx, req):
    rec = _key(ctx)
    ctx.world.revoke(key_id=rec.key.key_id, reason="logged out")
    return types.auth.LoggedOut()


@handler(functions.auth.ResetAuthorizationsRequest, write=True)
def reset_authorizations(ctx: Ctx, req) -> bool:
    me = ctx.me()
    for rec in ctx.world.sessions_of(me):
        if rec is not ctx.key:
            ctx.world.revoke(key_id=rec.key.key_id, reason="terminated by the user")
    return True


def _login_token_step(ctx: Ctx, token: bytes | None):
    world = ctx.world
    rec = _key(ctx)
    if rec.user_id is not None and token is None:
        u = world.users[rec.user_id]
        return types.auth.LoginTokenSuccess(types.auth.Authorization(user=render_user(u, u.id, world)))
    lt = rec.login_token
    if lt is not None and lt[2] is not None and (token is None or token == lt[0]):
        u = world.users[lt[2]]
        rec.login_token = None
        if u.password:
            rec.pending_password_user = u.id
            raise RpcFail("SESSION_PASSWORD_NEEDED")
        return types.auth.LoginTokenSuccess(authorize(ctx, u))
    if token is not None:
        raise RpcFail("AUTH_TOKEN_INVALID")
    new_token, expires = world.create_login_token(rec)
    return types.auth.LoginToken(expires=ts(expires), token=new_token)


@handler(functions.auth.ExportLoginTokenRequest, auth=False)
def export_login_token(ctx: Ctx, req):
    check_app(ctx, req.api_id, req.api_hash)
    return _login_token_step(ctx, None)


@handler(functions.auth.ImportLoginTokenRequest, auth=False)
def import_login_token(ctx: Ctx, req):
    return _login_token_step(ctx, req.token)


@handler(functions.auth.AcceptLoginTokenRequest, write=True)
def accept_login_token(ctx: Ctx, req) -> types.Authorization:
    me = ctx.me()
    rec = ctx.world.accept_login_token(me, req.token)
    now = ts(ctx.world.now())
    return types.Authorization(
        hash=0,
        device_model="pending QR login",
        platform="",
        system_version="",
        api_id=0,
        app_name="",
        app_version="",
        date_created=now,
        date_active=now,
        ip=ctx.conn.ip,
        country="",
        region="",
        current=rec is ctx.key,
    )
