"""The login commands: code login (code, resend, 2FA, logout) and QR login."""

from __future__ import annotations

from tgm_contracts.commands import accounts as accounts_cmd

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route(accounts_cmd.LoginAccount, lambda app: app.login.login)
    runtime.route(accounts_cmd.VerifyCode, lambda app: app.login.verify)
    runtime.route(accounts_cmd.ResendCode, lambda app: app.login.resend)
    runtime.route(accounts_cmd.SubmitTwoFactorPassword, lambda app: app.login.submit_password)
    runtime.route(accounts_cmd.LogoutAccount, lambda app: app.login.logout)
    runtime.route(accounts_cmd.QrLoginCreate, lambda app: app.qr.create)
    runtime.route(accounts_cmd.QrLoginStatus, lambda app: app.qr.status)
    runtime.route(accounts_cmd.QrLoginRefresh, lambda app: app.qr.refresh)
    runtime.route(accounts_cmd.QrLoginSubmit2fa, lambda app: app.qr.submit_2fa)
    runtime.route(accounts_cmd.QrLoginCancel, lambda app: app.qr.cancel)
