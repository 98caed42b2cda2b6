"""Proxies and IP binding: testing a proxy (tunnel latency, exit IP, Telegram reachable through it),
pinning accounts to proxies within `telegram.maxAccountsPerProxy`, proving that an account's live
connection really goes through its proxy, and statistics per proxy."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tgm_contracts.base import Ack, Page, utcnow
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.models.session import AccountSelector, AccountState, IpBindingView, ProxyConfig, ProxyView
from tgm_contracts.rpc_session import ProxyCheck, VerifyProxy
from tgm_contracts.settings import TelegramSettings
from tgm_runtime import Conflict, DomainError, NotFound
from tgm_runtime.cursor import Keyset, encode
from tgm_runtime.routes import answers

from ..accounts.service import Accounts, new_id
from ..fleet.calls import account_call
from ..fleet.connections import open_proxy, proxy_spec, seal_proxy
from ..fleet.health import HOLDABLE
from ..fleet.pool import AccountPool, LiveAccount
from ..ports import ProxySpec, TelegramConnector, TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos
from ..vault import Vault
from ..views import binding_view


@dataclass(frozen=True)
class _NestedKeyset(Keyset):
    """`Keyset` over dotted fields: the cursor reads `binding.bound_at` inside the document (the
    base class reads top-level keys only); the query, sort and cursor format are the base's."""

    def cursor_of(self, doc: Doc) -> str:
        def at(path: str) -> object:
            value: object = doc
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value

        return encode([at(f) for f in self.fields], self.tag)


# ip-get-all-bindings pages the latest bound first; ties on bound_at by _id (index: store.py, migration 6).
BINDING_ORDER = _NestedKeyset(("binding.bound_at", "_id"), descending=True)


async def _same_host(a: str, b: str) -> bool:
    """Whether two host names or addresses name the same address (the socket peer is an IP)."""
    if a == b:
        return True
    loop = asyncio.get_running_loop()

    async def addrs(host: str) -> set[str]:
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return {host}
        return {str(i[4][0]) for i in infos}

    return bool(await addrs(a) & await addrs(b))


