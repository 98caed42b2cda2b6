"""The composition root of tg-session: `build()` makes a runtime that, at every start, opens the
lease bucket, builds the use cases (`SessionApp`) and collects the account calls; it declares the
commands of every domain and the replica's periodic jobs.

Tests build several runtimes in one process, each with its own settings, fakes for Telegram
(`connector`) and for the lease bucket (`leases`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from tgm_contracts import Service
from tgm_contracts.events_session import (
    AccountAdded,
    AccountLoggedIn,
    AccountRemoved,
    AccountStatusChanged,
    LoginCodeSent,
    LoginFailed,
    LoginPasswordNeeded,
)
from tgm_contracts.settings import TelegramSettings
from tgm_contracts.streams import EXPORTS, MONITORED_CHATS
from tgm_runtime.exports import Exports

from . import __version__
from .accounts import handlers as accounts_handlers
from .accounts.membership import Memberships
from .accounts.service import Accounts
from .app import Runtime, SessionApp
from .bots import handlers as bots_handlers
from .bots.service import BotFleet
from .bots.store import BotStore
from .credentials import handlers as credentials_handlers
from .credentials.scrape import Scrapes
from .credentials.service import CredentialPool
from .extraction import handlers as extraction_handlers
from .extraction.service import Extractions
from .fleet.calls import AccountCalls
from .fleet.catchup import CatchUp
from .fleet.connections import ConnectionBuilder
from .fleet.health import Health
from .fleet.inbound import Inbound
from .fleet.leases import LeaseStore, open_lease_bucket
from .fleet.outbox import Outbox
from .fleet.outbox_store import OutboxRepo
from .fleet.peers import KnownPeers
from .fleet.pool import AccountPool
from .fleet.relay import Relay
from .fleet.send import Sender
from .fleet.update_state_store import UpdateStateStore
from .fleet.watched import WatchedChats
from .groups import handlers as groups_handlers
from .groups.service import GroupOps
from .login import handlers as login_handlers
from .login.qr import QrLogins
from .login.service import CodeLogin
from .metrics import SessionMetrics
from .migrations import MIGRATIONS
from .ports import TelegramConnector
from .proxies import handlers as proxies_handlers
from .proxies.service import Proxies
from .settings import SessionSettings
from .store import Repos, service_counts
from .vault import Vault

log = logging.getLogger("tgm.session")

#: Builds the Telegram connector from the settings and the pool's default credential (tests: a fake).
ConnectorFactory = Callable[
    [SessionSettings, Callable[[], Awaitable[tuple[int, str] | None]]], TelegramConnector
]
#: Opens the lease store of a runtime (tests: an in-memory one).
LeaseFactory = Callable[[Runtime], Awaitable[LeaseStore]]


def _peers(session: SessionApp) -> KnownPeers:
    assert session.pool.peers is not None
    return session.pool.peers


async def hear_account_changes(runtime: Runtime, repos: Repos) -> None:
    """Every replica hears every account's add, removal and state change.

    Login steps included; a core NATS subscription of its own to the events' subjects, beside the
    streams' durable consumers. What `get-accounts` keeps (the creation order, the tallies) is then
    marked old and read again when a page next asks (accounts/store.py, the `accounts-refresh`
    job). Only the subject is read; a message forged on it costs one more read, nothing else."""
    try:
        nc = runtime.nc
    except Exception:
        nc = None
    if nc is None:  # started without the bus (tests of the stores alone)
        return
    subjects = {  # subject: whether the fleet's membership changed (else a state)
        AccountAdded.SUBJECT: True,
        AccountRemoved.SUBJECT: True,
        AccountStatusChanged.SUBJECT: False,
        LoginCodeSent.SUBJECT: False,
        LoginPasswordNeeded.SUBJECT: False,
        AccountLoggedIn.SUBJECT: False,
        LoginFailed.SUBJECT: False,
    }

    async def heard(msg: Any) -> None:
        repos.accounts.changed_elsewhere(membership=subjects.get(msg.subject, False))

    for subject in subjects:
        await nc.subscribe(subject, cb=heard)


def build(
    settings: SessionSettings | None = None,
    *,
    connector: ConnectorFactory | None = None,
    leases: LeaseFactory | None = None,
) -> Runtime:
    """A tg-session runtime, not started: its use cases are built by `runtime.start()`."""
    configured = settings or SessionSettings()

    async def counts(db: Any) -> dict[str, int]:  # the runtime's database (store.py types it)
        return await service_counts(db, await runtime.app.repos.accounts.tally({}))

    runtime: Runtime = Runtime(
        Service.TG_SESSION,
        __version__,
        migrations=MIGRATIONS,
        counts=counts,
        settings=configured.runtime,
    )
    metrics = SessionMetrics(runtime.registry)

    def app() -> SessionApp:
        return runtime.app

    # The replica's periodic jobs; each reads the app of the current start.
    runtime.every(lambda: app().settings.heartbeat, lambda: app().pool.heartbeat(), "lease-heartbeat")
    claims = runtime.every(configured.claim_interval_seconds, lambda: app().pool.tick(), "lease-claims")
    runtime.every(configured.worker_interval_seconds, lambda: app().extractions.tick(), "extractions")
    runtime.every(1.0, lambda: app().inbound.outbox.drain(), "inbound-outbox")
    runtime.every(1.0, lambda: _peers(app()).flush(), "known-peers")
    # get-accounts' kept creation order and tallies, read again when a page found them old
    runtime.every(1.0, lambda: app().repos.accounts.refresh_wanted(), "accounts-refresh")
    runtime.every(600.0, lambda: _peers(app()).prune(), "known-peers-prune", first_after=60.0)

    async def logins_and_scrapes() -> None:
        await app().qr.resume()  # adopt QR logins whose replica died
        await app().scrapes.sweep()  # and end scrapes nobody runs any more

    runtime.every(configured.worker_interval_seconds * 5, logins_and_scrapes, "qr-logins-and-scrapes")
    runtime.every(lambda: app().settings.heartbeat, lambda: app().bots.tick(), "bot-accounts")

    async def make_app() -> SessionApp:
        repos = Repos(runtime.db)
        await hear_account_changes(runtime, repos)
        vault = Vault(runtime.secrets)
        if leases is not None:
            lease_store, s = await leases(runtime), configured
        else:
            lease_store, s = await open_lease_bucket(runtime.broker, configured)

        async def telegram() -> TelegramSettings:
            return await runtime.settings_section("telegram")

        async def capacity() -> int:
            return s.capacity if s.capacity is not None else (await telegram()).replica_capacity

        async def backoff_max() -> float:
            return float((await telegram()).reconnect_backoff_max_seconds)

        async def default_credential() -> tuple[int, str] | None:
            return await credentials.any_active()

        if connector is not None:
            telegram_connector = connector(s, default_credential)
        else:
            from .telegram.connector import TelethonConnector

            telegram_connector = TelethonConnector(s, default_credential)
        builder = ConnectionBuilder(repos, vault, telegram)
        calls = AccountCalls()

        async def on_terminal(account_id: str) -> None:
            # Revoked, deactivated or banned: the account leaves the pool (the state event is out).
            # Not awaited here: the caller may be the account's own run loop, which the release ends.
            runtime.spawn(pool.release(account_id), f"release-{account_id}")

        health = Health(
            repos,
            runtime.emit,
            metrics,
            runtime.settings.replica_id,
            peer_flood_cooldown=timedelta(hours=s.peer_flood_cooldown_hours),
            on_terminal=on_terminal,
        )

        def own_send(account_id: str, chat_id: int, message_id: int) -> bool:
            live = pool.get(account_id)
            return live is not None and (chat_id, message_id) in live.recent_sent

        outbox = Outbox(OutboxRepo(runtime.db), runtime.emit, metrics, runtime.settings.replica_id)
        await outbox.start()
        watched = WatchedChats(metrics)

        def monitored_chats() -> Awaitable[Any]:
            return runtime.key_value(MONITORED_CHATS)

        await watched.read_once(monitored_chats)  # known before any account connects
        runtime.spawn(watched.follow(monitored_chats), "monitored-chats")
        memberships = Memberships(repos)
        catch_up = CatchUp(UpdateStateStore(runtime.db), interval=s.catch_up_interval_seconds)

        async def saw_live(account_id: str) -> None:
            catch_up.saw_live(account_id)

        inbound = Inbound(
            outbox,
            metrics,
            own_send,
            watched,
            learn=memberships.seen,
            unlearn=memberships.removed,
            touch=saw_live,
            sent_before=repos.sends.sent,
        )
        replica_id = runtime.settings.replica_id
        # What this replica holds under a lease (accounts, bots, QR logins, scrapes): claimed, served
        # and let go of here; asked elsewhere, forwarded to the holder.
        relay = Relay(
            leases=lease_store,
            replica_id=replica_id,
            serve_account=runtime.serve_account,
            forward=runtime.request,
            spawn=runtime.spawn,
            heartbeat=s.heartbeat,
        )
        pool = AccountPool(
            repos=repos,
            connector=telegram_connector,
            builder=builder,
            relay=relay,
            health=health,
            metrics=metrics,
            settings=s,
            capacity=capacity,
            backoff_max=backoff_max,
            inbound=inbound.handlers,
            emit=runtime.emit,
            calls=calls,
            claims=claims,
            namespace=runtime.database_name(),
            catch_up=catch_up,
            peers=KnownPeers(repos),
            on_connected=memberships.listed,
        )
        credentials = CredentialPool(repos, vault, telegram_connector, pool.refresh)
        accounts = Accounts(
            repos=repos,
            vault=vault,
            pool=pool,
            credentials=credentials,
            health=health,
            leases=lease_store,
            publish=runtime.publish,
            telegram_settings=telegram,
            memberships=memberships,
        )
        login = CodeLogin(
            repos=repos,
            vault=vault,
            connector=telegram_connector,
            builder=builder,
            health=health,
            pool=pool,
            accounts=accounts,
            emit=runtime.emit,
            metrics=metrics,
        )
        qr = QrLogins(
            repos=repos,
            vault=vault,
            connector=telegram_connector,
            builder=builder,
            health=health,
            pool=pool,
            accounts=accounts,
            credentials=credentials,
            relay=relay,
            emit=runtime.emit,
            metrics=metrics,
            telegram_settings=telegram,
        )
        proxies = Proxies(
            repos=repos,
            vault=vault,
            connector=telegram_connector,
            pool=pool,
            accounts=accounts,
            telegram_settings=telegram,
        )
        groups = GroupOps(
            repos=repos,
            pool=pool,
            accounts=accounts,
            health=health,
            emit=runtime.emit,
            memberships=memberships,
        )
        sender = Sender(repos=repos, pool=pool, health=health, metrics=metrics, emit=runtime.emit)
        extractions = Extractions(
            repos=repos,
            pool=pool,
            accounts=accounts,
            health=health,
            emit=runtime.emit,
            spawn=runtime.spawn,
            settings=s,
            replica_id=replica_id,
            exports=Exports(lambda: runtime.object_store(EXPORTS)),
        )
        scrapes = Scrapes(
            repos=repos,
            vault=vault,
            pool=pool,
            accounts=accounts,
            credentials=credentials,
            relay=relay,
            emit=runtime.emit,
            settings=s,
        )
        calls.collect(pool, sender, accounts, groups, proxies, login)

        def bot_client(session: str | None, api_id: int, api_hash: str) -> Any:
            from .telegram.bot_client import TelethonBotClient

            return TelethonBotClient.build(session, api_id, api_hash, s)

        bots = BotFleet(
            store=BotStore(runtime.db),
            vault=vault,
            relay=relay,
            credential=default_credential,
            clients=bot_client,
            emit=outbox.publish,  # kept in the database while NATS is away, like the accounts' events
        )
        if s.api_id is not None and s.api_hash is not None:
            await credentials.seed(s.api_id, s.api_hash.get_secret_value())
        return SessionApp(
            settings=s,
            repos=repos,
            metrics=metrics,
            connector=telegram_connector,
            leases=lease_store,
            health=health,
            inbound=inbound,
            pool=pool,
            sender=sender,
            credentials=credentials,
            accounts=accounts,
            login=login,
            qr=qr,
            proxies=proxies,
            groups=groups,
            extractions=extractions,
            scrapes=scrapes,
            bots=bots,
        )

    runtime.provide(make_app)

    async def stop(rt: Runtime) -> None:
        # The periodic jobs have ended their round; the runs end, then every account is let go.
        try:
            session = app()
        except RuntimeError:  # the start failed before the app was built
            return
        await session.extractions.stop()
        await session.qr.stop()
        await session.scrapes.stop()
        await session.bots.stop()
        await session.pool.stop()
        await session.inbound.outbox.close()

    async def restored(rt: Runtime) -> None:
        app().pool.wake()  # the next tick lets go of accounts the restored data no longer has
        app().accounts.memberships.reset()  # the restored accounts carry their own memberships
        app().accounts.repos.accounts.forget()  # the listing's creation order and tallies
        _peers(app()).reset()  # what was saved is the restored data now: save the live rows again

    runtime.on_stop(stop)
    runtime.on_restore(restored)
    for domain in (
        accounts_handlers,
        login_handlers,
        proxies_handlers,
        credentials_handlers,
        groups_handlers,
        extraction_handlers,
        bots_handlers,
    ):
        domain.register(runtime)
    # get-performance shows each replica's part of the fleet (summed across replicas).
    runtime.perf.gauge(
        "accounts_connected", lambda: runtime.registry.get_sample_value("tgm_session_connected_accounts")
    )
    runtime.perf.gauge(
        "accounts_held", lambda: runtime.registry.get_sample_value("tgm_session_held_accounts")
    )
    return runtime
