"""QR login: a `tg://login?token=…` URL (and its image) that a logged-in Telegram app scans.

Telegram tells the waiting connection that its token was accepted (`updateLoginToken`), so a QR login
keeps one live connection, held by one replica under the lease `qr.<session id>`; the other
replicas forward refresh / 2FA / cancel to it (`QrControl`, addressed by the session id). The
connection's auth key is stored encrypted: after a restart (or if its replica died) any replica
adopts the login, reconnects with that key and asks Telegram again, which answers with success if
the code was scanned meanwhile, or a fresh token otherwise. A 2FA password given at creation is kept
in memory for this login only; after a restart it must be given again with qr-login-submit-2fa.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tgm_contracts import ErrorCode, Event
from tgm_contracts.base import utcnow
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.events_session import (
    AccountAdded,
    AccountLoggedIn,
    LoginFailed,
    LoginPasswordNeeded,
    QrLoginUpdated,
)
from tgm_contracts.models.session import AccountState, DeviceView, QrLoginView, TelegramProfile
from tgm_contracts.rpc_session import QrControl, QrControlRequest
from tgm_contracts.settings import TelegramSettings
from tgm_runtime import Conflict, DomainError, Invalid, NotFound
from tgm_runtime.routes import answers

from ..accounts.service import ACCOUNT_SETTINGS, new_id
from ..credentials.service import CredentialPool
from ..fleet.connections import generate_device, seal_proxy
from ..fleet.leases import Lease
from ..fleet.relay import HeldRuns, Relay
from ..ports import AccountClient, LoginToken, TelegramFailure, TelegramUnreachable
from ..store import Doc
from . import qr_image
from .service import AccountLogin, rejected

log = logging.getLogger("tgm.session.qr")

OPEN = ("pending", "scanned", "password_needed")
#: What `qr-login-updated` tells of a QR login: its view's fields (the state as the view sees it).
_UPDATED_FIELDS = set(QrLoginUpdated.model_fields) & set(QrLoginView.model_fields)


def _login_of(doc: Doc, session_id: str) -> dict[str, Any]:
    """The fields a QR login's events share: whose login it is and which session."""
    return {
        "account_id": doc.get("account_id"),
        "phone": doc.get("phone"),
        "method": "qr",
        "qr_session_id": session_id,
    }


@dataclass
class QrRun:
    session_id: str
    lease: Lease
    client: AccountClient | None = None
    password: str | None = field(default=None, repr=False)
    scanned: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None
    subscription: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(kw_only=True, eq=False)
