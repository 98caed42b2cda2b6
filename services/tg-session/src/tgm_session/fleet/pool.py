"""The session pool of one replica: which accounts it holds (leases), their live Telegram clients,
reconnects with backoff, and routing of account work to whichever replica holds the account.

Rules that keep a session in one place:
- a client is connected only while this replica holds the account's lease, and only after the lease
  was created; it is disconnected *before* a lease is released;
- a renewal that fails (moved or expired) stops the client at once; one that cannot be confirmed
  stops it before the TTL could have run out (a fence computed from when the renewal was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tgm_contracts import AccountRpc, ErrorCode, subjects
from tgm_contracts.base import Ack, Request, utcnow
from tgm_contracts.events_session import AccountLoggedIn, LeaseMoved
from tgm_contracts.models.session import AccountState
from tgm_contracts.rpc_session import Reload, ReloadRequest
from tgm_runtime import CallContext, Conflict, DomainError, NotFound
from tgm_runtime.tasks import Periodic

from ..capabilities import Emit
from ..metrics import SessionMetrics
from ..ports import AccountClient, InboundHandlers, TelegramConnector, TelegramFailure, TelegramUnreachable
from ..settings import SessionSettings
from ..store import Doc, Repos
from .calls import AccountCalls, LiveCall, account_call
from .catchup import CatchUp
from .connections import ConnectionBuilder
from .health import HOLDABLE, TERMINAL, Health
from .leases import Lease, LeaseLost, account_key, replica_key
from .peers import KnownPeers
from .relay import Relay
from .serving import Handler, Routes, end_subscription

log = logging.getLogger("tgm.session.pool")


@dataclass
class LiveAccount:
    account_id: str
    lease: Lease
    client: AccountClient | None = None
    subscription: Any = None
    task: asyncio.Task[Any] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    reloading: bool = False
    last_probe: float = field(default_factory=time.monotonic)
    #: (chat id, message id) of messages this replica sent: their echo is not an "external" send.
    recent_sent: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=500))
    send_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    renew_sent_at: float = field(default_factory=time.monotonic)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected() and self.ready.is_set()


class AccountPool:
    def __init__(
        self,
        *,
        repos: Repos,
        connector: TelegramConnector,
        builder: ConnectionBuilder,
        relay: Relay,
        health: Health,
        metrics: SessionMetrics,
        settings: SessionSettings,
        capacity: Callable[[], Awaitable[int]],
        backoff_max: Callable[[], Awaitable[float]],
        inbound: Callable[[str], InboundHandlers],
        emit: Emit,
        calls: AccountCalls,
        claims: Periodic,
        namespace: str = "default",
        catch_up: CatchUp | None = None,
        peers: KnownPeers | None = None,
        on_connected: Callable[[str, Any], Awaitable[None]] | None = None,
    ) -> None:
        self.namespace = namespace
        #: Called with (account id, client) after every connect and catch-up (memberships from the
        #: dialogs); must not raise.
        self.on_connected = on_connected
        #: The peers each account saw, put into every new client of it (`peers.py`).
        self.peers = peers
        #: Missed updates fetched at every connect and swept while connected (`catchup.py`).
        self.catch_up = catch_up
        self.repos = repos
        self.connector = connector
        self.builder = builder
        #: This replica's leases `acct.<id>` (and its presence), what it serves, spawns and forwards.
        self.relay = relay
        self.health = health
        self.metrics = metrics
        self.settings = settings
        self.capacity = capacity
        self.backoff_max = backoff_max
        self.inbound = inbound
        self.emit = emit
        self.calls = calls
        self._claims = claims
        self.live: dict[str, LiveAccount] = {}
        self._sem = asyncio.Semaphore(settings.connect_concurrency)
        self._fleet_at = 0.0
        #: Observers of successful connects (benchmarks and tests read this).
        self.connected_at: dict[str, float] = {}

    @property
    def replica_id(self) -> str:
        return self.relay.replica_id

    # --- lifecycle ---------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Let go of every account at once (the heartbeat and claim jobs have stopped already)."""
        await asyncio.gather(*(self._drop(live, "released", now=True) for live in list(self.live.values())))

    def wake(self) -> None:
        """Look for accounts to claim now rather than at the next tick (a login just finished)."""
        self._claims.wake()

    # --- the periodic jobs (declared in bootstrap: `lease-heartbeat`, `lease-claims`) ----------------

    async def heartbeat(self) -> None:
        """Renew this replica's presence and every lease it holds (every `settings.heartbeat` s)."""
        try:
            await self.relay.leases.touch(replica_key(self.namespace, self.replica_id), self.replica_id)
        except Exception as exc:
            log.warning("presence heartbeat failed: %s", exc)
        fence = self.settings.lease_ttl_seconds - self.settings.heartbeat - 1.0

        async def renew(live: LiveAccount) -> None:
            sent = time.monotonic()
            try:
                await self.relay.leases.renew(live.lease)
                live.renew_sent_at = sent
            except LeaseLost:
                log.warning("lease of %s was lost; stopping its client", live.account_id)
                await self._drop(live, "expired", delete=False)
            except Exception as exc:
                if time.monotonic() - live.renew_sent_at > fence:
                    # The lease may have expired by now: never keep using a session we may not hold.
                    log.warning(
                        "lease of %s could not be renewed (%s); stopping its client", live.account_id, exc
                    )
                    await self._drop(live, "expired", delete=False)

        await asyncio.gather(*(renew(live) for live in list(self.live.values())))

    async def tick(self) -> None:
        """Claim up to a fair share, give back extras, end passed waits, probe idle connections."""
        eligible = await self.repos.accounts.eligible_ids([s.value for s in HOLDABLE])
        eligible_set = set(eligible)
        for account_id in [a for a in self.live if a not in eligible_set]:
            await self._drop(self.live[account_id], "released")
        snapshot = await self.relay.leases.snapshot()
        me = replica_key(self.namespace, self.replica_id)
        prefix = me.rsplit(".", 1)[0] + "."
        replicas = {k for k in snapshot if k.startswith(prefix)} | {me}
        held = {k[5:]: v for k, v in snapshot.items() if k.startswith("acct.")}
        capacity = await self.capacity()
        fair = math.ceil(len(eligible) / max(1, len(replicas))) if eligible else 0
        target = min(capacity, fair)
        mine = len(self.live)
        if mine < target:
            free = [a for a in eligible if a not in self.live and held.get(a) in (None, self.replica_id)]
            random.shuffle(free)  # replicas starting together should not all fight for the same keys
            for account_id in free:
                if len(self.live) >= target:
                    break
                await self._claim(account_id, adopt=held.get(account_id) == self.replica_id)
        elif mine > target + 1 and len(replicas) > 1 and not [a for a in eligible if a not in held]:
            extra = sorted(self.live)[: min(mine - target, 50)]
            for account_id in extra:
                await self._drop(self.live[account_id], "rebalanced")
        await self._housekeeping()

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        for live in list(self.live.values()):
            doc = await self.repos.accounts.get(live.account_id)
            if doc is None:
                continue
            if doc["state"] in (AccountState.FLOOD_WAIT, AccountState.PEER_FLOOD):
                await self.health.recover(doc)
            if live.connected and now - live.last_probe > self.settings.probe_interval_seconds:
                live.last_probe = now
                self.relay.spawn(self._probe(live), f"probe-{live.account_id}")
            if live.connected and self.catch_up is not None and self.catch_up.due(live.account_id, now):
                self.relay.spawn(self._sweep(live), f"catch-up-{live.account_id}")
        self.metrics.held.set(len(self.live))
        self.metrics.connected.set(sum(1 for live in self.live.values() if live.connected))
        if now - self._fleet_at > 10:
            self._fleet_at = now
            # the kept whole-fleet tally (accounts/store.py: read again after this replica's writes
            # and any replica's account events), not a $group of its own: that one scanned every
            # account every 10 s (~250 ms of the embedded database at 10,000 accounts)
            self.metrics.set_fleet(await self.repos.accounts.tally({}))

    async def _sweep(self, live: LiveAccount) -> None:
        if self.catch_up is not None and live.client is not None and live.connected:
            await self.catch_up.run(live.account_id, live.client)

    async def _probe(self, live: LiveAccount) -> None:
        assert live.client is not None
        try:
            await live.client.ping()
        except (TelegramFailure, TelegramUnreachable) as exc:
            await self.health.failure(live.account_id, exc, method="updates.getState")

    # --- claiming and connecting -------------------------------------------------------------------

    async def _claim(self, account_id: str, *, adopt: bool = False) -> LiveAccount | None:
        lease = await self.relay.claim(account_key(account_id), adopt=adopt)
        if lease is None:
            return None
        live = LiveAccount(account_id, lease)
        self.live[account_id] = live
        self.metrics.lease_moves.labels("acquired").inc()
        await self.emit(LeaseMoved(account_id=account_id, to_replica=self.replica_id, reason="acquired"))
        live.subscription = await self.relay.serve_account(account_id, self.routes())
        live.task = self.relay.spawn(self._run(live), f"account-{account_id}")
        return live

    async def _run(self, live: LiveAccount) -> None:
        """Connect, then keep the account connected while the lease is ours (backoff between tries)."""
        delay = self.settings.reconnect_backoff_min_seconds
        first = True
        while not live.stopping:
            try:
                async with self._sem:
                    if live.stopping:
                        return
                    await self._connect(live)
                if not first:
                    self.metrics.reconnects.labels("ok").inc()
                first = False
                delay = self.settings.reconnect_backoff_min_seconds
                if self.catch_up is not None and live.client is not None and not live.stopping:
                    # What arrived while nobody held the account (never raises; a sweep retries).
                    await self.catch_up.run(live.account_id, live.client)
                if self.on_connected is not None and live.client is not None and not live.stopping:
                    await self.on_connected(live.account_id, live.client)
                if live.client is None:
                    continue
                await live.client.wait_disconnected()
                live.ready.clear()
                if live.stopping:
                    return
                if live.reloading:  # asked to reconnect with a new session, proxy or device
                    continue
                log.info("account %s lost its connection; reconnecting", live.account_id)
                await self.health.transition(live.account_id, AccountState.DISCONNECTED, "connection lost")
                await self._mark(live, connected=False)
            except asyncio.CancelledError:
                raise
            except (TelegramFailure, TelegramUnreachable) as exc:
                live.ready.clear()
                if not first:
                    self.metrics.reconnects.labels("failed").inc()
                first = False
                await self._close_client(live)
                await self.health.failure(live.account_id, exc, method="connect")
                doc = await self.repos.accounts.get(live.account_id)
                if doc is None or AccountState(doc["state"]) in TERMINAL:
                    await self._drop(live, "released")
                    return
            except _NotUsable as exc:
                log.info("account %s is not usable: %s", live.account_id, exc)
                await self._drop(live, "released")
                return
            except Exception:
                if live.stopping:  # torn down on purpose while it connected
                    return
                log.exception("account %s: unexpected error while connecting", live.account_id)
                await self._close_client(live)
            if live.stopping:
                return
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, await self.backoff_max())

    async def _connect(self, live: LiveAccount) -> None:
        live.reloading = False
        doc = await self.repos.accounts.get(live.account_id)
        if doc is None or not doc.get("session_enc") or AccountState(doc["state"]) in TERMINAL:
            raise _NotUsable("no usable session")
        started = time.perf_counter()
        spec = await self.builder.for_account(doc)
        client = self.connector.client(spec)
        client.set_inbound(self.inbound(live.account_id))
        if self.peers is not None:  # before connecting: the first update may need them already
            await self.peers.attach(live.account_id, client)
        live.client = client
        await client.connect()
        me = await client.get_me()
        if me is None:
            raise TelegramFailure("AUTH_KEY_UNREGISTERED", method="users.getUsers")
        if me.phone and me.phone != doc["phone"]:
            await self.health.transition(doc, AccountState.UNAUTHORIZED, "SESSION_OF_ANOTHER_PHONE")
            raise _NotUsable("the session belongs to another phone")
        if live.stopping:
            await self._close_client(live)
            return
        profile = {**(doc.get("profile") or {}), **me.model_dump(exclude={"bio"}, by_alias=False)}
        profile["bio"] = (doc.get("profile") or {}).get("bio")
        first_time = not doc.get("last_login_at")
        now = utcnow()
        fields: Doc = {
            "profile": profile,
            "connected": True,
            "holder": self.replica_id,
            "last_active_at": now,
        }
        if first_time:
            fields["last_login_at"] = now
        await self.repos.accounts.set(live.account_id, fields)
        state = AccountState(doc["state"])
        if state in (AccountState.DISCONNECTED, AccountState.PROXY_ERROR):
            await self.health.transition(live.account_id, AccountState.ACTIVE, "connected")
        live.ready.set()
        live.last_probe = time.monotonic()
        self.connected_at[live.account_id] = time.time()
        self.metrics.connect_seconds.observe(time.perf_counter() - started)
        if first_time:
            await self.emit(
                AccountLoggedIn(account_id=live.account_id, phone=doc["phone"], method="session", profile=me)
            )

    async def _mark(self, live: LiveAccount, *, connected: bool) -> None:
        await self.repos.accounts.set_if_holder(live.account_id, self.replica_id, {"connected": connected})

    async def _close_client(self, live: LiveAccount) -> None:
        client, live.client = live.client, None
        if client is not None:
            await client.disconnect()

    async def _drop(self, live: LiveAccount, reason: str, *, delete: bool = True, now: bool = False) -> None:
        """Stop using the account here: disconnect first, then stop serving, then give the lease up."""
        if self.live.get(live.account_id) is not live:
            return
        del self.live[live.account_id]
        live.stopping = True
        live.ready.clear()
        # The run task goes before its client: closing a Telethon client under a connect() still in
        # progress raised AttributeError inside Telethon (a removal while the account connected).
        if live.task is not None and live.task is not asyncio.current_task():
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)
        await self._close_client(live)
        if self.peers is not None:
            await self.peers.detach(live.account_id)
        with contextlib.suppress(Exception):
            await self.repos.accounts.set_if_holder(
                live.account_id, self.replica_id, {"connected": False, "holder": None}
            )

        async def release() -> None:
            if delete:
                await self.relay.leases.release(live.lease)

        # The client is gone already; the subscription and then the lease follow (after the reply
        # when a handler of this account is what let go of it).
        await end_subscription(self.relay.spawn, live.subscription, release, now=now)
        self.connected_at.pop(live.account_id, None)
        if self.catch_up is not None:
            self.catch_up.forget(live.account_id)
        self.metrics.lease_moves.labels(reason).inc()
        await self.emit(LeaseMoved(account_id=live.account_id, from_replica=self.replica_id, reason=reason))

    # --- used by use cases ---------------------------------------------------------------------------

    def get(self, account_id: str) -> LiveAccount | None:
        return self.live.get(account_id)

    async def acquire(self, account_id: str) -> LiveAccount | None:
        """This replica's live account: held already, or claimed now if nobody holds it."""
        live = self.live.get(account_id)
        if live is not None:
            return live
        doc = await self.repos.accounts.get(account_id)
        if doc is None or not doc.get("session_enc") or AccountState(doc["state"]) not in HOLDABLE:
            return None
        if len(self.live) >= await self.capacity():
            return None
        return await self._claim(account_id)

    async def client_of(self, live: LiveAccount, timeout: float | None = None) -> AccountClient:
        """The connected client, waiting a little for a connection in progress."""
        if not live.ready.is_set():
            try:
                await asyncio.wait_for(live.ready.wait(), timeout or self.settings.connect_timeout_seconds)
            except TimeoutError:
                raise DomainError(
                    ErrorCode.UNAVAILABLE,
                    f"account {live.account_id} is not connected right now; retry later",
                ) from None
        assert live.client is not None
        return live.client

    async def call(
        self, rpc: type[AccountRpc], account_id: str, request: Request, *, timeout: float = 30.0
    ) -> Any:
        """Run the account call `rpc` here if this replica holds (or can claim) the account, or
        forward it to the holder: the work is the one `@account_call(rpc)` method."""
        live = await self.acquire(account_id)
        if live is not None:
            return await self.calls.of(rpc)(live, request)
        doc = await self.repos.accounts.get(account_id)
        if doc is None:
            raise NotFound(f"no account {account_id}")
        if not doc.get("session_enc") or AccountState(doc["state"]) not in HOLDABLE:
            raise Conflict(
                f"account {account_id} is {doc['state']}: it has no usable Telegram session (log it in first)"
            )
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        return await self.relay.forward(rpc.subject(account_id), body, rpc.Response, timeout)

    def routes(self) -> Routes:
        """What the holder serves on `tgm.acct.<id>.>`: every collected account call."""

        def served(work: LiveCall) -> Handler:
            async def handler(req: Any, ctx: CallContext[Any]) -> Any:
                account_id = subjects.account_of(ctx.subject)
                live = self.live.get(account_id)
                if live is None:
                    raise DomainError(
                        ErrorCode.UNAVAILABLE, f"account {account_id} is not held here any more; retry"
                    )
                return await work(live, req)

            return handler

        return {rpc.NAME: (rpc, served(work)) for rpc, work in self.calls}

    async def refresh(self, account_id: str) -> None:
        """The account's session, proxy, device or credential changed: its holder reconnects."""
        if await self.reload(account_id):
            return
        holder = await self.relay.leases.holder(account_key(account_id))
        if holder is None or holder == self.replica_id:
            self.wake()
            return
        try:
            await self.relay.forward(Reload.subject(account_id), {"reason": "session"}, Ack, 10)
        except DomainError as exc:
            log.info("could not ask the holder of %s to reconnect: %s", account_id, exc.message)

    @account_call(Reload)
    async def reload_here(self, live: LiveAccount, req: ReloadRequest) -> Ack:
        """Asked by another replica: reconnect with the stored session, or let go if it is gone."""
        doc = await self.repos.accounts.get(live.account_id)
        if doc is None or not doc.get("session_enc"):
            await self.release(live.account_id)
        else:
            await self.reload(live.account_id)
        return Ack(affected=1)

    async def reload(self, account_id: str) -> bool:
        """Reconnect a held account with its current session, proxy and device. False if not held here."""
        live = self.live.get(account_id)
        if live is None:
            return False
        live.reloading = True
        live.ready.clear()
        await self._close_client(live)  # the run loop sees the disconnect and connects again
        return True

    async def release(self, account_id: str, reason: str = "released") -> bool:
        live = self.live.get(account_id)
        if live is None:
            return False
        await self._drop(live, reason)
        return True


class _NotUsable(Exception):
    pass
