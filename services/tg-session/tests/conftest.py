"""tg-session test fixtures: the emulator (real MTProto, real Telethon), real nats-server and database
(from `tgm_testing`), and replicas of tg-session running in this process."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from tg_emulator import testing as emulator_fixtures
from tg_emulator.keys import PUBLIC_KEY_PEM
from tgm_contracts import Command
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import signed_headers
from tgm_session.app import Runtime, SessionApp
from tgm_session.bootstrap import build
from tgm_session.settings import SessionSettings
from tgm_testing.procs import wait_for_async

# The emulator's fixtures, by name: a running emulator and its world.
tg_emulator = emulator_fixtures.tg_emulator
tg_world = emulator_fixtures.tg_world


@pytest_asyncio.fixture
async def devsite(tg_world: Any) -> AsyncIterator[Any]:
    from tg_emulator.devsite import DevSite

    site = DevSite(tg_world)
    await site.start()
    try:
        yield site
    finally:
        await site.stop()


class ProxyServer:
    """A real proxy server (PyPI pproxy) on 127.0.0.2: what it forwards leaves from 127.0.0.2, so the
    far end can tell proxied traffic from direct traffic (which comes from 127.0.0.1)."""

    host = "127.0.0.2"

    def __init__(self, kind: str, port: int, user: str | None, password: str | None, handler: Any) -> None:
        self.kind, self.port, self.user, self.password, self.handler = kind, port, user, password, handler

    def url(self, password: str | None = ...) -> str:  # type: ignore[assignment]
        pw = self.password if password is ... else password
        auth = f"{self.user}:{pw}@" if self.user else ""
        return f"{self.kind}://{auth}{self.host}:{self.port}"

    def close(self) -> None:
        self.handler.close()


@pytest_asyncio.fixture
async def proxies() -> AsyncIterator[Callable[..., Awaitable[ProxyServer]]]:
    import pproxy
    from tgm_testing.procs import free_port

    made: list[ProxyServer] = []

    async def make(kind: str = "socks5", user: str | None = None, password: str | None = None) -> ProxyServer:
        port = free_port(ProxyServer.host)
        auth = f"#{user}:{password}" if user else ""
        server = pproxy.Server(f"{kind}://{ProxyServer.host}:{port}/@in{auth}")
        # authtime=0: every connection authenticates (pproxy otherwise trusts an IP once it logged in).
        handler = await server.start_server(dict(rserver=[], verbose=lambda *a: None, authtime=0))
        made.append(ProxyServer(kind, port, user, password, handler))
        return made[-1]

    try:
        yield make
    finally:
        for p in made:
            p.close()


MASTER_KEY = base64.b64encode(b"k" * 32).decode()
API_ID = 1
API_HASH = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def rsa_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "emulator-rsa.pem"
    path.write_text(PUBLIC_KEY_PEM)
    return path


class Replica:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @property
    def svc(self) -> SessionApp:
        return self.rt.app

    @property
    def db(self) -> Any:
        return self.rt.db

    async def call(
        self, cmd: type[Command], payload: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict:
        """Through NATS, as the gateway would: the raw envelope."""
        return await self.request(cmd.SUBJECT, payload or {}, timeout)

    async def ok(self, cmd: type[Command], payload: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        reply = await self.call(cmd, payload, timeout)
        assert reply["ok"], reply
        return reply["data"]

    async def request(self, subject: str, payload: dict[str, Any], timeout: float = 30) -> dict:
        data = json.dumps(payload).encode()
        headers = signed_headers(self.rt, subject, data)  # as the gateway sends a command
        msg = await self.rt.nc.request(subject, data, timeout=timeout, headers=headers)
        return json.loads(msg.data)


class Events:
    """Every tg-session event published while the test runs (a core NATS subscription)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._cond = asyncio.Condition()

    async def on(self, msg: Any) -> None:
        async with self._cond:
            self.items.append((msg.subject.split(".")[3], json.loads(msg.data)))
            self._cond.notify_all()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [d for n, d in self.items if n == name]

    async def wait(
        self, name: str, pred: Callable[[dict[str, Any]], bool] = lambda d: True, timeout: float = 15
    ):
        async def _wait() -> dict[str, Any]:
            async with self._cond:
                while True:
                    for n, d in self.items:
                        if n == name and pred(d):
                            return d
                    await self._cond.wait()

        return await asyncio.wait_for(_wait(), timeout)


