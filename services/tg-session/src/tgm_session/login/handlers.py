"""The login commands: code login (code, resend, 2FA, logout) and QR login."""

from __future__ import annotations

from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.models.session import AccountView, LoginStep, QrLoginView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(accounts_cmd.LoginAccount)
    async def login_account(req: accounts_cmd.LoginAccountRequest, ctx: Ctx) -> LoginStep:
        return await ctx.app.login.login(req)

    @runtime.command(accounts_cmd.VerifyCode)
    async def verify_code(req: accounts_cmd.VerifyCodeRequest, ctx: Ctx) -> LoginStep:
        return await ctx.app.login.verify(req)

    @runtime.command(accounts_cmd.ResendCode)
    async def resend_code(req: accounts_cmd.ResendCodeRequest, ctx: Ctx) -> LoginStep:
        return await ctx.app.login.resend(req)

    @runtime.command(accounts_cmd.SubmitTwoFactorPassword)
    async def submit_two_factor_password(
        req: accounts_cmd.SubmitTwoFactorPasswordRequest, ctx: Ctx
    ) -> LoginStep:
        return await ctx.app.login.submit_password(req)

    @runtime.command(accounts_cmd.LogoutAccount)
    async def logout_account(req: accounts_cmd.LogoutAccountRequest, ctx: Ctx) -> AccountView:
        return await ctx.app.login.logout(req)

    @runtime.command(accounts_cmd.QrLoginCreate)
    async def qr_login_create(req: accounts_cmd.QrLoginCreateRequest, ctx: Ctx) -> QrLoginView:
        return await ctx.app.qr.create(req)

    @runtime.command(accounts_cmd.QrLoginStatus)
    async def qr_login_status(req: accounts_cmd.QrLoginStatusRequest, ctx: Ctx) -> QrLoginView:
        return await ctx.app.qr.status(req)

    @runtime.command(accounts_cmd.QrLoginRefresh)
    async def qr_login_refresh(req: accounts_cmd.QrLoginRefreshRequest, ctx: Ctx) -> QrLoginView:
        return await ctx.app.qr.refresh(req)

    @runtime.command(accounts_cmd.QrLoginSubmit2fa)
    async def qr_login_submit2fa(req: accounts_cmd.QrLoginSubmit2faRequest, ctx: Ctx) -> QrLoginView:
        return await ctx.app.qr.submit_2fa(req)

    @runtime.command(accounts_cmd.QrLoginCancel)
    async def qr_login_cancel(req: accounts_cmd.QrSessionRequest, ctx: Ctx) -> QrLoginView:
        return await ctx.app.qr.cancel(req)
