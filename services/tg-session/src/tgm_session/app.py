"""Wiring of tg-session: the runtime, the use cases built at start, and thin handlers for its 54
commands, its pool-wide RPCs and the account-addressed calls served by whichever replica holds an
account (`tgm.acct.<id>.>`).

`create_runtime()` builds a fresh runtime (tests run several in one process); `runtime` (what
`python -m tgm_session` runs) is created on first access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tgm_contracts import ErrorCode, Service
from tgm_contracts.base import Ack
from tgm_contracts.commands import accounts as A
from tgm_contracts.commands import telegram_ops as T
from tgm_contracts.rpc_session import (
    AcctCreateGroup,
    AcctGetGroupMembers,
    AcctJoinGroup,
    AcctLeaveGroup,
    AcctSearchGroups,
    CheckStatus,
    DescribeAccounts,
    GetHistory,
    Logout,
    MarkRead,
    PickAccounts,
    QrControl,
    Reload,
    ResolvePeer,
    ScrapeControl,
    Send,
    SyncInfo,
    UpdateProfile,
    VerifyProxy,
)
from tgm_contracts.streams import ACCOUNT_LEASES
from tgm_runtime import CallContext, DomainError, RuntimeSettings, ServiceRuntime

from . import __version__
from .accounts import Accounts
from .connections import ConnectionBuilder
from .credentials import CredentialPool
from .extraction import Extractions
from .groups import GroupOps
from .health import Health
from .inbound import Inbound
from .leases import KvLeaseStore, LeaseStore, account_key
from .login import CodeLogin
from .metrics import SessionMetrics
from .migrations import MIGRATIONS
from .pool import AccountPool, LiveAccount
from .ports import TelegramConnector
from .proxies import Proxies
from .qr_login import QrLogins
from .repos import Repos, Vault
from .scrape import Scrapes
from .send import Sender
from .settings import SessionSettings

log = logging.getLogger("tgm.session")


async def _counts(db: Any) -> dict[str, int]:
    return {
        "accounts": await db["accounts"].count_documents({}),
        "activeAccounts": await db["accounts"].count_documents({"state": "active"}),
        "apiCredentials": await db["api_credentials"].count_documents({}),
        "sends": await db["sends"].count_documents({"state": "sent"}),
    }


class SessionService:
    """Holds the use cases of one tg-session replica."""

    def __init__(
        self,
        rt: ServiceRuntime,
        settings: SessionSettings,
        *,
        connector: Callable[[SessionSettings, Any], TelegramConnector] | None = None,
        leases: Callable[[ServiceRuntime], Any] | None = None,
    ) -> None:
        self.rt = rt
        self.settings = settings
        self.replica_id = rt.settings.replica_id
        self.metrics = SessionMetrics(rt.registry)
        self._connector_factory = connector
        self._lease_factory = leases
        self._worker: asyncio.Task[Any] | None = None
        rt.on_start(self.start)
        rt.on_stop(self.stop)
        rt.on_restore(self.restored)

    # --- building ----------------------------------------------------------------------------------

    async def start(self, rt: ServiceRuntime) -> None:
        s = self.settings
        self.repos = repos = Repos(rt.db)
        self.vault = vault = Vault(rt.secrets)

        async def telegram() -> Any:
            return await rt.settings_section("telegram")

        async def capacity() -> int:
            return s.capacity if s.capacity is not None else (await telegram()).replica_capacity

        async def backoff_max() -> float:
            return float((await telegram()).reconnect_backoff_max_seconds)

        if self._lease_factory is not None:
            self.leases: LeaseStore = await self._lease_factory(rt)
        else:
            kv = await self._lease_bucket(rt)
            self.leases = KvLeaseStore(kv)
            s = self.settings

        self.credentials_ref: CredentialPool | None = None

        async def default_credential() -> tuple[int, str] | None:
            return await self.credentials.any_active()

        if self._connector_factory is not None:
            self.connector = self._connector_factory(s, default_credential)
        else:
            from .telegram.connector import TelethonConnector

            self.connector = TelethonConnector(s, default_credential)
        builder = ConnectionBuilder(repos, vault, telegram)

        async def forward(subject: str, body: dict[str, Any], response: type, timeout: float) -> Any:
            return await rt.request(subject, body, response, timeout)

        async def serve_account(account_id: str) -> Any:
            return await rt.serve_account(account_id, self.account_routes())

        async def serve_qr(session_id: str) -> Any:
            return await rt.serve_account(session_id, {"qr-login": (QrControl, self._qr_control)})

        async def serve_scrape(scrape_id: str) -> Any:
            return await rt.serve_account(
                scrape_id, {"credential-scrape": (ScrapeControl, self._scrape_control)}
            )

        async def on_terminal(account_id: str) -> None:
            # Revoked, deactivated or banned: the account leaves the pool (the state event is out).
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.pool.release(account_id)))

        self.health = Health(
            repos,
            rt.publish,
            self.metrics,
            self.replica_id,
            peer_flood_cooldown=__import__("datetime").timedelta(hours=s.peer_flood_cooldown_hours),
            on_terminal=on_terminal,
        )

        def own_send(account_id: str, chat_id: int, message_id: int) -> bool:
            live = self.pool.get(account_id)
            return live is not None and (chat_id, message_id) in live.recent_sent

        self.inbound = Inbound(rt.publish, self.metrics, own_send)
        self.pool = AccountPool(
            repos=repos,
            connector=self.connector,
            builder=builder,
            leases=self.leases,
            health=self.health,
            metrics=self.metrics,
            settings=s,
            replica_id=self.replica_id,
            capacity=capacity,
            backoff_max=backoff_max,
            serve=serve_account,
            inbound=self.inbound.handlers,
            publish=rt.publish,
            forward=forward,
            namespace=rt.database_name(),
        )
        self.credentials = CredentialPool(repos, vault, self.connector, self.reload)
        self.accounts = Accounts(
            repos=repos,
            vault=vault,
            pool=self.pool,
            credentials=self.credentials,
            health=self.health,
            leases=self.leases,
            publish=rt.publish,
            telegram_settings=telegram,
            reload=self.reload,
            logout_remote=self.logout_remote,
        )
        self.login = CodeLogin(
            repos=repos,
            vault=vault,
            connector=self.connector,
            builder=builder,
            health=self.health,
            pool=self.pool,
            accounts=self.accounts,
            publish=rt.publish,
            metrics=self.metrics,
            reload=self.reload,
        )
        self.qr = QrLogins(
            repos=repos,
            vault=vault,
            connector=self.connector,
            builder=builder,
            health=self.health,
            pool=self.pool,
            accounts=self.accounts,
            credentials=self.credentials,
            leases=self.leases,
            publish=rt.publish,
            metrics=self.metrics,
            settings=s,
            replica_id=self.replica_id,
            serve=serve_qr,
            forward=forward,
            telegram_settings=telegram,
            reload=self.reload,
        )
        self.proxies = Proxies(
            repos=repos,
            vault=vault,
            connector=self.connector,
            pool=self.pool,
            accounts=self.accounts,
            telegram_settings=telegram,
            reload=self.reload,
        )
        self.groups = GroupOps(
            repos=repos, pool=self.pool, accounts=self.accounts, health=self.health, publish=rt.publish
        )
        self.sender = Sender(
            repos=repos, pool=self.pool, health=self.health, metrics=self.metrics, publish=rt.publish
        )
        self.extractions = Extractions(
            repos=repos,
            pool=self.pool,
            accounts=self.accounts,
            health=self.health,
            publish=rt.publish,
            settings=s,
            replica_id=self.replica_id,
        )
        self.scrapes = Scrapes(
            repos=repos,
            vault=vault,
            pool=self.pool,
            accounts=self.accounts,
            credentials=self.credentials,
            leases=self.leases,
            publish=rt.publish,
            settings=s,
            replica_id=self.replica_id,
            serve=serve_scrape,
            forward=forward,
            reload=self.reload,
        )
        if s.api_id is not None and s.api_hash is not None:
            await self.credentials.seed(s.api_id, s.api_hash.get_secret_value())
        rt.state.session = self
        await self.pool.start()
        self._worker = asyncio.create_task(self._work(), name="session-worker")

    async def _lease_bucket(self, rt: ServiceRuntime) -> Any:
        """The lease bucket; if it exists with another TTL, that TTL rules (heartbeats follow it)."""
        from nats.js.errors import BadRequestError

        s = self.settings
        try:
            kv = await rt.broker.key_value(
                ACCOUNT_LEASES.bucket,
                ttl=s.lease_ttl_seconds,
                history=1,
                description=ACCOUNT_LEASES.description,
            )
        except BadRequestError:
            kv = await rt.broker.key_value(ACCOUNT_LEASES.bucket, declare=False)
        ttl = (await kv.status()).ttl
        if ttl and abs(ttl - s.lease_ttl_seconds) > 0.01:
            log.warning(
                "lease bucket TTL is %ss, not the configured %ss: using the bucket's",
                ttl,
                s.lease_ttl_seconds,
            )
            self.settings = s.model_copy(update={"lease_ttl_seconds": ttl})
        return kv

    async def _work(self) -> None:
        beat = 0
        while True:
            try:
                await self.extractions.tick()
                if beat % 5 == 0:
                    await self.qr.resume()
                    await self.scrapes.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background work failed")
            beat += 1
            await asyncio.sleep(self.settings.worker_interval_seconds)

    async def stop(self, rt: ServiceRuntime) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker
        if not hasattr(self, "pool"):
            return
        await self.extractions.stop()
        await self.qr.stop()
        await self.scrapes.stop()
        await self.pool.stop()

    async def restored(self, rt: ServiceRuntime) -> None:
        self.pool.wake()  # the next tick lets go of accounts the restored data no longer has

    # --- cross-replica helpers ---------------------------------------------------------------------

    async def reload(self, account_id: str) -> None:
        """The account's session, proxy, device or credential changed: its holder reconnects."""
        if await self.pool.reload(account_id):
            return
        holder = await self.leases.holder(account_key(account_id))
        if holder is None or holder == self.replica_id:
            self.pool.wake()
            return
        try:
            await self.rt.request(Reload.subject(account_id), {"reason": "session"}, Ack, 10)
        except DomainError as exc:
            log.info("could not ask the holder of %s to reconnect: %s", account_id, exc.message)

    async def logout_remote(self, account_id: str) -> None:
        req = A.LogoutAccountRequest(account_id=account_id)
        await self.pool.run(account_id, Logout, req, lambda live: self.login.logout_here(live, req))

    # --- account-addressed calls (this replica holds the account) ------------------------------------

    def account_routes(self) -> dict[str, tuple[Any, Any]]:
        def on_live(fn: Callable[[LiveAccount, Any], Any]) -> Callable[[Any, CallContext], Any]:
            async def handler(req: Any, ctx: CallContext) -> Any:
                account_id = ctx.subject.split(".")[2]
                live = self.pool.get(account_id)
                if live is None:
                    raise DomainError(
                        ErrorCode.UNAVAILABLE, f"account {account_id} is not held here any more; retry"
                    )
                return await fn(live, req)

            return handler

        async def reload(live: LiveAccount, req: Any) -> Ack:
            doc = await self.repos.accounts.get(live.account_id)
            if doc is None or not doc.get("session_enc"):
                await self.pool.release(live.account_id)
            else:
                await self.pool.reload(live.account_id)
            return Ack(affected=1)

        return {
            "send": (Send, on_live(self.sender.send)),
            "resolve-peer": (ResolvePeer, on_live(self.sender.resolve)),
            "get-history": (GetHistory, on_live(self.sender.history)),
            "mark-read": (MarkRead, on_live(self.sender.mark_read)),
            "check-status": (CheckStatus, on_live(lambda live, req: self.accounts.check_status_here(live))),
            "update-profile": (UpdateProfile, on_live(self.accounts.update_data_here)),
            "sync-info": (SyncInfo, on_live(lambda live, req: self.accounts.sync_info_here(live))),
            "join-group": (AcctJoinGroup, on_live(self.groups.join_here)),
            "leave-group": (AcctLeaveGroup, on_live(self.groups.leave_here)),
            "search-groups": (AcctSearchGroups, on_live(self.groups.search_here)),
            "get-group-members": (AcctGetGroupMembers, on_live(self.groups.members_here)),
            "create-group": (AcctCreateGroup, on_live(self.groups.create_here)),
            "verify-proxy": (VerifyProxy, on_live(lambda live, req: self.proxies.verify_here(live))),
            "reload": (Reload, on_live(reload)),
            "logout": (Logout, on_live(self.login.logout_here)),
        }

    async def _qr_control(self, req: Any, ctx: CallContext) -> Any:
        return await self.qr.control_here(ctx.subject.split(".")[2], req)

    async def _scrape_control(self, req: Any, ctx: CallContext) -> Any:
        return await self.scrapes.control_here(ctx.subject.split(".")[2], req)


