"""Issue 18's gateway gaps, against real NATS and a real database: `GET /api/v1/keys/me` (who a key
is, for any role, never its secret) and the WebSocket's first-frame authentication (the key not in
the URL; nothing served before it; a wrong key, another frame first or silence closes 4401), with the
header and `?token=` forms still working."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from tgm_contracts import Role
from tgm_gateway.api import ws as ws_module
from tgm_gateway.keys.limiter import FailedAuthLimiter

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.asyncio(loop_scope="module"),
]


def ws_base(system: System) -> str:
    return system.url.replace("http://", "ws://") + "/api/v1/ws"


async def recv(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def closed_code(ws: Any) -> int:
    with pytest.raises(websockets.ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN])
async def test_keys_me_names_the_calling_key_for_every_role(system: System, role: Role) -> None:
    key = await system.key(role)
    async with system.client(key) as c:
        r = await c.get("/api/v1/keys/me")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data == {"id": key.split("_")[1], "name": f"test-{role.label}", "role": role.label}
    assert key.split("_")[2] not in r.text  # never the secret


async def test_keys_me_refuses_a_missing_or_wrong_key(system: System) -> None:
    async with system.client() as c:
        assert (await c.get("/api/v1/keys/me")).json()["error"]["code"] == "UNAUTHORIZED"
    async with system.client("tgm_00000000_nope") as c:
        r = await c.get("/api/v1/keys/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


async def test_a_revoked_key_is_no_longer_anyone(system: System) -> None:
    key = await system.key(Role.VIEWER)
    await system.gateway.keys.revoke(key.split("_")[1])
    async with system.client(key) as c:
        assert (await c.get("/api/v1/keys/me")).status_code == 401


async def test_first_frame_auth_admits_then_serves_commands_and_events(system: System) -> None:
    key = await system.key(Role.OPERATOR)
    async with websockets.connect(ws_base(system)) as ws:
        await ws.send(json.dumps({"action": "auth", "token": key, "requestId": "a1"}))
        admitted = await recv(ws)
        assert admitted == {
            "event": "auth-result",
            "data": {"id": key.split("_")[1], "name": "test-operator", "role": "operator"},
            "requestId": "a1",
        }
        await ws.send(json.dumps({"command": "get-settings", "payload": {}, "requestId": "g1"}))
        reply = await recv(ws)
        assert reply["event"] == "get-settings-result" and reply["requestId"] == "g1"
        # Its role is the key's: an admin command is refused.
        await ws.send(json.dumps({"command": "save-settings", "payload": {}, "requestId": "s1"}))
        assert (await recv(ws))["data"]["code"] == "FORBIDDEN"
        # A second auth frame is not a way to change keys.
        await ws.send(json.dumps({"action": "auth", "token": system.admin_key, "requestId": "a2"}))
        again = await recv(ws)
        assert again["event"] == "error" and again["requestId"] == "a2"
        assert again["data"]["code"] == "VALIDATION_ERROR"


async def test_nothing_is_served_before_the_auth_frame(system: System) -> None:
    async with websockets.connect(ws_base(system)) as ws:
        await ws.send(json.dumps({"command": "get-settings", "payload": {}, "requestId": "early"}))
        told = await recv(ws)
        assert told["event"] == "error" and told["data"]["code"] == "UNAUTHORIZED"
        assert told["requestId"] == "early" and '"action": "auth"' in told["data"]["message"]
        assert await closed_code(ws) == 4401
    async with websockets.connect(ws_base(system)) as ws:
        await ws.send(json.dumps({"action": "subscribe", "subjects": ["tgm.*.evt.>"]}))
        assert (await recv(ws))["data"]["code"] == "UNAUTHORIZED"
        assert await closed_code(ws) == 4401
    async with websockets.connect(ws_base(system)) as ws:
        await ws.send(b"\x00binary")
        assert (await recv(ws))["data"]["code"] == "UNAUTHORIZED"
        assert await closed_code(ws) == 4401


async def test_a_wrong_key_in_the_auth_frame_closes_and_is_limited_like_http(system: System) -> None:
    keys = system.gateway.keys
    old, keys.failures = keys.failures, FailedAuthLimiter(rate=0.01, burst=1)
    try:
        async with websockets.connect(ws_base(system)) as ws:
            await ws.send(json.dumps({"action": "auth", "token": "tgm_00000000_wrong", "requestId": "w"}))
            told = await recv(ws)
            assert told["data"]["code"] == "UNAUTHORIZED" and told["requestId"] == "w"
            assert await closed_code(ws) == 4401
        # The address spent its one failure: even the admin key is refused now, and closed 4429.
        async with websockets.connect(ws_base(system)) as ws:
            await ws.send(json.dumps({"action": "auth", "token": system.admin_key}))
            assert (await recv(ws))["data"]["code"] == "RATE_LIMITED"
            assert await closed_code(ws) == 4429
    finally:
        keys.failures = old


async def test_silence_past_the_deadline_closes(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_module, "AUTH_DEADLINE_SECONDS", 0.3)
    started = asyncio.get_running_loop().time()
    async with websockets.connect(ws_base(system)) as ws:
        told = await recv(ws)
        assert told["data"]["code"] == "UNAUTHORIZED"
        assert await closed_code(ws) == 4401
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_revoked_key_closes_a_socket_that_authenticated_by_frame(system: System) -> None:
    key = await system.key(Role.VIEWER)
    async with websockets.connect(ws_base(system)) as ws:
        await ws.send(json.dumps({"action": "auth", "token": key}))
        assert (await recv(ws))["event"] == "auth-result"
        await system.gateway.keys.revoke(key.split("_")[1])
        assert "revoked" in (await recv(ws))["data"]["message"]
        assert await closed_code(ws) == 4401


async def test_the_header_and_query_forms_still_work(system: System) -> None:
    key = await system.key(Role.VIEWER)
    for kwargs, url in (
        ({"additional_headers": {"Authorization": f"Bearer {key}"}}, ws_base(system)),
        ({}, ws_base(system) + f"?token={key}"),
    ):
        async with websockets.connect(url, **kwargs) as ws:
            # No auth-result: the key was checked at connect; the first frame is served at once.
            await ws.send(json.dumps({"command": "get-settings", "payload": {}, "requestId": "h"}))
            assert (await recv(ws))["event"] == "get-settings-result"