@dataclass(kw_only=True, eq=False)
class Proxies:
    repos: Repos
    vault: Vault
    connector: TelegramConnector
    pool: AccountPool
    accounts: Accounts
    telegram_settings: Callable[[], Awaitable[TelegramSettings]]

    # --- test --------------------------------------------------------------------------------------

    async def probe(
        self, proxy: ProxySpec, *, timeout: float, check_telegram: bool
    ) -> accounts_cmd.ProxyTestResult:
        from ..telegram.connector import ProxyProblem

        view = ProxyView(
            type=proxy.type,
            host=proxy.host,
            port=proxy.port,
            username=proxy.username,
            has_password=proxy.password is not None,
            has_secret=proxy.secret is not None,
            rdns=proxy.rdns,
        )
        latency = exit_ip = tg_latency = None
        reachable: bool | None = None
        error = kind = None
        try:
            latency = round(await self.connector.probe_proxy(proxy, timeout), 2)
        except ProxyProblem as exc:
            return accounts_cmd.ProxyTestResult(
                ok=False, proxy=view, error=str(exc), error_kind=exc.kind, tested_at=utcnow()
            )
        if proxy.type != "mtproxy":
            try:
                exit_ip = await self.connector.exit_ip(proxy, timeout)
            except ProxyProblem as exc:
                error, kind = f"exit IP unknown: {exc}", None
        if check_telegram:
            try:
                tg_latency = round(await self.connector.test_telegram(proxy, timeout), 2)
                reachable = True
            except (TelegramUnreachable, TelegramFailure, OSError) as exc:
                reachable = False
                error, kind = f"Telegram not reachable through the proxy: {exc}", "telegram"
        return accounts_cmd.ProxyTestResult(
            ok=reachable is not False,
            proxy=view,
            latency_ms=latency,
            exit_ip=exit_ip,
            telegram_reachable=reachable,
            telegram_latency_ms=tg_latency,
            error=error,
            error_kind=kind,
            tested_at=utcnow(),
        )

    @answers(accounts_cmd.TestProxy)
    async def test(self, req: accounts_cmd.ProxyTestRequest) -> accounts_cmd.ProxyTestResult:
        return await self.probe(
            proxy_spec(req), timeout=req.timeout_seconds, check_telegram=req.check_telegram
        )

    # --- bind / unbind -----------------------------------------------------------------------------

    @answers(accounts_cmd.IpBind)
    async def bind(self, req: accounts_cmd.IpBindRequest) -> IpBindingView:
        doc = await self.accounts.find(req)
        settings = await self.telegram_settings()
        used = await self.repos.accounts.count_by_proxy(req.proxy.host, req.proxy.port, exclude=doc["_id"])
        if used >= settings.max_accounts_per_proxy:
            raise Conflict(
                f"proxy {req.proxy.host}:{req.proxy.port} already carries {used} account(s); "
                f"telegram.maxAccountsPerProxy is {settings.max_accounts_per_proxy}"
            )
        result = None
        if req.verify:
            result = await self.probe(proxy_spec(req.proxy), timeout=15, check_telegram=True)
            if not result.ok or result.latency_ms is None:
                raise Conflict(
                    f"the proxy failed its test, not binding: {result.error}",
                    {"errorKind": result.error_kind, "error": result.error},
                )
        country = (req.country or req.proxy.country or "").upper() or None
        cfg = req.proxy.model_copy(
            update={"country": country, "kind": req.kind if req.kind != "unknown" else req.proxy.kind}
        )
        enc, view = seal_proxy(
            self.vault, ProxyConfig.model_validate(cfg.model_dump(by_alias=False)), doc["_id"]
        )
        now = utcnow()
        binding = {
            "bound_at": now,
            "is_active": True,
            "reason": req.reason,
            "exit_ip": result.exit_ip if result else None,
            "country": country,
            "kind": cfg.kind,
            "last_verified_at": now if result else None,
            "success_count": 1 if result else 0,
            "fail_count": 0,
            "total_requests": 1 if result else 0,
            "avg_latency_ms": result.latency_ms if result else None,
        }
        before = doc.get("proxy_view")
        updated = await self.repos.accounts.set(
            doc["_id"], {"proxy_enc": enc, "proxy_view": view, "binding": binding}
        )
        await self.repos.ip_changes.insert(
            {
                "_id": new_id("ipc"),
                "account_id": doc["_id"],
                "action": "rebind" if before else "bind",
                "from_proxy": f"{before['host']}:{before['port']}" if before else None,
                "to_proxy": f"{req.proxy.host}:{req.proxy.port}",
                "reason": req.reason,
                "at": now,
            }
        )
        if req.reconnect and doc.get("session_enc"):
            await self.pool.refresh(doc["_id"])
        assert updated is not None
        out = binding_view(updated)
        assert out is not None
        return out

    @answers(accounts_cmd.IpUnbind)
    async def unbind(self, req: accounts_cmd.IpUnbindRequest) -> Ack:
        doc = await self.accounts.find(req)
        if not doc.get("proxy_view"):
            raise Conflict(f"account {doc['_id']} has no proxy binding")
        settings = await self.telegram_settings()
        if settings.require_proxy and req.reconnect:
            raise Conflict("telegram.requireProxy is on: the account may not connect without a proxy")
        before = doc["proxy_view"]
        await self.repos.accounts.set(doc["_id"], {}, unset=["proxy_enc", "proxy_view", "binding"])
        await self.repos.ip_changes.insert(
            {
                "_id": new_id("ipc"),
                "account_id": doc["_id"],
                "action": "unbind",
                "from_proxy": f"{before['host']}:{before['port']}",
                "to_proxy": None,
                "reason": req.reason,
                "at": utcnow(),
            }
        )
        if req.reconnect and doc.get("session_enc"):
            await self.pool.refresh(doc["_id"])
        return Ack(affected=1)

    @answers(accounts_cmd.IpGetBinding)
    async def get_binding(self, req: AccountSelector) -> accounts_cmd.IpBindingInfo:
        doc = await self.accounts.find(req)
        return accounts_cmd.IpBindingInfo(account_id=doc["_id"], binding=binding_view(doc))

    @answers(accounts_cmd.IpGetAllBindings)
    async def all_bindings(self, req: accounts_cmd.IpGetAllBindingsRequest) -> Page[IpBindingView]:
        q: Doc = {"proxy_view": {"$ne": None}, "binding": {"$ne": None}}
        if req.active_only:
            q["binding.is_active"] = True
        if req.proxy_host:
            q["proxy_view.host"] = req.proxy_host
        if req.country:
            q["binding.country"] = req.country.upper()
        if req.kind:
            q["binding.kind"] = req.kind
        # A keyset page, the latest bound first (a bad or foreign cursor is Invalid: VALIDATION_ERROR).
        docs = await self.repos.accounts.find(
            BINDING_ORDER.where(q, req.cursor), sort=BINDING_ORDER.sort(), limit=req.limit + 1
        )
        docs, next_cursor = BINDING_ORDER.page(docs, req.limit)
        total = await self.repos.accounts.count(q)
        items = [v for v in (binding_view(d) for d in docs) if v is not None]
        return Page[IpBindingView](items=items, next_cursor=next_cursor, total=total)

    # --- verify ------------------------------------------------------------------------------------

    @answers(accounts_cmd.IpVerifyBinding)
    async def verify(self, req: AccountSelector) -> accounts_cmd.IpVerification:
        doc = await self.accounts.find(req)
        if not doc.get("proxy_enc"):
            raise Conflict(f"account {doc['_id']} has no proxy binding to verify")
        if doc.get("session_enc") and AccountState(doc["state"]) in HOLDABLE:
            try:
                check = await self.pool.call(
                    VerifyProxy, doc["_id"], AccountSelector(account_id=doc["_id"]), timeout=60
                )
            except DomainError as exc:
                if exc.code.value not in ("UNAVAILABLE", "TIMEOUT"):
                    raise
                check = await self._proxy_only(doc)
        else:
            check = await self._proxy_only(doc)
        binding = doc.get("binding") or {}
        expected = binding.get("exit_ip")
        changed = bool(expected and check.exit_ip and expected != check.exit_ip)
        valid = check.proxy_reachable and check.via_proxy is not False and not changed
        await self._record(doc, check, valid)
        return accounts_cmd.IpVerification(
            account_id=doc["_id"],
            is_valid=valid,
            proxy_reachable=check.proxy_reachable,
            exit_ip=check.exit_ip,
            expected_exit_ip=expected,
            ip_changed=changed,
            latency_ms=check.latency_ms,
            error=check.error
            or (
                None
                if check.via_proxy is not False
                else f"the live connection goes to {check.socket_peer}, not the proxy"
            ),
            checked_at=utcnow(),
        )

    async def _proxy_only(self, doc: Doc) -> ProxyCheck:
        from ..telegram.connector import ProxyProblem

        proxy = open_proxy(self.vault, doc.get("proxy_enc"), doc["_id"])
        assert proxy is not None
        try:
            latency = await self.connector.probe_proxy(proxy, 15)
        except ProxyProblem as exc:
            return ProxyCheck(account_id=doc["_id"], connected=False, proxy_reachable=False, error=str(exc))
        exit_ip = None
        error = None
        if proxy.type != "mtproxy":
            try:
                exit_ip = await self.connector.exit_ip(proxy, 15)
            except ProxyProblem as exc:
                error = f"exit IP unknown: {exc}"
        return ProxyCheck(
            account_id=doc["_id"],
            connected=False,
            proxy_reachable=True,
            exit_ip=exit_ip,
            latency_ms=round(latency, 2),
            error=error,
        )

    @account_call(VerifyProxy)
    async def verify_here(self, live: LiveAccount, req: AccountSelector) -> ProxyCheck:
        doc = await self.repos.accounts.get(live.account_id)
        if doc is None:
            raise NotFound(f"no account {live.account_id}")
        check = await self._proxy_only(doc)
        proxy = open_proxy(self.vault, doc.get("proxy_enc"), doc["_id"])
        peer = live.client.socket_peer() if live.connected and live.client is not None else None
        via = None
        if peer is not None and proxy is not None:
            host, _, port = peer.rpartition(":")
            via = int(port) == proxy.port and await _same_host(host, proxy.host)
        return check.model_copy(update={"connected": live.connected, "socket_peer": peer, "via_proxy": via})

    async def _record(self, doc: Doc, check: ProxyCheck, ok: bool) -> None:
        binding = dict(doc.get("binding") or {"bound_at": utcnow(), "is_active": True})
        total = binding.get("total_requests", 0) + 1
        if check.latency_ms is not None:
            prev = binding.get("avg_latency_ms")
            n = binding.get("success_count", 0)
            binding["avg_latency_ms"] = round(
                check.latency_ms if prev is None else (prev * n + check.latency_ms) / (n + 1), 2
            )
        binding.update(
            total_requests=total,
            success_count=binding.get("success_count", 0) + (1 if ok else 0),
            fail_count=binding.get("fail_count", 0) + (0 if ok else 1),
            last_verified_at=utcnow(),
            last_error=None if ok else (check.error or "verification failed"),
        )
        if not binding.get("exit_ip") and check.exit_ip:
            binding["exit_ip"] = check.exit_ip
        await self.repos.accounts.set(doc["_id"], {"binding": binding})

    # --- statistics --------------------------------------------------------------------------------

    @answers(accounts_cmd.IpGetStatistics)
    async def statistics(self) -> accounts_cmd.IpStatistics:
        settings = await self.telegram_settings()
        docs = await self.repos.accounts.find({}, projection={"proxy_view": 1, "binding": 1})
        bound = [d for d in docs if d.get("proxy_view")]
        by_proxy: dict[str, list[Doc]] = {}
        for d in bound:
            by_proxy.setdefault(f"{d['proxy_view']['host']}:{d['proxy_view']['port']}", []).append(d)
        usage = []
        latencies = []
        for group in by_proxy.values():
            lat = [
                b["binding"]["avg_latency_ms"]
                for b in group
                if (b.get("binding") or {}).get("avg_latency_ms") is not None
            ]
            latencies += lat
            errors = [
                (b.get("binding") or {}).get("last_error")
                for b in group
                if (b.get("binding") or {}).get("last_error")
            ]
            usage.append(
                accounts_cmd.ProxyUsage(
                    proxy=ProxyView.model_validate(group[0]["proxy_view"]),
                    accounts=len(group),
                    account_ids=[b["_id"] for b in group],
                    over_capacity=len(group) > settings.max_accounts_per_proxy,
                    failures=sum((b.get("binding") or {}).get("fail_count", 0) for b in group),
                    avg_latency_ms=round(sum(lat) / len(lat), 2) if lat else None,
                    last_error=errors[-1] if errors else None,
                )
            )
        active = [d for d in bound if (d.get("binding") or {}).get("is_active", True)]
        changes = await self.repos.ip_changes.find({}, sort=[("at", -1)], limit=20)
        return accounts_cmd.IpStatistics(
            total_bindings=len(bound),
            active_bindings=len(active),
            inactive_bindings=len(bound) - len(active),
            accounts_without_proxy=len(docs) - len(bound),
            max_accounts_per_proxy=settings.max_accounts_per_proxy,
            by_country=dict(
                Counter(
                    (d.get("binding") or {}).get("country") or d["proxy_view"].get("country") or "??"
                    for d in bound
                )
            ),
            by_kind=dict(
                Counter(
                    (d.get("binding") or {}).get("kind") or d["proxy_view"].get("kind") or "unknown"
                    for d in bound
                )
            ),
            by_type=dict(Counter(d["proxy_view"]["type"] for d in bound)),
            proxies=usage,
            avg_latency_ms=round(sum(latencies) / len(latencies), 2) if latencies else None,
            total_changes=await self.repos.ip_changes.count({}),
            recent_changes=[
                accounts_cmd.IpChange(
                    account_id=c["account_id"],
                    action=c["action"],
                    from_proxy=c.get("from_proxy"),
                    to_proxy=c.get("to_proxy"),
                    reason=c.get("reason"),
                    at=c["at"],
                )
                for c in changes
            ],
        )