class QrLogins(AccountLogin):
    credentials: CredentialPool
    relay: Relay
    telegram_settings: Callable[[], Awaitable[TelegramSettings]]
    runs: dict[str, QrRun] = field(default_factory=dict, init=False)
    held: HeldRuns = field(init=False)

    def __post_init__(self) -> None:
        # Held under the lease `qr.<session id>`; other replicas forward QrControl, 30 s at most.
        self.held = self.relay.held_runs("qr", QrControl, self.control_here, timeout=30.0)

    # --- views and events --------------------------------------------------------------------------

    def view(self, doc: Doc, *, image: tuple[str, int] | None = None) -> QrLoginView:
        state = doc["state"]
        expires = doc.get("expires_at")
        now = utcnow()
        if state == "pending" and expires is not None and expires <= now:
            state = "expired"
        url = doc.get("qr_url") if state in ("pending", "scanned") else None
        b64 = mime = None
        if image is not None and url:
            b64, mime = qr_image.render(url, image[0], image[1])
        return QrLoginView(
            session_id=doc["_id"],
            state=state,
            qr_url=url,
            qr_image_base64=b64,
            qr_image_mime=mime,
            expires_at=expires if url else None,
            expires_in=max(0, int((expires - now).total_seconds())) if url and expires else None,
            account_id=doc.get("account_id"),
            phone=doc.get("phone"),
            profile=TelegramProfile.model_validate(doc["profile"]) if doc.get("profile") else None,
            password_hint=doc.get("password_hint"),
            device=DeviceView.model_validate(doc.get("device") or {}),
            error=doc.get("error"),
            created_at=doc["created_at"],
            updated_at=doc.get("updated_at"),
        )

    async def _update(self, sid: str, fields: Doc, *, event: bool = True) -> Doc:
        doc = await self.repos.qr_logins.set(sid, fields)
        if doc is None:
            raise NotFound(f"no QR login {sid}")
        if event:
            await self.emit(QrLoginUpdated(**self.view(doc).model_dump(include=_UPDATED_FIELDS)))
        return doc

    # --- create ------------------------------------------------------------------------------------

    @answers(accounts_cmd.QrLoginCreate)
    async def create(self, req: accounts_cmd.QrLoginCreateRequest) -> QrLoginView:
        sid = f"qr_{uuid.uuid4().hex[:16]}"
        account = None
        if req.account_id is not None:
            account = await self.repos.accounts.get(req.account_id)
            if account is None:
                raise NotFound(f"no account {req.account_id}")
        settings = await self.telegram_settings()
        taken = False
        if account is not None and not (req.api_credential_id or req.api_id):
            cred_id, api_id = account.get("api_credential_id"), account.get("api_id")
        else:
            cred = await self.credentials.assign(
                credential_id=req.api_credential_id,
                api_id=req.api_id,
                api_hash=req.api_hash.get_secret_value() if req.api_hash else None,
            )
            cred_id, api_id, taken = cred["_id"], cred["api_id"], True
        if req.proxy is None and account is None and settings.require_proxy:
            if taken:
                await self.credentials.give_back(cred_id)
            raise Invalid("telegram.requireProxy is on: give the QR login a proxy")
        proxy_enc = proxy_view = None
        if req.proxy is not None:
            proxy_enc, proxy_view = seal_proxy(self.vault, req.proxy, sid)
        device = (
            account.get("device")
            if account is not None and req.device is None
            else generate_device(sid, req.device.model_dump(by_alias=False) if req.device else None, settings)
        )
        lease = await self.held.claim_new(sid)
        run = QrRun(
            sid,
            lease,
            password=req.two_factor_password.get_secret_value() if req.two_factor_password else None,
        )
        now = utcnow()
        doc: Doc = {
            "_id": sid,
            "state": "pending",
            "account_id": req.account_id,
            "phone": account["phone"] if account else None,
            "settings": {
                k: (v.value if hasattr(v, "value") else v)
                for k in ACCOUNT_SETTINGS
                if (v := getattr(req, k)) is not None
            },
            "api_credential_id": cred_id,
            "api_id": api_id,
            "credential_taken": taken,
            "proxy_enc": proxy_enc,
            "proxy_view": proxy_view,
            "proxy_from_account": req.proxy is None and account is not None,
            "device": device,
            "holder": self.held.replica_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            client = await self._connect(doc, session=None)
            run.client = client
            token = await client.export_login_token()
        except (TelegramFailure, TelegramUnreachable) as exc:
            if run.client is not None:
                await run.client.disconnect()
            await self.held.release(lease)
            if taken:
                await self.credentials.give_back(cred_id)
            raise await self._error(exc) from None
        doc["session_enc"] = self.vault.seal(client.session_string(), sid)
        if isinstance(token, TelegramProfile):  # cannot happen with a fresh key, but Telegram decides
            await self.repos.qr_logins.insert(doc)
            self.runs[sid] = run
            await self._finish(run, token)
            return self.view(await self.repos.qr_logins.get(sid) or doc)
        doc.update(self._token_fields(token))
        await self.repos.qr_logins.insert(doc)
        await self._start(run)
        self.metrics.logins.labels("qr", "created").inc()
        await self.emit(
            QrLoginUpdated(
                session_id=sid,
                state="pending",
                qr_url=doc["qr_url"],
                expires_at=doc["expires_at"],
                account_id=req.account_id,
            )
        )
        return self.view(doc, image=(req.image_format, req.image_size))

    @staticmethod
    def _token_fields(token: LoginToken) -> Doc:
        text = base64.urlsafe_b64encode(token.token).decode().rstrip("=")
        return {
            "qr_url": f"tg://login?token={text}",
            "expires_at": token.expires,
            "state": "pending",
            "error": None,
        }

    async def _connect(self, doc: Doc, session: str | None) -> AccountClient:
        proxy_enc, context = doc.get("proxy_enc"), doc["_id"]
        if doc.get("proxy_from_account") and doc.get("account_id"):
            account = await self.repos.accounts.get(doc["account_id"])
            proxy_enc, context = (account or {}).get("proxy_enc"), doc["account_id"]
        spec = await self.builder.spec(
            key=doc["_id"],
            session=session,
            credential_id=doc.get("api_credential_id"),
            proxy_enc=proxy_enc,
            proxy_context=context,
            device=doc.get("device"),
            receive_updates=True,
        )
        return await self._connected(spec)

    async def _error(self, exc: BaseException) -> DomainError:
        if isinstance(exc, TelegramFailure):
            from ..fleet.health import telegram_error

            if exc.is_flood:
                return DomainError(
                    ErrorCode.FLOOD_WAIT,
                    f"Telegram asks to wait {exc.seconds}s ({exc.full})",
                    {"telegramError": exc.full},
                    retry_after=exc.seconds,
                )
            return telegram_error(exc)
        return DomainError(ErrorCode.UNAVAILABLE, f"Telegram is unreachable: {exc}")

    async def _start(self, run: QrRun) -> None:
        await self._listen(run)
        run.task = self.held.spawn(self._watch(run), run.session_id)

    async def _listen(self, run: QrRun) -> None:
        """The run is this replica's: told when its token is accepted, and its control served here."""
        assert run.client is not None
        run.scanned.clear()

        async def scanned() -> None:
            run.scanned.set()

        run.client.on_login_token(scanned)
        self.runs[run.session_id] = run
        if run.subscription is None:
            run.subscription = await self.held.serve(run.session_id)

    async def _watch(self, run: QrRun) -> None:
        """Wait for the scan or the token's expiry; keep the lease alive meanwhile."""
        sid = run.session_id
        try:
            while True:
                doc = await self.repos.qr_logins.get(sid)
                if doc is None or doc["state"] not in OPEN:
                    return
                if doc["state"] == "password_needed":
                    await asyncio.sleep(self.held.heartbeat)
                    await self._renew(run)
                    continue
                left = (doc["expires_at"] - utcnow()).total_seconds()
                if left <= 0:
                    await self._update(sid, {"state": "expired"})
                    await self._stop(run)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.scanned.wait(), min(left, self.held.heartbeat))
                await self._renew(run)
                if run.scanned.is_set():
                    run.scanned.clear()
                    async with run.lock:
                        await self._scanned(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("QR login %s failed", sid)
            with contextlib.suppress(Exception):
                await self._update(sid, {"state": "failed", "error": "internal error while waiting"})
            await self._stop(run)

    async def _renew(self, run: QrRun) -> None:
        if not await self.held.renew(run.lease):  # lost: disconnect, and the watch ends
            await self._stop(run, release=False)
            raise asyncio.CancelledError

    async def _scanned(self, run: QrRun) -> None:
        assert run.client is not None
        sid = run.session_id
        try:
            result = await run.client.export_login_token()
        except TelegramFailure as exc:
            if exc.name != "SESSION_PASSWORD_NEEDED":
                await self._failed(run, exc)
                return
            await self._password_step(run)
            return
        except TelegramUnreachable as exc:
            await self._failed(run, exc)
            return
        if isinstance(result, TelegramProfile):
            await self._finish(run, result)
        else:
            await self._update(sid, self._token_fields(result))

    async def _password_step(self, run: QrRun) -> None:
        assert run.client is not None
        sid = run.session_id
        await self.repos.qr_logins.set(
            sid, {"session_enc": self.vault.seal(run.client.session_string(), sid)}
        )
        if run.password is not None:
            password, run.password = run.password, None
            try:
                profile = await run.client.check_password(password)
            except TelegramFailure as exc:
                if exc.name != "PASSWORD_HASH_INVALID":
                    await self._failed(run, exc)
                    return
                # The stored password was wrong: ask for it like when none was given.
            else:
                await self._finish(run, profile)
                return
        hint = None
        with contextlib.suppress(TelegramFailure, TelegramUnreachable):
            hint = await run.client.password_hint()
        doc = await self._update(sid, {"state": "password_needed", "password_hint": hint})
        await self._count_and_emit(
            "password_needed", LoginPasswordNeeded(**_login_of(doc, sid), password_hint=hint)
        )

    async def _count_and_emit(self, result: str, event: Event) -> None:
        self.metrics.logins.labels("qr", result).inc()
        await self.emit(event)

    async def _failed(self, run: QrRun, exc: BaseException) -> None:
        name = exc.full if isinstance(exc, TelegramFailure) else "UNREACHABLE"
        doc = await self._update(run.session_id, {"state": "failed", "error": f"{name}: {exc}"[:300]})
        await self._count_and_emit(
            "failed",
            LoginFailed(
                **_login_of(doc, run.session_id), error=name, message=str(exc)[:300], recoverable=False
            ),
        )
        await self._give_back(doc)
        await self._stop(run)

    async def _give_back(self, doc: Doc) -> None:
        if doc.get("credential_taken"):
            await self.credentials.give_back(doc.get("api_credential_id"))
            await self.repos.qr_logins.set(doc["_id"], {"credential_taken": False})

    async def _finish(self, run: QrRun, profile: TelegramProfile) -> None:
        assert run.client is not None
        sid = run.session_id
        session = run.client.session_string()
        await run.client.disconnect()  # this key is the account's session now: the pool connects it next
        run.client = None
        doc = await self.repos.qr_logins.get(sid)
        assert doc is not None
        phone = profile.phone
        new_account = False
        try:
            if doc.get("account_id"):
                account = await self.repos.accounts.get(doc["account_id"])
                if account is None:
                    raise NotFound(f"account {doc['account_id']} was removed during the QR login")
            else:
                if not phone:
                    raise Conflict("Telegram did not tell the phone of the account that scanned the code")
                account = await self.repos.accounts.by_phone(phone)
                if account is None:
                    account = await self._new_account(doc, phone)
                    new_account = True
                    # Published as soon as the account exists (state `new`), before the login makes it
                    # `active` below: consumers see the fleet's events in the order they happened, and
                    # an account kept after a failed finish is still announced.
                    await self.emit(
                        AccountAdded(
                            account_id=account["_id"],
                            phone=account["phone"],
                            label=account.get("label"),
                            role=account.get("role") or "unassigned",
                            group=account.get("group"),
                        )
                    )
                else:
                    await self._give_back(doc)
            updated = await self._keep_session(
                account,
                session,
                profile,
                two_factor=bool(doc.get("password_hint") is not None or doc["state"] == "password_needed"),
            )
        except DomainError as exc:
            await self._update(sid, {"state": "failed", "error": exc.message, "session_enc": None})
            await self.emit(
                LoginFailed(
                    account_id=doc.get("account_id"),
                    phone=phone,
                    method="qr",
                    qr_session_id=sid,
                    error=exc.code.value,
                    message=exc.message,
                    recoverable=False,
                )
            )
            await self._stop(run)
            return
        await self._update(
            sid,
            {
                "state": "success",
                "account_id": updated["_id"],
                "phone": updated["phone"],
                "profile": profile.model_dump(mode="json", by_alias=False),
                "session_enc": None,
                "credential_taken": False,
            },
        )
        self.metrics.logins.labels("qr", "ok").inc()
        await self.emit(
            AccountLoggedIn(
                account_id=updated["_id"],
                phone=updated["phone"],
                method="qr",
                profile=profile,
                new_account=new_account,
            )
        )
        await self._stop(run)
        await self.pool.refresh(updated["_id"])
        self.pool.wake()

    async def _new_account(self, doc: Doc, phone: str) -> Doc:
        account_id = new_id("acc")
        s = doc.get("settings") or {}
        now = utcnow()
        await self.accounts._ensure_group(s.get("group"))
        acc: Doc = {
            "_id": account_id,
            "phone": phone,
            "label": s.get("label"),
            "state": AccountState.NEW.value,
            "state_changed_at": now,
            "role": s.get("role") or "unassigned",
            "group": s.get("group"),
            "tags": s.get("tags") or [],
            "persona_id": s.get("persona_id"),
            "notes": s.get("notes"),
            "profile": {},
            "api_credential_id": doc.get("api_credential_id"),
            "api_id": doc.get("api_id"),
            "device": doc.get("device"),
            "session_enc": None,
            "connected": False,
            "holder": None,
            "daily_send_limit": s.get("daily_send_limit", 50),
            "warmup_enabled": s.get("warmup_enabled", True),
            "ai_enabled": bool(s.get("ai_enabled")),
            "ai_model": s.get("ai_model"),
            "ai_personality": s.get("ai_personality"),
            "created_at": now,
            "updated_at": now,
        }
        if doc.get("proxy_enc"):
            full = self.vault.open_json(doc["proxy_enc"], doc["_id"])
            acc["proxy_enc"] = self.vault.seal_json(full, account_id)
            acc["proxy_view"] = doc.get("proxy_view")
            acc["binding"] = {"bound_at": now, "is_active": True, "reason": "QR login"}
        if await self.repos.accounts.add(acc) is None:
            raise Conflict(f"{phone} was added to the fleet during the QR login")
        return acc

    async def _stop(self, run: QrRun, *, release: bool = True, now: bool = False) -> None:
        if self.runs.get(run.session_id) is run:
            del self.runs[run.session_id]
        if run.client is not None:
            await run.client.disconnect()
            run.client = None
        sub, run.subscription = run.subscription, None
        await self.held.end(sub, run.lease if release else None, now=now)
        if run.task is not None and run.task is not asyncio.current_task():
            run.task.cancel()

    async def stop(self) -> None:
        for run in list(self.runs.values()):
            await self._stop(run, now=True)

    # --- commands ----------------------------------------------------------------------------------

    @answers(accounts_cmd.QrLoginStatus)
    async def status(self, req: accounts_cmd.QrLoginStatusRequest) -> QrLoginView:
        doc = await self.repos.qr_logins.get(req.session_id)
        if doc is None:
            raise NotFound(f"no QR login {req.session_id}")
        return self.view(doc, image=(req.image_format, 256) if req.include_image else None)

    @answers(accounts_cmd.QrLoginRefresh)
    async def refresh(self, req: accounts_cmd.QrLoginRefreshRequest) -> QrLoginView:
        control = QrControlRequest(action="refresh", image_format=req.image_format, image_size=req.image_size)
        return await self.control(req.session_id, control)

    @answers(accounts_cmd.QrLoginSubmit2fa)
    async def submit_2fa(self, req: accounts_cmd.QrLoginSubmit2faRequest) -> QrLoginView:
        return await self.control(
            req.session_id, QrControlRequest(action="submit_2fa", password=req.password)
        )

    @answers(accounts_cmd.QrLoginCancel)
    async def cancel(self, req: accounts_cmd.QrSessionRequest) -> QrLoginView:
        return await self.control(req.session_id, QrControlRequest(action="cancel"))

    async def control(self, sid: str, req: QrControlRequest) -> QrLoginView:
        """refresh / submit_2fa / cancel: here if this replica runs the login, else at its holder."""
        doc = await self.repos.qr_logins.get(sid)
        if doc is None:
            raise NotFound(f"no QR login {sid}")
        if sid not in self.runs:
            holder = await self.held.holder(sid)
            if holder is not None and holder != self.held.replica_id:
                forwarded: QrLoginView = await self.held.forward(sid, req)
                return forwarded
        return await self.control_here(sid, req)

    async def control_here(self, sid: str, req: QrControlRequest) -> QrLoginView:
        doc = await self.repos.qr_logins.get(sid)
        if doc is None:
            raise NotFound(f"no QR login {sid}")
        state = self.view(doc).state
        if req.action == "cancel":
            if state in ("success", "cancelled", "failed"):
                raise Conflict(f"the QR login is already {state}")
            run = self.runs.get(sid)
            if run is not None:
                await self._stop(run)
            doc = await self._update(sid, {"state": "cancelled", "session_enc": None})
            await self._give_back(doc)
            self.metrics.logins.labels("qr", "cancelled").inc()
            return self.view(doc)
        if state in ("success", "cancelled", "failed"):
            raise Conflict(f"the QR login is {state}; create a new one")
        run = self.runs.get(sid) or await self._adopt(doc)
        async with run.lock:
            if req.action == "refresh":
                if state == "password_needed":
                    raise Conflict("the code was scanned; the login now needs the 2FA password")
                assert run.client is not None
                try:
                    result = await run.client.export_login_token()
                except TelegramFailure as exc:
                    if exc.name == "SESSION_PASSWORD_NEEDED":
                        await self._password_step(run)
                        return self.view(await self.repos.qr_logins.get(sid) or doc)
                    raise await self._error(exc) from None
                except TelegramUnreachable as exc:
                    raise await self._error(exc) from None
                if isinstance(result, TelegramProfile):
                    await self._finish(run, result)
                    return self.view(await self.repos.qr_logins.get(sid) or doc)
                doc = await self._update(sid, self._token_fields(result))
                if run.task is None or run.task.done():
                    run.task = self.held.spawn(self._watch(run), sid)
                return self.view(doc, image=(req.image_format, req.image_size))
            # submit_2fa
            if state != "password_needed":
                raise Conflict("the QR login does not need a password (it is " + state + ")")
            assert run.client is not None and req.password is not None
            try:
                profile = await run.client.check_password(req.password.get_secret_value())
            except TelegramFailure as exc:
                if exc.name == "PASSWORD_HASH_INVALID":
                    await self.emit(
                        LoginFailed(
                            **_login_of(doc, sid),
                            error=exc.full,
                            message="the 2FA password is wrong",
                            recoverable=True,
                        )
                    )
                raise (rejected(exc) or await self._error(exc)) from None
            except TelegramUnreachable as exc:
                raise await self._error(exc) from None
            await self._finish(run, profile)
            return self.view(await self.repos.qr_logins.get(sid) or doc)

    async def _adopt(self, doc: Doc) -> QrRun:
        """Take over a QR login whose replica is gone (or this one, restarted): reconnect its key."""
        sid = doc["_id"]
        lease = await self.held.take_over(sid)
        if lease is None:
            raise DomainError(ErrorCode.UNAVAILABLE, "another replica is taking this QR login over; retry")
        if not doc.get("session_enc"):
            await self.held.release(lease)
            raise Conflict("this QR login has no connection left to continue; create a new one")
        run = QrRun(sid, lease)
        try:
            run.client = await self._connect(doc, self.vault.open(doc["session_enc"], sid))
        except (TelegramFailure, TelegramUnreachable) as exc:
            await self.held.release(lease)
            raise await self._error(exc) from None
        await self.repos.qr_logins.set(sid, {"holder": self.held.replica_id})
        await self._listen(run)
        return run

    async def resume(self) -> None:
        """Adopt open QR logins nobody runs (after a restart or a replica's death)."""
        for doc in await self.repos.qr_logins.find({"state": {"$in": list(OPEN)}}):
            sid = doc["_id"]
            if sid in self.runs:
                continue
            if await self.held.holder(sid) is not None:
                continue
            # Even an expired token is worth one question: Telegram may have accepted the scan while
            # nobody listened, and otherwise answers with a fresh token.
            try:
                run = await self._adopt(doc)
            except DomainError as exc:
                log.info("QR login %s cannot be resumed: %s", sid, exc.message)
                await self._update(sid, {"state": "failed", "error": f"resume failed: {exc.message}"})
                await self._give_back(doc)
                continue
            async with run.lock:
                if doc["state"] == "password_needed":
                    run.task = self.held.spawn(self._watch(run), sid)
                    continue
                await self._scanned(run)
                if sid in self.runs:
                    run.task = self.held.spawn(self._watch(run), sid)
