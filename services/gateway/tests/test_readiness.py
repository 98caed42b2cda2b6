"""The gateway's readiness is its bus, not the database (issue 17, finding 5): a database blip must not
take every gateway replica out of the load balancer at once. With its database server killed, a
started gateway still answers `/readyz` 200 (`nats: true`) and `/healthz`; with NATS gone it says 503,
and ready again once NATS is back. Commands that need the database answer through the services,
which have their own readiness (`deploy/README.md`, "Health and readiness")."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tgm_testing.procs import wait_for_async

from .conftest import start_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_readyz_stays_200_with_the_database_down_and_follows_nats(
    make_nats_server: Any, make_mongo_server: Any, tmp_path: Any
) -> None:
    nats_server, database = make_nats_server(), make_mongo_server()
    system, server, task = await start_system(nats_server.url, database.uri, tmp_path, services=())
    try:
        async with httpx.AsyncClient(base_url=system.url, timeout=10) as c:
            ready = await c.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"ready": True, "nats": True})

            database.kill()
            for _ in range(3):  # not a one-off answer: asked again while the database stays down
                ready = await c.get("/readyz")
                assert (ready.status_code, ready.json()) == (200, {"ready": True, "nats": True})
            assert (await c.get("/healthz")).json() == {"status": "ok"}

            nats_server.kill()

            async def unready() -> bool:
                return (await c.get("/readyz")).status_code == 503

            await wait_for_async(unready, timeout=20, interval=0.2, message="/readyz still 200 without NATS")
            assert (await c.get("/readyz")).json() == {"ready": False, "nats": False}

            nats_server.start()

            async def ready_again() -> bool:
                return (await c.get("/readyz")).status_code == 200

            await wait_for_async(
                ready_again, timeout=30, interval=0.2, message="/readyz not 200 after NATS came back"
            )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
