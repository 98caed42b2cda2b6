"""Who serves the catalogue right now (presence.py, issue 12 finding 8), on a stack without analytics.

Its own module: the module-scoped `system` of other modules (with every service) is gone by then, so
nothing else on the shared nats-server answers for analytics."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import BACKEND_SERVICES, Service
from tgm_testing.procs import wait_for_async

from .conftest import start_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]


async def test_a_service_that_is_down_is_named_and_its_bad_payloads_say_so_first(
    nats_server: Any, mongo_server: Any, tmp_path: Any
) -> None:
    """Issue 12 finding 8: with analytics down, the catalogue lists its commands as unserved, and a
    malformed payload for one of them is answered UNAVAILABLE (not VALIDATION_ERROR); a malformed
    payload for a served command is still a 422."""
    up = tuple(s for s in BACKEND_SERVICES if s is not Service.ANALYTICS)
    sysm, server, task = await start_system(nats_server.url, mongo_server.uri, tmp_path, services=up)
    try:
        assert Service.ANALYTICS not in await sysm.gateway.dispatcher.presence.refresh()
        async with sysm.client(sysm.admin_key) as c:

            async def catalogue_sees_the_others() -> Any:
                """The catalogue's own presence round (5 s) has heard every service that is up: under
                load a first round can time out and list every command as unserved."""
                body = (await c.get("/api/v1/commands")).json()
                return body if all(s.value in body["servedBy"] for s in up) else None

            body = await wait_for_async(catalogue_sees_the_others, timeout=30, interval=0.5)
            owners = {x["command"]: x["owner"] for x in body["commands"]}
            assert body["unserved"] == sorted(n for n, o in owners.items() if o == "analytics")
            assert "analytics" not in body["servedBy"] and "tg-session" in body["servedBy"]
            bad = await c.post("/api/v1/commands/get-dashboard-stats", json={"bogus": 1})
            assert bad.status_code == 503 and bad.json()["error"]["code"] == "UNAVAILABLE"
            assert "no analytics replica is up" in bad.json()["error"]["message"]
            good = await c.post("/api/v1/commands/get-dashboard-stats", json={})
            assert good.status_code == 503  # sent, and nobody answered
            served = await c.post("/api/v1/commands/get-accounts", json={"bogus": 1})
            assert served.status_code == 422
    finally:
        server.should_exit = True
        await task
        for rt in sysm.runtimes.values():
            await rt.stop()