@pytest_asyncio.fixture
async def events(nats_server: Any) -> AsyncIterator[Events]:
    nc = await nats.connect(nats_server.url)
    ev = Events()
    await nc.subscribe("tgm.tg-session.evt.>", cb=ev.on)
    try:
        yield ev
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def replicas(
    nats_server: Any,
    mongo_server: Any,
    tg_emulator: Any,
    rsa_key_file: Path,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    """`await replicas("r1", **session_settings)` starts a tg-session replica on the shared database."""
    prefix = f"s{uuid.uuid4().hex[:8]}_"
    started: list[Replica] = []

    async def make(replica_id: str = "r1", nats_url: str | None = None, **overrides: Any) -> Replica:
        settings = RuntimeSettings(
            nats_url=nats_url or nats_server.url,
            mongodb_uri=mongo_server.uri,
            database_prefix=prefix,
            data_dir=tmp_path,
            master_key=MASTER_KEY,
            replica_id=f"{prefix}{replica_id}",
        )
        values: dict[str, Any] = dict(
            dc_host=tg_emulator.host,
            dc_port=tg_emulator.port,
            rsa_public_key_file=rsa_key_file,
            claim_interval_seconds=0.2,
            worker_interval_seconds=0.1,
            extraction_page_delay_seconds=0.0,
            request_timeout_seconds=10,
            connect_timeout_seconds=10,
            api_id=API_ID,
            api_hash=API_HASH,
        )
        values.update(overrides)
        rt = build(SessionSettings(**values, runtime=settings))
        await rt.start()
        replica = Replica(rt)
        started.append(replica)
        return replica

    try:
        yield make
    finally:
        for replica in reversed(started):
            try:
                await asyncio.wait_for(replica.rt.stop(), 20)
            except Exception:
                pass
        client = mongo_server.client()
        try:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
        finally:
            client.close()


async def until(pred: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> None:
    await wait_for_async(pred, timeout=timeout, interval=interval)


Monitor = Callable[..., Awaitable[None]]


@pytest_asyncio.fixture
async def monitored() -> AsyncIterator[Monitor]:
    """`await monitored(replica, chat_ids=[...], usernames=[...], active=True)` writes the monitored
    chats (as campaign does) and waits until the replica applied them; the key is deleted after the
    test on the server it was written to (the module's, whose bucket the module's tests share; a
    test's private server may be gone by then, and nothing is left to clean on it)."""
    from datetime import UTC, datetime

    from tgm_contracts.models.campaign import MonitoredChats
    from tgm_contracts.streams import MONITORED_CHATS, MONITORED_CHATS_KEY

    used: list[Any] = []
    revision = 0

    async def write(
        replica: Replica,
        chat_ids: tuple[int, ...] | list[int] = (),
        usernames: tuple[str, ...] | list[str] = (),
        active: bool = True,
    ) -> None:
        nonlocal revision
        revision += 1
        kv = await replica.rt.key_value(MONITORED_CHATS)
        value = MonitoredChats(
            active=active,
            chat_ids=list(chat_ids),
            usernames=list(usernames),
            revision=revision,
            updated_at=datetime.now(UTC),
        )
        await kv.put(MONITORED_CHATS_KEY, value.model_dump_json(by_alias=True).encode())
        if replica.rt.settings.nats_url not in used:
            used.append(replica.rt.settings.nats_url)
        await until(lambda: replica.svc.inbound.watched.revision == revision)

    try:
        yield write
    finally:
        import nats
        from nats.errors import NoServersError
        from nats.js.errors import BucketNotFoundError

        for url in used:  # through a connection of our own: the test may have stopped the replica
            try:
                nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
            except (NoServersError, OSError):
                continue  # a private server of the test, stopped: its store went with it
            try:
                kv = await nc.jetstream().key_value(MONITORED_CHATS.bucket)
                await kv.delete(MONITORED_CHATS_KEY)
            except BucketNotFoundError:
                pass
            finally:
                await nc.close()