def _handlers(rt: ServiceRuntime, svc: SessionService) -> None:
    """One line per command: decode (done by the runtime), call one use case, return its answer."""

    def on(cmd: Any, fn: Callable[[Any], Any]) -> None:
        async def handler(req: Any, ctx: CallContext) -> Any:
            return await fn(req)

        rt.command(cmd)(handler)

    a = lambda name: lambda req: getattr(svc.accounts, name)(req)  # noqa: E731
    # accounts
    on(A.AddAccount, a("add"))
    on(A.GetAccounts, a("list"))
    on(A.UpdateAccount, a("update"))
    on(A.UpdateAccountData, a("update_data"))
    on(A.SyncAccountInfo, a("sync_info"))
    on(A.RemoveAccount, a("remove"))
    on(A.BulkDeleteAccounts, a("bulk_delete"))
    on(A.BatchUpdateAccounts, a("batch_update"))
    on(A.BulkAssignGroup, a("bulk_assign_group"))
    on(A.BulkAssignRole, a("bulk_assign_role"))
    on(A.CheckAccountStatus, a("check_status"))
    on(A.GetGroups, lambda req: svc.accounts.groups())
    on(A.SaveGroups, a("save_groups"))
    on(A.GetTags, lambda req: svc.accounts.tags())
    on(A.SaveTags, a("save_tags"))
    on(A.GetPersonas, lambda req: svc.accounts.personas())
    on(A.SavePersonas, a("save_personas"))
    # code login
    on(A.LoginAccount, lambda req: svc.login.login(req))
    on(A.VerifyCode, lambda req: svc.login.verify(req))
    on(A.ResendCode, lambda req: svc.login.resend(req))
    on(A.SubmitTwoFactorPassword, lambda req: svc.login.submit_password(req))
    on(A.LogoutAccount, lambda req: svc.login.logout(req))
    # QR login
    on(A.QrLoginCreate, lambda req: svc.qr.create(req))
    on(A.QrLoginStatus, lambda req: svc.qr.status(req))
    on(A.QrLoginRefresh, lambda req: svc.qr.control(req.session_id, _qr(req, "refresh")))
    on(A.QrLoginSubmit2fa, lambda req: svc.qr.control(req.session_id, _qr(req, "submit_2fa")))
    on(A.QrLoginCancel, lambda req: svc.qr.control(req.session_id, _qr(req, "cancel")))
    # proxies and IP binding
    on(A.TestProxy, lambda req: svc.proxies.test(req))
    on(A.IpBind, lambda req: svc.proxies.bind(req))
    on(A.IpUnbind, lambda req: svc.proxies.unbind(req))
    on(A.IpGetBinding, lambda req: svc.proxies.get_binding(req))
    on(A.IpGetAllBindings, lambda req: svc.proxies.all_bindings(req))
    on(A.IpVerifyBinding, lambda req: svc.proxies.verify(req))
    on(A.IpGetStatistics, lambda req: svc.proxies.statistics())
    # credential scrape
    on(A.CredentialStartScrape, lambda req: svc.scrapes.start(req))
    on(A.CredentialSubmitCode, lambda req: svc.scrapes.submit_code(req))
    on(A.CredentialGetStatus, lambda req: svc.scrapes.status(req))
    on(A.CredentialGetAll, lambda req: svc.scrapes.all(req))
    on(A.CredentialCancelScrape, lambda req: svc.scrapes.cancel(req))
    # groups, members, extraction
    on(T.JoinGroup, lambda req: svc.groups.join(req))
    on(T.LeaveGroup, lambda req: svc.groups.leave(req))
    on(T.SearchGroups, lambda req: svc.groups.search(req))
    on(T.GetGroupMembers, lambda req: svc.groups.members(req))
    on(T.CreateGroup, lambda req: svc.groups.create(req))
    on(T.GetCreatedGroups, lambda req: svc.groups.created(req))
    on(T.ExtractMembers, lambda req: svc.extractions.start(req))
    on(T.GetExtractionStatus, lambda req: svc.extractions.status(req))
    on(T.CancelExtraction, lambda req: svc.extractions.cancel(req))
    on(T.GetCollectedUsers, lambda req: svc.extractions.collected(req))
    on(T.ExportCollectedUsers, lambda req: svc.extractions.export(req))
    # API credential pool
    on(T.SaveApiCredential, lambda req: svc.credentials.save(req))
    on(T.GetApiCredentials, lambda req: svc.credentials.list(req))
    on(T.DeleteApiCredential, lambda req: svc.credentials.delete(req))
    on(T.TestApiCredential, lambda req: svc.credentials.test(req))

    @rt.rpc(PickAccounts)
    async def pick(req: Any, ctx: CallContext) -> Any:
        return await svc.accounts.pick(req)

    @rt.rpc(DescribeAccounts)
    async def describe(req: Any, ctx: CallContext) -> Any:
        return await svc.accounts.describe(req)


