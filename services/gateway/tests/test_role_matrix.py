"""The role matrix, generated from the registry (issue 13): every command of the catalogue × no key,
a wrong key, viewer, operator and admin, over all three transports (HTTP commands, the IPC envelope
over HTTP, the WebSocket). A caller without a valid key is UNAUTHORIZED (on the WebSocket: nothing is
served before authentication, the socket closes 4401), a key below the command's least role is
FORBIDDEN, and a key at or above it is let through (whatever the command then answers: here no
service serves it, so UNAVAILABLE; never UNAUTHORIZED or FORBIDDEN). The printed table on failure
names each wrong cell."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets
from tgm_contracts import Role
from tgm_contracts.command import REGISTRY
from tgm_gateway.keys.limiter import FailedAuthLimiter

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.asyncio(loop_scope="module"),
]

COMMANDS = REGISTRY.names()
ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
DENIED = {"UNAUTHORIZED", "FORBIDDEN"}
WRONG_KEY = "tgm_00000000_not-a-key"


def expected(command: str, role: Role | None) -> str | None:
    """UNAUTHORIZED, FORBIDDEN, or None (let through)."""
    if role is None:
        return "UNAUTHORIZED"
    return "FORBIDDEN" if role < REGISTRY.get(command).ROLE else None  # type: ignore[union-attr]


def verdict(code: str | None) -> str | None:
    return code if code in DENIED else None


@pytest.fixture(autouse=True)
def many_failed_auths(system: System) -> Any:
    """This test fails authentication hundreds of times from one address on purpose."""
    keys = system.gateway.keys
    old, keys.failures = keys.failures, FailedAuthLimiter(rate=1e6, burst=10**6)
    yield
    keys.failures = old


async def _retrying(call: Callable[[], Awaitable[tuple[str | None, float | None]]]) -> str | None:
    """The call's error code; RATE_LIMITED (a key's own budget) is waited out as the reply says."""
    for _ in range(20):
        code, retry_after = await call()
        if code != "RATE_LIMITED":
            return code
        await asyncio.sleep(retry_after or 0.5)
    raise AssertionError("still rate limited after 20 tries")


def _code(err: dict[str, Any]) -> tuple[str, float | None]:
    details = err.get("details")
    wait = details.get("retry_after") if isinstance(details, dict) else None
    return err["code"], wait or err.get("retry_after")


def _http_code(r: httpx.Response) -> tuple[str | None, float | None]:
    body = r.json()
    return (None, None) if body.get("ok") else _code(body["error"])


def _ipc_code(r: httpx.Response) -> tuple[str | None, float | None]:
    body = r.json()
    return (None, None) if body.get("event") != "error" else _code(body["data"])


async def _keys(system: System) -> dict[Role | None, str | None]:
    return {None: None, **{r: await system.key(r) for r in ROLES}}


def _check(cells: dict[tuple[str, str], str | None], principals: list[str]) -> None:
    wrong = []
    for (command, who), got in sorted(cells.items()):
        role = None if who in ("no key", "wrong key") else Role[who.upper()]
        want = expected(command, role)
        if verdict(got) != want:
            wrong.append(f"{command:34} {who:10} want {want or 'let through'}, got {got}")
    assert not wrong, f"{len(wrong)} wrong cells of {len(cells)}:\n" + "\n".join(wrong)
    assert len(cells) == len(COMMANDS) * len(principals)


async def test_http_commands(system: System) -> None:
    keys = await _keys(system)
    cells: dict[tuple[str, str], str | None] = {}
    principals = {"no key": None, "wrong key": WRONG_KEY, **{r.label: keys[r] for r in ROLES}}
    for who, key in principals.items():
        async with system.client(key) as c:
            for command in COMMANDS:

                async def call(command: str = command) -> tuple[str | None, float | None]:
                    return _http_code(await c.post(f"/api/v1/commands/{command}", json={}))

                cells[(command, who)] = await _retrying(call)
    _check(cells, list(principals))


async def test_ipc_envelopes(system: System) -> None:
    keys = await _keys(system)
    cells: dict[tuple[str, str], str | None] = {}
    principals = {"no key": None, "wrong key": WRONG_KEY, **{r.label: keys[r] for r in ROLES}}
    for who, key in principals.items():
        async with system.client(key) as c:
            for i, command in enumerate(COMMANDS):

                async def call(command: str = command, i: int = i) -> tuple[str | None, float | None]:
                    envelope = {"command": command, "payload": {}, "requestId": f"m{i}"}
                    return _ipc_code(await c.post("/api/v1/ipc", json=envelope))

                cells[(command, who)] = await _retrying(call)
    _check(cells, list(principals))


async def test_websocket(system: System) -> None:
    keys = await _keys(system)
    url = system.url.replace("http://", "ws://") + "/api/v1/ws"
    cells: dict[tuple[str, str], str | None] = {}
    for role in ROLES:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"action": "auth", "token": keys[role], "requestId": "a"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == "auth-result"
            for i, command in enumerate(COMMANDS):

                async def call(command: str = command, i: int = i) -> tuple[str | None, float | None]:
                    await ws.send(json.dumps({"command": command, "payload": {}, "requestId": f"w{i}"}))
                    while True:
                        reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
                        if reply.get("requestId") == f"w{i}":
                            break
                    return (None, None) if reply["event"] != "error" else _code(reply["data"])

                cells[(command, role.label)] = await _retrying(call)
    # Without a key or with a wrong one, a command is never served: the socket closes 4401.
    for who, first in (("no key", None), ("wrong key", WRONG_KEY)):
        for i, command in enumerate(COMMANDS):
            async with websockets.connect(url) as ws:
                if first is not None:
                    await ws.send(json.dumps({"action": "auth", "token": first, "requestId": "a"}))
                await ws.send(json.dumps({"command": command, "payload": {}, "requestId": f"x{i}"}))
                served = False
                try:
                    while True:
                        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        served = served or reply.get("event") == f"{command}-result"
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 4401, (command, who)
            cells[(command, who)] = None if served else "UNAUTHORIZED"
    _check(cells, ["no key", "wrong key", *(r.label for r in ROLES)])
