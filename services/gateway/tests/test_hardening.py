"""Issue 13 at the gateway, against real NATS and a real database: bad input never reaches a 500 on
any edge, auth comes before parsing, revoked keys close open sockets, failed auth is limited per
address, and an AI provider rejecting its own key is not the caller's 401."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from tgm_contracts import REGISTRY, Role
from tgm_gateway.keys.limiter import FailedAuthLimiter

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.asyncio(loop_scope="module"),
]

DEEP = b"[" * 10_000 + b"]" * 10_000
#: Every HTTP path that reads a body (the keys route needs an admin key).
PATHS = [
    "/api/v1/commands/get-settings",
    "/api/v1/ipc",
    "/api/v1/stream/ai-generate-response",
    "/api/v1/keys",
]


def ws_url(system: System, key: str) -> str:
    return system.url.replace("http://", "ws://") + f"/api/v1/ws?token={key}"


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    """The error of either envelope: HTTP `{ok, error}` or IPC `{event: error, data}`."""
    return body["error"] if "error" in body else body["data"]


@pytest.mark.parametrize("path", PATHS)
async def test_bad_bodies_are_envelopes_on_every_path(system: System, path: str) -> None:
    async with system.client(system.admin_key) as c:
        for body, status in (
            (DEEP, 400),
            (b"null", 422),
            (b"[1]", 422),
            ('{"a": 1}'.encode("utf-16"), 400),
            (b"{broken", 400),
        ):
            r = await c.post(path, content=body)
            assert r.status_code == status, (path, body[:20], r.text[:300])
            assert error_of(r.json())["code"] == "VALIDATION_ERROR"
        big = b'{"text": "' + b"x" * (17 * 1024 * 1024) + b'"}'
        r = await c.post(path, content=big)
        assert r.status_code == 413 and "16777216 bytes" in error_of(r.json())["message"]


@pytest.mark.parametrize("path", PATHS)
async def test_no_key_is_401_before_the_body_is_read(system: System, path: str) -> None:
    async with system.client() as c:
        r = await c.post(path, content=DEEP)
        assert r.status_code == 401 and error_of(r.json())["code"] == "UNAUTHORIZED", r.text[:300]


async def test_ipc_envelopes_need_their_request_id_and_payload(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/ipc", json={"command": "get-settings", "payload": {}})
        assert r.status_code == 422 and "requestId" in json.dumps(r.json()["data"]["details"])
        r = await c.post("/api/v1/ipc", json={"command": "get-settings", "requestId": "r1"})
        assert r.status_code == 422 and r.json()["requestId"] == "r1"
        assert "payload" in json.dumps(r.json()["data"]["details"])
        r = await c.post("/api/v1/ipc", json={"command": "get-settings", "payload": None, "requestId": "r2"})
        assert r.status_code == 422
        r = await c.post("/api/v1/ipc", json={"command": "get-settings", "payload": {}, "requestId": "r3"})
        assert r.status_code == 200 and r.json()["event"] == "get-settings-result"


async def test_a_payload_larger_than_the_bus_is_a_validation_error_naming_the_limit(system: System) -> None:
    """9 MB passes the body limit (16 MiB) and the contract, but not NATS's 8 MB max_payload."""
    payload = {"contentBase64": "QUFB" * (9 * 1024 * 1024 // 4), "filename": "big.txt"}
    limit = system.runtime.nc.max_payload
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/commands/rag-add-document", json=payload)
        assert r.status_code == 422, r.text[:300]
        err = r.json()["error"]
        assert err["code"] == "VALIDATION_ERROR" and f"at most {limit} bytes" in err["message"]
        assert err["details"]["limitBytes"] == limit
        # the gateway kept its bus connection (a refused publish would have cost it)
        assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 200
    async with websockets.connect(ws_url(system, system.admin_key), max_size=None) as ws:
        await ws.send(json.dumps({"command": "rag-add-document", "payload": payload, "requestId": "big"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert reply["requestId"] == "big" and reply["data"]["code"] == "VALIDATION_ERROR"
        assert f"at most {limit} bytes" in reply["data"]["message"]


async def test_websocket_frames_that_are_not_objects_are_answered_and_the_socket_stays(
    system: System,
) -> None:
    async with websockets.connect(ws_url(system, system.admin_key)) as ws:
        for frame, words in (
            (b"\x00\x01binary", "binary frames"),
            (DEEP.decode(), "deeper than"),
            ("{broken", "not valid JSON"),
            ("null", "not null"),
            ("[1, 2]", "not an array"),
        ):
            await ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["event"] == "error" and reply["data"]["code"] == "VALIDATION_ERROR", reply
            assert words in reply["data"]["message"], reply
        await ws.send(json.dumps({"command": "get-settings", "payload": {}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["data"]["code"] == "VALIDATION_ERROR" and "requestId" in json.dumps(reply["data"])
        await ws.send(json.dumps({"command": "get-settings", "payload": {}, "requestId": "still-open"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["event"] == "get-settings-result" and reply["requestId"] == "still-open"


async def test_a_revoked_key_closes_its_open_websocket_within_two_seconds(system: System) -> None:
    key = await system.key(Role.OPERATOR)
    key_id = key.split("_")[1]
    async with websockets.connect(ws_url(system, key)) as ws:
        await ws.send(json.dumps({"command": "get-settings", "payload": {}, "requestId": "before"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == "get-settings-result"
        async with system.client(system.admin_key) as c:
            assert (await c.delete(f"/api/v1/keys/{key_id}")).status_code == 200
        revoked_at = asyncio.get_running_loop().time()
        told = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert told["event"] == "error" and told["data"]["code"] == "UNAUTHORIZED"
        assert "revoked" in told["data"]["message"]
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert asyncio.get_running_loop().time() - revoked_at < 2.5
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401


@contextlib.contextmanager
def counted_reads(system: System, failures: FailedAuthLimiter) -> Iterator[list[str]]:
    """The key ids the key store is asked for while inside, with `failures` as the address limit."""
    keys = system.gateway.keys
    old_failures, read = keys.failures, keys.store.get
    reads: list[str] = []

    async def counted(key_id: str) -> Any:
        reads.append(key_id)
        return await read(key_id)

    keys.failures = failures
    keys.store.get = counted  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        keys.failures = old_failures
        keys.store.get = read  # type: ignore[method-assign]


async def test_failed_authentication_is_limited_per_address_without_database_reads(system: System) -> None:
    with counted_reads(system, FailedAuthLimiter(rate=0.2, burst=3)) as reads:
        codes = []
        for i in range(3):
            async with system.client(f"tgm_bad{i:05d}_guess") as c:
                codes.append((await c.post("/api/v1/commands/get-settings", json={})).status_code)
        assert codes == [401, 401, 401] and len(reads) == 3
        for key in ("tgm_bad99999_guess", system.admin_key):  # the address is refused, whatever key
            async with system.client(key) as c:
                r = await c.post("/api/v1/commands/get-settings", json={})
                assert r.status_code == 429 and r.json()["error"]["retry_after"] > 0
        async with websockets.connect(ws_url(system, system.admin_key)) as ws:
            assert json.loads(await ws.recv())["data"]["code"] == "RATE_LIMITED"
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4429
        assert len(reads) == 3  # refused before any lookup
        async with system.client() as c:  # no key at all: a plain 401, not counted
            assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 401


async def test_a_bogus_key_id_costs_one_read_per_window(system: System) -> None:
    with counted_reads(system, FailedAuthLimiter(rate=100, burst=1000)) as reads:
        async with system.client("tgm_0badc0de_guess") as c:
            for _ in range(15):
                assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 401
        assert reads == ["0badc0de"]
        async with system.client("tgm_" + "f" * 5000 + "_guess") as c:  # an absurd id: not even looked up
            assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 401
        assert reads == ["0badc0de"]


async def test_an_ai_provider_rejecting_its_key_is_502_upstream_auth(system: System) -> None:
    """The ai service answers UPSTREAM_AUTH for a provider's 401/403 (services/ai/providers/http.py);
    the gateway maps it to 502, so a client never concludes its own key is bad."""
    cmd = REGISTRY.get("get-knowledge-stats")
    assert cmd is not None
    nc = system.runtime.nc
    error = {"code": "UPSTREAM_AUTH", "message": "openai: rejected the API key (HTTP 401)"}

    async def provider_refuses(msg: Any) -> None:
        await msg.respond(json.dumps({"ok": False, "error": error}).encode())

    sub = await nc.subscribe(cmd.SUBJECT, cb=provider_refuses)
    try:
        async with system.client(system.admin_key) as c:
            r = await c.post("/api/v1/commands/get-knowledge-stats", json={})
            assert r.status_code == 502 and r.json()["error"]["code"] == "UPSTREAM_AUTH"
            assert "openai" in r.json()["error"]["message"]
    finally:
        await sub.unsubscribe()


async def test_unknown_routes_and_methods_answer_envelopes(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.put("/api/v1/commands/get-settings", json={})
        assert r.status_code == 405 and r.json()["error"]["code"] == "VALIDATION_ERROR"
        assert r.headers["allow"] == "POST"
        # a GET of a command is a wrong method too, not the console's "no route" (schemathesis ST204)
        r = await c.get("/api/v1/commands/get-settings")
        assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["ok"] is False
        r = await c.post("/api/v1/nowhere", json={})  # only the console's GET matches: no such route
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await c.delete("/api/v1/keys")  # Allow names every method of the path (ST205)
        assert r.status_code == 405 and r.json()["ok"] is False and r.headers["allow"] == "GET, POST"
        r = await c.options("/api/v1/keys")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