def _qr(req: Any, action: str) -> Any:
    from tgm_contracts.rpc_session import QrControlRequest

    return QrControlRequest(
        action=action,
        password=getattr(req, "password", None),
        image_format=getattr(req, "image_format", "png"),
        image_size=getattr(req, "image_size", 256),
    )


def create_runtime(
    settings: RuntimeSettings | None = None,
    session_settings: SessionSettings | None = None,
    *,
    connector: Callable[[SessionSettings, Any], TelegramConnector] | None = None,
    leases: Callable[[ServiceRuntime], Any] | None = None,
) -> ServiceRuntime:
    rt = ServiceRuntime(
        Service.TG_SESSION, __version__, migrations=MIGRATIONS, counts=_counts, settings=settings
    )
    svc = SessionService(rt, session_settings or SessionSettings(), connector=connector, leases=leases)
    _handlers(rt, svc)
    # get-performance shows each replica's part of the fleet (summed across replicas).
    rt.perf.gauge(
        "accounts_connected", lambda: rt.registry.get_sample_value("tgm_session_connected_accounts")
    )
    rt.perf.gauge("accounts_held", lambda: rt.registry.get_sample_value("tgm_session_held_accounts"))
    return rt


_runtime: ServiceRuntime | None = None


def __getattr__(name: str) -> Any:
    # `runtime` is built on first use: importing this module (tests) must not read the environment.
    global _runtime
    if name == "runtime":
        if _runtime is None:
            _runtime = create_runtime()
        return _runtime
    raise AttributeError(name)
