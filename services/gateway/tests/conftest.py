"""A gateway and four generic service runtimes in this process, on a real nats-server and database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from tgm_contracts import BACKEND_SERVICES, Role
from tgm_gateway.app import GatewayApp, Runtime
from tgm_gateway.bootstrap import build, build_app
from tgm_gateway.settings import GatewaySettings
from tgm_runtime import RuntimeSettings, ServiceRuntime
from tgm_testing.procs import free_port, wait_for_async


@dataclass
class System:
    url: str
    admin_key: str
    data_dir: Path
    app: Any
    runtime: Runtime
    runtimes: dict[str, ServiceRuntime]
    nats_url: str

    @property
    def gateway(self) -> GatewayApp:
        return self.runtime.app

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def key(self, role: Role) -> str:
        key, _ = await self.gateway.keys.create(f"test-{role.label}", role)
        return key


async def start_system(nats_url: str, mongo_uri: str, data_dir: Path, services=BACKEND_SERVICES) -> Any:
    prefix = f"g{uuid.uuid4().hex[:8]}_"

    def rs(name: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=nats_url,
            mongodb_uri=mongo_uri,
            database_prefix=prefix,
            data_dir=data_dir,
            replica_id=f"{name}-test",
        )

    runtimes = {}
    for svc in services:
        rt = ServiceRuntime(svc, "test", settings=rs(svc.value))
        await rt.start()
        runtimes[svc.value] = rt
    port = free_port()
    settings = GatewaySettings(port=port, fanout_window_seconds=0.5)
    settings.runtime = rs("gateway")
    runtime = build(settings)
    app = build_app(runtime, settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    await wait_for_async(lambda: server.started, timeout=20)
    key = (data_dir / "admin.key").read_text().strip()
    return System(f"http://127.0.0.1:{port}", key, data_dir, app, runtime, runtimes, nats_url), server, task


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system(nats_server: Any, mongo_server: Any, tmp_path_factory: Any) -> AsyncIterator[System]:
    sysm, server, task = await start_system(nats_server.url, mongo_server.uri, tmp_path_factory.mktemp("gw"))
    try:
        yield sysm
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        for rt in sysm.runtimes.values():
            await rt.stop()
