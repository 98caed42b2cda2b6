"""Code login (send code, verify, resend, 2FA password) and logout.

Between steps nothing lives in memory: the partially authorised session (the auth key that asked for
the code) and Telegram's `phone_code_hash` are stored encrypted, so any replica can take the next
step, and a restart in the middle of a login loses nothing Telegram still accepts. A step holds a
short lock on the login record, so two steps never use that session at once. The code and the 2FA
password are used once and never stored or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack, utcnow
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.events_session import AccountLoggedIn, LoginCodeSent, LoginFailed, LoginPasswordNeeded
from tgm_contracts.models.session import (
    AccountSelector,
    AccountState,
    AccountView,
    LoginStep,
    TelegramProfile,
)
from tgm_contracts.rpc_session import Logout
from tgm_runtime import Conflict, DomainError, NotFound
from tgm_runtime.routes import answers

from ..accounts.service import Accounts
from ..capabilities import Emit
from ..fleet.calls import account_call
from ..fleet.connections import ConnectionBuilder, ConnectionSpec
from ..fleet.health import Health
from ..fleet.pool import AccountPool, LiveAccount
from ..metrics import SessionMetrics
from ..ports import AccountClient, SentCode, TelegramConnector, TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos
from ..vault import Vault
from ..views import account_view

log = logging.getLogger("tgm.session.login")

LOCK_SECONDS = 90
#: How long a logout waits for a connecting account's client, and then for Telegram's answer: both
#: bounded so remove-account (which logs out first, best effort) answers within its 30 s (clean-clone
#: run, session 18: a removal right after the login waited for a connect slowed by an auth-key retry,
#: then for the logout, and answered after 30 s).
LOGOUT_WAIT = 10.0
#: Telegram answers these when a pending login cannot go on: it must start again.
RESTART = {"PHONE_CODE_EXPIRED", "PHONE_CODE_HASH_EMPTY", "PHONE_NUMBER_UNOCCUPIED", "PHONE_NUMBER_BANNED"}


#: Telegram's refusals of what the person typed, answered LOGIN_REJECTED (400) with these words
#: instead of TELEGRAM_ERROR (502): the person corrects the input; nothing failed on our side.
REJECTED = {
    "PHONE_CODE_INVALID": "the code is wrong; try again",
    "PHONE_CODE_EMPTY": "the code is empty; type the code Telegram sent",
    "PHONE_CODE_EXPIRED": "the code expired; call login-account for a new one",
    "PASSWORD_HASH_INVALID": "the 2FA password is wrong; try again",
    "PHONE_NUMBER_INVALID": "Telegram does not accept this phone number; check it (+ and country code)",
    "PHONE_NUMBER_UNOCCUPIED": "this phone has no Telegram account (sign-ups are not done by the product)",
}


def rejected(exc: TelegramFailure) -> DomainError | None:
    """The LOGIN_REJECTED answer to a refusal of the person's input, or None for any other refusal."""
    message = REJECTED.get(exc.name)
    if message is None:
        return None
    return DomainError(
        ErrorCode.LOGIN_REJECTED,
        message,
        {"telegramError": exc.full, "restart": exc.name in RESTART, "method": exc.method or None},
    )


def login_context(account_id: str) -> str:
    return f"login:{account_id}"


@dataclass(kw_only=True, eq=False)
class AccountLogin:
    """What the code login and the QR login (`qr.py`) share: a fresh client of their own for the
    login, and keeping the session Telegram authorised."""

    repos: Repos
    vault: Vault
    connector: TelegramConnector
    builder: ConnectionBuilder
    health: Health
    pool: AccountPool
    accounts: Accounts
    emit: Emit
    metrics: SessionMetrics

    async def _connected(self, spec: ConnectionSpec) -> AccountClient:
        client = self.connector.client(spec)
        await client.connect()
        return client

    async def _keep_session(self, doc: Doc, session: str, profile: TelegramProfile, two_factor: bool) -> Doc:
        """Keep the authorised session (encrypted) and make the account active."""
        if profile.phone and profile.phone != doc["phone"]:
            raise Conflict(f"Telegram logged in {profile.phone}, not the account's phone {doc['phone']}")
        merged = {**(doc.get("profile") or {}), **profile.model_dump(exclude={"bio"}, by_alias=False)}
        extra = {
            "session_enc": self.vault.seal(session, doc["_id"]),
            "profile": merged,
            "two_factor_enabled": two_factor,
            "last_login_at": utcnow(),
            "connected": False,
            "holder": None,
            "flood_waits": {},
        }
        updated = await self.health.transition(doc, AccountState.ACTIVE, "logged in", extra=extra)
        if updated is None:
            raise NotFound(f"account {doc['_id']} was removed during the login")
        return updated


@dataclass(kw_only=True, eq=False)
class CodeLogin(AccountLogin):
    # --- helpers -----------------------------------------------------------------------------------

    def _step(
        self, doc: Doc, pending: Doc | None, next_: str, *, account: AccountView | None = None
    ) -> LoginStep:
        p = pending or {}
        return LoginStep(
            account_id=doc["_id"],
            phone=doc["phone"],
            state=AccountState(doc["state"]),
            next=next_,
            phone_code_hash=p.get("phone_code_hash"),
            code_type=p.get("code_type"),
            next_code_type=p.get("next_type"),
            code_length=p.get("code_length"),
            resend_after_seconds=p.get("timeout"),
            password_hint=p.get("password_hint"),
            account=account,
            message={
                "code": "enter the code Telegram sent (verify-code)",
                "password": "the account has a 2FA password (submit-2fa-password)",
                "done": "logged in",
            }[next_],
        )

    async def _failed(self, doc: Doc, exc: TelegramFailure, *, recoverable: bool, message: str) -> None:
        self.metrics.logins.labels("code", "failed").inc()
        await self.emit(
            LoginFailed(
                account_id=doc["_id"],
                phone=doc["phone"],
                method="code",
                error=exc.full,
                message=message,
                retry_after=exc.seconds if exc.is_flood else None,
                recoverable=recoverable,
            )
        )

    async def _client(self, doc: Doc, session: str | None) -> AccountClient:
        spec = await self.builder.for_account(doc, fresh=True, receive_updates=False)
        if session is not None:
            spec = dataclasses.replace(spec, session=session)
        return await self._connected(spec)

    async def _locked(self, account_id: str) -> Doc:
        pending = await self.repos.code_logins.lock(account_id, LOCK_SECONDS)
        if pending is None:
            if await self.repos.code_logins.get(account_id) is None:
                raise Conflict("no code login is pending for this account: call login-account first")
            raise Conflict("another step of this login is running; try again in a moment")
        return pending

    @contextlib.asynccontextmanager
    async def _pending_step(
        self, doc: Doc, *, password: bool = False
    ) -> AsyncIterator[tuple[Doc, AccountClient]]:
        """One step of a pending code login, given its record and a client: under the login's lock,
        with the auth key that asked for the code connected again (any replica can take a step),
        Telegram's refusals answered as domain errors, the client disconnected and the lock let go
        however the step ends. `password`: the step is the 2FA password's, refused before connecting
        while the login still waits for the code."""
        pending = await self._locked(doc["_id"])
        client: AccountClient | None = None
        try:
            if password and pending["state"] != AccountState.PASSWORD_NEEDED.value:
                raise Conflict("this login is waiting for the code, not the 2FA password (verify-code)")
            client = await self._client(
                doc, self.vault.open(pending["session_enc"], login_context(doc["_id"]))
            )
            yield pending, client
        except TelegramFailure as exc:
            raise await self._refused(doc, exc) from None
        except TelegramUnreachable as exc:
            raise await self.health.failure(doc["_id"], exc) from None
        finally:
            if client is not None:
                await client.disconnect()
            await self.repos.code_logins.unlock(doc["_id"])

    def _needs_login(self, doc: Doc) -> bool:
        return not doc.get("session_enc") or AccountState(doc["state"]).needs_login

    # --- steps -------------------------------------------------------------------------------------

    @answers(accounts_cmd.LoginAccount)
    async def login(self, req: accounts_cmd.LoginAccountRequest) -> LoginStep:
        doc = await self.accounts.find(req)
        pending = await self.repos.code_logins.get(doc["_id"])
        if req.restart and pending is not None:
            await self.repos.code_logins.delete(doc["_id"])
            pending = None
        if req.phone_code is not None and pending is not None:
            return await self.verify(
                accounts_cmd.VerifyCodeRequest(
                    account_id=doc["_id"],
                    phone_code=req.phone_code,
                    phone_code_hash=req.phone_code_hash,
                    two_factor_password=req.two_factor_password,
                )
            )
        if pending is not None:
            return self._step(
                doc, pending, "password" if pending["state"] == AccountState.PASSWORD_NEEDED else "code"
            )
        if not self._needs_login(doc) and not req.restart:
            return self._step(doc, None, "done", account=await self.accounts.view(doc))
        step = await self._send_code(doc, req.force_sms)
        if req.phone_code is not None:
            return await self.verify(
                accounts_cmd.VerifyCodeRequest(
                    account_id=doc["_id"],
                    phone_code=req.phone_code,
                    phone_code_hash=req.phone_code_hash or step.phone_code_hash,
                    two_factor_password=req.two_factor_password,
                )
            )
        return step

    async def _send_code(self, doc: Doc, force_sms: bool) -> LoginStep:
        client = None
        try:
            client = await self._client(doc, None)
            sent = await client.send_code(doc["phone"], force_sms)
            session = client.session_string()
        except (TelegramFailure, TelegramUnreachable) as exc:
            if isinstance(exc, TelegramFailure):
                message = REJECTED.get(exc.name, "Telegram refused to send a code")
                await self._failed(doc, exc, recoverable=exc.name not in RESTART, message=message)
                if (refusal := rejected(exc)) is not None:
                    raise refusal from None
            raise await self.health.failure(doc["_id"], exc, method="auth.sendCode") from None
        finally:
            if client is not None:
                await client.disconnect()
        now = utcnow()
        pending = {
            "_id": doc["_id"],
            "phone": doc["phone"],
            "phone_code_hash": sent.phone_code_hash,
            "session_enc": self.vault.seal(session, login_context(doc["_id"])),
            "state": AccountState.CODE_SENT.value,
            "code_type": sent.code_type,
            "next_type": sent.next_type,
            "code_length": sent.length,
            "timeout": sent.timeout,
            "lock_until": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.repos.code_logins.replace(doc["_id"], pending)
        if self._needs_login(doc):
            doc = (
                await self.health.transition(doc, AccountState.CODE_SENT, f"code sent ({sent.code_type})")
                or doc
            )
        self.metrics.logins.labels("code", "code_sent").inc()
        await self._code_sent(doc, sent, resent=False)
        return self._step(doc, pending, "code")

    @answers(accounts_cmd.VerifyCode)
    async def verify(self, req: accounts_cmd.VerifyCodeRequest) -> LoginStep:
        doc = await self.accounts.find(req)
        async with self._pending_step(doc) as (pending, client):
            code_hash = req.phone_code_hash or pending["phone_code_hash"]
            try:
                profile = await client.sign_in(doc["phone"], req.phone_code.get_secret_value(), code_hash)
            except TelegramFailure as exc:
                if exc.name != "SESSION_PASSWORD_NEEDED":
                    raise
                if req.two_factor_password is None:
                    return await self._password_needed(doc, pending, client)
                profile = await client.check_password(req.two_factor_password.get_secret_value())
                return await self._finish(doc, client, profile, two_factor=True)
            return await self._finish(doc, client, profile, two_factor=False)

    async def _refused(self, doc: Doc, exc: TelegramFailure) -> DomainError:
        restart = exc.name in RESTART
        if restart:
            await self.repos.code_logins.delete(doc["_id"])
            if self._needs_login(doc):
                await self.health.transition(doc["_id"], AccountState.NEW, exc.name)
        await self._failed(
            doc,
            exc,
            recoverable=not restart,
            message=REJECTED.get(exc.name, "Telegram refused the login step"),
        )
        return rejected(exc) or await self.health.failure(doc["_id"], exc)

    async def _password_needed(self, doc: Doc, pending: Doc, client: AccountClient) -> LoginStep:
        hint = None
        try:
            hint = await client.password_hint()
        except TelegramFailure:
            pass
        fields = {
            "session_enc": self.vault.seal(client.session_string(), login_context(doc["_id"])),
            "state": AccountState.PASSWORD_NEEDED.value,
            "password_hint": hint,
        }
        pending = await self.repos.code_logins.set(doc["_id"], fields) or {**pending, **fields}
        if self._needs_login(doc):
            doc = (
                await self.health.transition(doc, AccountState.PASSWORD_NEEDED, "2FA password needed") or doc
            )
        await self.repos.accounts.set(doc["_id"], {"two_factor_enabled": True})
        self.metrics.logins.labels("code", "password_needed").inc()
        await self.emit(
            LoginPasswordNeeded(account_id=doc["_id"], phone=doc["phone"], method="code", password_hint=hint)
        )
        return self._step(doc, pending, "password")

    @answers(accounts_cmd.SubmitTwoFactorPassword)
    async def submit_password(self, req: accounts_cmd.SubmitTwoFactorPasswordRequest) -> LoginStep:
        doc = await self.accounts.find(req)
        async with self._pending_step(doc, password=True) as (_, client):
            profile = await client.check_password(req.password.get_secret_value())
            return await self._finish(doc, client, profile, two_factor=True)

    @answers(accounts_cmd.ResendCode)
    async def resend(self, req: accounts_cmd.ResendCodeRequest) -> LoginStep:
        doc = await self.accounts.find(req)
        async with self._pending_step(doc) as (pending, client):
            sent = await client.resend_code(doc["phone"], req.phone_code_hash or pending["phone_code_hash"])
        fields = {
            "phone_code_hash": sent.phone_code_hash,
            "code_type": sent.code_type,
            "next_type": sent.next_type,
            "code_length": sent.length,
            "timeout": sent.timeout,
        }
        pending = await self.repos.code_logins.set(doc["_id"], fields) or {**pending, **fields}
        await self._code_sent(doc, sent, resent=True)
        return self._step(doc, pending, "code")

    async def _code_sent(self, doc: Doc, sent: SentCode, *, resent: bool) -> None:
        await self.emit(
            LoginCodeSent(
                account_id=doc["_id"],
                phone=doc["phone"],
                code_type=sent.code_type,
                next_code_type=sent.next_type,
                code_length=sent.length,
                resend_after_seconds=sent.timeout,
                resent=resent,
            )
        )

    async def _finish(
        self, doc: Doc, client: AccountClient, profile: TelegramProfile, *, two_factor: bool
    ) -> LoginStep:
        session = client.session_string()
        await client.disconnect()  # the pool connects this session next: never two connections at once
        updated = await self._keep_session(doc, session, profile, two_factor)
        await self.repos.code_logins.delete(doc["_id"])
        self.metrics.logins.labels("code", "ok").inc()
        await self.emit(
            AccountLoggedIn(account_id=doc["_id"], phone=doc["phone"], method="code", profile=profile)
        )
        await self.pool.refresh(doc["_id"])
        self.pool.wake()
        return self._step(updated, None, "done", account=account_view(updated, holder=None))

    # --- logout ------------------------------------------------------------------------------------

    @answers(accounts_cmd.LogoutAccount)
    async def logout(self, req: accounts_cmd.LogoutAccountRequest) -> AccountView:
        doc = await self.accounts.find(req)
        if doc.get("session_enc"):
            try:
                await self.pool.call(Logout, doc["_id"], AccountSelector(account_id=doc["_id"]))
            except Conflict:
                pass  # the session is unusable anyway (revoked, banned): forgetting it is the logout
        doc = await self.repos.accounts.get(doc["_id"]) or doc
        await self._forget_session(doc, "logged out")
        await self.repos.code_logins.delete(doc["_id"])
        if not req.keep_account:
            # keepAccount=false was confirmed with the logout, so the removal it implies is too
            await self.accounts.remove(
                accounts_cmd.RemoveAccountRequest(account_id=doc["_id"], logout=False, confirm=True)
            )
            doc = {**doc, "session_enc": None, "state": AccountState.NEW.value}
            return account_view(doc, holder=None)
        fresh = await self.repos.accounts.get(doc["_id"])
        assert fresh is not None
        return account_view(fresh, holder=None)

    @account_call(Logout)
    async def logout_here(self, live: LiveAccount, req: AccountSelector) -> Ack:
        client = await self.pool.client_of(live, LOGOUT_WAIT)
        try:
            await asyncio.wait_for(client.log_out(), LOGOUT_WAIT)
        except TimeoutError:
            raise DomainError(
                ErrorCode.UNAVAILABLE,
                f"Telegram did not answer the logout of {live.account_id} within {LOGOUT_WAIT:.0f} s; retry",
            ) from None
        except TelegramFailure as exc:
            if not exc.session_dead:
                raise await self.health.failure(live.account_id, exc) from None
        except TelegramUnreachable as exc:
            raise await self.health.failure(live.account_id, exc) from None
        doc = await self.repos.accounts.get(live.account_id)
        if doc is not None:
            await self._forget_session(doc, "logged out")
        await self.pool.release(live.account_id, "released")
        return Ack(affected=1)

    async def _forget_session(self, doc: Doc, reason: str) -> None:
        if doc.get("session_enc") is None and doc["state"] == AccountState.NEW.value:
            return
        await self.health.transition(
            doc, AccountState.NEW, reason, extra={"session_enc": None, "connected": False, "holder": None}
        )
