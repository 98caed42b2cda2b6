"""The gateway against real NATS and a real database: every error path, auth and roles, IPC over HTTP
and WebSocket, pushed events, API keys, and each system command."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import nats
import pytest
import websockets
from tgm_contracts import REGISTRY, Role, streams
from tgm_gateway.keys.limiter import SharedKeyRate

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.asyncio(loop_scope="module"),
]


def ws_url(system: System, key: str) -> str:
    return system.url.replace("http://", "ws://") + f"/api/v1/ws?token={key}"


async def test_ops_endpoints(system: System) -> None:
    async with system.client() as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["nats"] is True
        metrics = await c.get("/metrics")
        assert "tgm_gateway_commands_total" in metrics.text
        spec = (await c.get("/openapi.json")).json()
        assert "/api/v1/commands/get-settings" in spec["paths"]  # one per command: test_openapi.py
        cat = (await c.get("/api/v1/commands")).json()
        assert cat["count"] == len(REGISTRY)
        entry = next(x for x in cat["commands"] if x["command"] == "save-settings")
        assert entry["role"] == "admin" and entry["owner"] == "gateway"
        assert "settings" in entry["request"]["properties"]


async def test_missing_and_wrong_keys_are_401(system: System) -> None:
    async with system.client() as c:
        r = await c.post("/api/v1/commands/get-settings", json={})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    async with system.client("tgm_deadbeef_nottherightsecret") as c:
        r = await c.post("/api/v1/commands/get-settings", json={})
        assert r.status_code == 401


async def test_unknown_command_is_404_and_names_no_secret(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/commands/no-such-command", json={})
        assert r.status_code == 404
        body = r.json()
        assert body["error"]["code"] == "NOT_FOUND" and "no-such-command" in body["error"]["message"]
        assert system.admin_key not in r.text


async def test_bad_payload_is_422_with_field_details(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/commands/get-backup-status", json={"limit": "many", "extra": 1})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "VALIDATION_ERROR"
        locs = {tuple(d["loc"]) for d in err["details"]}
        assert ("limit",) in locs and ("extra",) in locs
        r = await c.post("/api/v1/commands/get-settings", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
        r = await c.post("/api/v1/commands/get-settings", json=[1, 2])
        assert r.status_code == 422


async def test_a_destructive_command_runs_only_with_confirm(system: System) -> None:
    async with system.client(system.admin_key) as c:
        before = (await c.post("/api/v1/commands/get-settings", json={"sections": ["general"]})).json()[
            "data"
        ]
        for body in ({}, {"sections": ["general"]}, {"sections": ["general"], "confirm": False}):
            r = await c.post("/api/v1/commands/reset-settings", json=body)
            assert r.status_code == 422, body
            err = r.json()["error"]
            assert err["code"] == "VALIDATION_ERROR"
            assert err["message"].startswith("reset-settings puts the settings"), err
            assert err["message"].endswith("send confirm: true to go ahead"), err
        unchanged = (await c.post("/api/v1/commands/get-settings", json={"sections": ["general"]})).json()
        assert unchanged["data"]["sections"] == before["sections"]  # nothing was reset, no version bumped
        r = await c.post("/api/v1/commands/reset-settings", json={"sections": ["general"], "confirm": True})
        assert r.status_code == 200, r.json()
        listed = {e["command"]: e for e in (await c.get("/api/v1/commands")).json()["commands"]}
        assert listed["reset-settings"]["destructive"] is True
        assert listed["get-settings"]["destructive"] is False


async def test_roles_are_enforced(system: System) -> None:
    viewer = await system.key(Role.VIEWER)
    operator = await system.key(Role.OPERATOR)
    async with system.client(viewer) as c:
        assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 200
        r = await c.post("/api/v1/commands/add-knowledge", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    async with system.client(operator) as c:
        r = await c.post("/api/v1/commands/save-settings", json={"settings": {"general": {"language": "en"}}})
        assert r.status_code == 403


async def test_no_responder_is_503(system: System) -> None:
    # the ai runtime here is generic: it serves its sys subjects, not get-knowledge-stats.
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/commands/get-knowledge-stats", json={})
        assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE"


async def test_deadline_is_504(system: System) -> None:
    cmd = REGISTRY.get("get-knowledge-stats")
    assert cmd is not None
    nc = system.runtime.nc

    async def never_answers(msg) -> None:
        await asyncio.sleep(0)

    sub = await nc.subscribe(cmd.SUBJECT, cb=never_answers)
    old = system.gateway.deadline.seconds
    system.gateway.deadline.seconds = 0.5
    try:
        async with system.client(system.admin_key) as c:
            r = await c.post("/api/v1/commands/get-knowledge-stats", json={})
            assert r.status_code == 504 and r.json()["error"]["code"] == "TIMEOUT"
    finally:
        system.gateway.deadline.seconds = old
        await sub.unsubscribe()


async def test_rate_limit_is_429(system: System) -> None:
    key = await system.key(Role.VIEWER)
    dispatcher = system.gateway.dispatcher
    old = dispatcher._limiter
    runtime = system.runtime
    dispatcher._limiter = SharedKeyRate(0.5, 2, lambda: runtime.key_value(streams.KEY_RATE))
    try:
        async with system.client(key) as c:
            codes = [
                (await c.post("/api/v1/commands/get-backup-status", json={})).status_code for _ in range(3)
            ]
            assert codes[:2] == [200, 200] and codes[2] == 429
            r = await c.post("/api/v1/commands/get-backup-status", json={})
            assert r.json()["error"]["retry_after"] > 0
    finally:
        dispatcher._limiter = old


async def test_ipc_over_http(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/ipc", json={"command": "get-system-info", "payload": {}, "requestId": "r1"})
        body = r.json()
        assert r.status_code == 200
        assert body["event"] == "get-system-info-result" and body["requestId"] == "r1"
        assert set(body["data"]["services"]) == {
            "gateway",
            "tg-session",
            "campaign",
            "ai",
            "analytics",
            "tailchat",
        }
        assert all(s["status"] == "up" for s in body["data"]["services"].values())
        r = await c.post("/api/v1/ipc", json={"command": "nope", "payload": {}, "requestId": "r2"})
        assert r.status_code == 404
        assert r.json() == {
            "event": "error",
            "requestId": "r2",
            "data": {"code": "NOT_FOUND", "message": r.json()["data"]["message"]},
        }
        r = await c.post("/api/v1/ipc", json={"payload": {}, "requestId": "r3"})
        assert r.status_code == 422 and r.json()["requestId"] == "r3"
    async with system.client() as c:
        r = await c.post("/api/v1/ipc", json={"command": "get-settings", "payload": {}, "requestId": "r4"})
        assert r.status_code == 401 and r.json()["data"]["code"] == "UNAUTHORIZED"


async def test_websocket_ipc_and_pushed_events(system: System) -> None:
    async with websockets.connect(ws_url(system, system.admin_key)) as ws:
        await ws.send(json.dumps({"action": "subscribe", "subjects": ["tgm.*.evt.>"], "requestId": "s1"}))
        ack = json.loads(await ws.recv())
        assert ack["event"] == "subscribe-result" and ack["data"]["subjects"] == ["tgm.*.evt.>"]
        await ws.send(
            json.dumps({"command": "get-settings", "payload": {"sections": ["general"]}, "requestId": "w1"})
        )
        reply = json.loads(await ws.recv())
        assert reply["event"] == "get-settings-result" and reply["requestId"] == "w1"
        payload = {"settings": {"general": {"timezone": "Europe/Berlin"}}}
        await ws.send(json.dumps({"command": "save-settings", "payload": payload, "requestId": "w2"}))
        seen = {}
        while "w2" not in seen or "settings-changed" not in seen:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen[msg.get("requestId") or msg["event"]] = msg
        assert seen["w2"]["event"] == "save-settings-result"
        evt = seen["settings-changed"]["data"]
        assert evt["section"] == "general" and evt["values"]["timezone"] == "Europe/Berlin"
        await ws.send(json.dumps({"action": "subscribe", "subjects": ["tgm.tg-session.cmd.>"]}))
        rejected = json.loads(await ws.recv())
        assert rejected["event"] == "error" and rejected["data"]["code"] == "VALIDATION_ERROR"
        await ws.send("not json")
        assert json.loads(await ws.recv())["data"]["code"] == "VALIDATION_ERROR"


async def test_events_over_the_websocket_are_filtered_by_the_key_role(system: System) -> None:
    subject = "tgm.tg-session.evt.message-received.v1"
    body = {"accountId": f"a{uuid.uuid4().hex[:6]}", "text": "secret words", "phone": "+886912345678"}

    async def first_event(key: str) -> dict[str, Any]:
        async with websockets.connect(ws_url(system, key)) as ws:
            await ws.send(json.dumps({"action": "subscribe", "subjects": [subject], "requestId": "s"}))
            assert json.loads(await ws.recv())["event"] == "subscribe-result"
            nc = await nats.connect(system.nats_url)
            try:
                await nc.publish(subject, json.dumps(body).encode())
                await nc.flush()
            finally:
                await nc.close()
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    viewer = await first_event(await system.key(Role.VIEWER))
    assert viewer["event"] == "message-received"
    assert viewer["data"] == {**body, "text": None, "phone": "+886*******78"}
    operator = await first_event(await system.key(Role.OPERATOR))
    assert operator["data"] == body


async def test_websocket_needs_a_key(system: System) -> None:
    async with websockets.connect(ws_url(system, "wrong")) as ws:
        msg = json.loads(await ws.recv())
        assert msg["data"]["code"] == "UNAUTHORIZED"
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401


async def test_api_key_management(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/keys", json={"name": "ops", "role": "operator"})
        assert r.status_code == 201
        created = r.json()["data"]
        assert created["role"] == "operator" and created["key"].startswith("tgm_")
        listed = (await c.get("/api/v1/keys")).json()["data"]["items"]
        assert any(k["id"] == created["id"] for k in listed)
        assert all("digest" not in k and "key" not in k for k in listed)
        assert (await c.post("/api/v1/keys", json={"name": "x", "role": "root"})).status_code == 422
    async with system.client(created["key"]) as c:
        assert (await c.get("/api/v1/keys")).status_code == 403
    async with system.client(system.admin_key) as c:
        assert (await c.delete(f"/api/v1/keys/{created['id']}")).status_code == 200
    async with system.client(created["key"]) as c:
        assert (await c.post("/api/v1/commands/get-settings", json={})).status_code == 401


async def test_settings_are_versioned_and_validated(system: System) -> None:
    async with system.client(system.admin_key) as c:
        before = (await c.post("/api/v1/commands/get-settings", json={})).json()["data"]
        assert set(before["settings"]) == {"general", "telegram", "pacing", "compliance", "ai", "analytics"}
        pacing_v = next(s["version"] for s in before["sections"] if s["section"] == "pacing")
        r = await c.post(
            "/api/v1/commands/save-settings", json={"settings": {"pacing": {"perAccountPerMinute": 12}}}
        )
        assert r.status_code == 200
        after = r.json()["data"]
        assert after["settings"]["pacing"]["perAccountPerMinute"] == 12
        assert next(s["version"] for s in after["sections"] if s["section"] == "pacing") == pacing_v + 1
        # a stale expected version is a conflict, and nothing changes
        r = await c.post(
            "/api/v1/commands/save-settings",
            json={
                "settings": {"pacing": {"perAccountPerMinute": 5}},
                "expectedVersions": {"pacing": pacing_v},
            },
        )
        assert r.status_code == 409
        r = await c.post(
            "/api/v1/commands/save-settings", json={"settings": {"pacing": {"perAccountPerMinute": 0}}}
        )
        assert r.status_code == 422
        r = await c.post(
            "/api/v1/commands/save-settings", json={"settings": {"pacing": {"jitterMaxSeconds": 0.5}}}
        )
        assert r.status_code == 422  # below jitterMinSeconds
        r = await c.post("/api/v1/commands/save-settings", json={"settings": {"pacing": {"bogus": 1}}})
        assert r.status_code == 422
        now = (await c.post("/api/v1/commands/get-settings", json={"sections": ["pacing"]})).json()["data"]
        assert now["settings"]["pacing"]["perAccountPerMinute"] == 12
        reset = (
            await c.post("/api/v1/commands/reset-settings", json={"confirm": True, "sections": ["pacing"]})
        ).json()["data"]
        assert reset["settings"]["pacing"]["perAccountPerMinute"] == 20


async def test_general_timeout_setting_applies(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post(
            "/api/v1/commands/save-settings", json={"settings": {"general": {"commandTimeoutSeconds": 7}}}
        )
        assert r.status_code == 200
    from tgm_testing.procs import wait_for_async

    await wait_for_async(lambda: system.gateway.deadline.seconds == 7, timeout=5)


async def test_system_info_and_initial_state(system: System) -> None:
    viewer = await system.key(Role.VIEWER)
    async with system.client(viewer) as c:
        info = (await c.post("/api/v1/commands/get-system-info", json={})).json()["data"]
        assert info["healthy"] is True
        for name, svc in info["services"].items():
            replica = svc["replicas"][0]
            assert replica["service"] == name and replica["database"]["ok"] and replica["nats"]["ok"]
            assert replica["uptimeSeconds"] >= 0 and replica["version"]
        initial = (await c.post("/api/v1/commands/get-initial-state", json={})).json()["data"]
        assert initial["role"] == "viewer" and initial["commands"] == len(REGISTRY)
        assert "general" in initial["settings"] and initial["counts"]["apiKeys"] >= 1


async def test_migrations(system: System) -> None:
    async with system.client(system.admin_key) as c:
        status = (await c.post("/api/v1/commands/get-migration-status", json={})).json()["data"]
        assert status["upToDate"] is True
        assert status["services"]["gateway"]["current"] == status["services"]["gateway"]["latest"] >= 1
        run = await c.post("/api/v1/commands/run-migrations", json={})
        assert run.status_code == 200 and run.json()["data"]["upToDate"] is True


async def test_backup_then_destroy_then_restore(system: System) -> None:
    async with system.client(system.admin_key) as c:
        await c.post(
            "/api/v1/commands/save-settings", json={"settings": {"compliance": {"perRecipientDailyCap": 2}}}
        )
        r = await c.post("/api/v1/commands/backup-database", json={"label": "before"})
        backup = r.json()["data"]
        assert r.status_code == 200 and backup["state"] == "completed", backup
        assert backup["progress"] == 1.0 and set(backup["services"]) == {
            "gateway",
            "tg-session",
            "campaign",
            "ai",
            "analytics",
            "tailchat",
        }
        assert (system.data_dir / "backups" / f"{backup['backupId']}.tar").exists()
        # destroy: defaults again, and a key that did not exist at backup time
        await c.post("/api/v1/commands/reset-settings", json={"confirm": True})
        r = await c.post(
            "/api/v1/commands/restore-database", json={"confirm": True, "backupId": backup["backupId"]}
        )
        assert r.status_code == 200 and r.json()["data"]["state"] == "completed", r.json()
        got = (await c.post("/api/v1/commands/get-settings", json={"sections": ["compliance"]})).json()[
            "data"
        ]
        assert got["settings"]["compliance"]["perRecipientDailyCap"] == 2
        status = (await c.post("/api/v1/commands/get-backup-status", json={})).json()["data"]["items"]
        assert {s["kind"] for s in status} >= {"backup", "restore"}
        r = await c.post("/api/v1/commands/restore-database", json={"confirm": True, "backupId": "nope"})
        assert r.status_code == 404
        r = await c.post("/api/v1/commands/restore-database", json={"confirm": True, "backupId": "../etc"})
        assert r.status_code == 422


async def test_backup_without_waiting_reports_progress(system: System) -> None:
    async with system.client(system.admin_key) as c:
        r = await c.post("/api/v1/commands/backup-database", json={"wait": False})
        started = r.json()["data"]
        assert started["state"] in ("running", "completed")
        from tgm_testing.procs import wait_for_async

        async def done() -> bool:
            r = await c.post("/api/v1/commands/get-backup-status", json={"backupId": started["backupId"]})
            return r.json()["data"]["items"][0]["state"] == "completed"

        await wait_for_async(done, timeout=30)


async def test_trace_context_reaches_the_service(system: System) -> None:
    """The gateway opens a span per command and passes its context on in `traceparent`."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    seen: list[dict] = []
    nc = system.runtime.nc
    cmd = REGISTRY.get("get-knowledge-stats")
    assert cmd is not None

    async def capture(msg) -> None:
        seen.append(dict(msg.headers or {}))
        await msg.respond(b'{"ok": true, "data": {}}')

    sub = await nc.subscribe(cmd.SUBJECT, cb=capture)
    try:
        async with system.client(system.admin_key) as c:
            await c.post("/api/v1/commands/get-knowledge-stats", json={}, headers={"x-request-id": "trace-1"})
    finally:
        await sub.unsubscribe()
    assert seen and seen[0]["tgm-request-id"] == "trace-1"
    assert seen[0]["traceparent"].startswith("00-") and seen[0]["tgm-role"] == "admin"


async def _read_sse(response) -> list[tuple[str, dict]]:
    events, name, data = [], "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
    return events


async def test_sse_streams_chunks_then_the_reply(system: System) -> None:
    """The SSE route: chunks in order, then the command's own reply; an error at once is a plain
    JSON envelope with its status; a command without `streamId` does not stream."""
    cmd = REGISTRY.get("ai-generate-response")
    assert cmd is not None
    nc = system.runtime.nc
    payload = {"accountId": "acc-1", "userId": "peer-1", "message": "hi"}

    async def streams(msg) -> None:
        body = json.loads(msg.data)
        chunk_subject = f"tgm.stream.{body['streamId']}"
        if body["message"] == "fail":
            await nc.publish(chunk_subject, json.dumps({"seq": 0, "done": True, "error": {}}).encode())
            await msg.respond(b'{"ok": false, "error": {"code": "TIMEOUT", "message": "slow provider"}}')
            return
        for seq, delta in enumerate(["a", "b", "c"]):
            await nc.publish(chunk_subject, json.dumps({"seq": seq, "delta": delta, "done": False}).encode())
        await nc.publish(chunk_subject, json.dumps({"seq": 3, "done": True, "data": {}}).encode())
        await nc.flush()
        await msg.respond(json.dumps({"ok": True, "data": {"text": "abc"}}).encode())

    sub = await nc.subscribe(cmd.SUBJECT, cb=streams)
    try:
        async with system.client(system.admin_key) as c:
            async with c.stream("POST", "/api/v1/stream/ai-generate-response", json=payload) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                events = await _read_sse(r)
            assert [e for e, _ in events] == ["chunk", "chunk", "chunk", "done"], events
            assert "".join(d["delta"] for _, d in events[:3]) == "abc" and events[-1][1] == {"text": "abc"}
            r = await c.post("/api/v1/stream/ai-generate-response", json={**payload, "message": "fail"})
            assert r.status_code == 504 and r.json()["error"]["code"] == "TIMEOUT"
            r = await c.post("/api/v1/stream/get-settings", json={})
            assert r.status_code == 422 and "does not stream" in r.json()["error"]["message"]
        async with system.client() as c:
            r = await c.post("/api/v1/stream/ai-generate-response", json=payload)
            assert r.status_code == 401
    finally:
        await sub.unsubscribe()


async def test_a_large_export_is_a_file_downloaded_with_the_callers_key(system: System) -> None:
    import hashlib

    from tgm_runtime.exports import Exports

    analytics = system.runtimes["analytics"]
    exports = Exports(lambda: analytics.object_store(streams.EXPORTS), inline_limit=2_000)
    rows = [[i, f"user {i}", '=HYPERLINK("http://x")'] for i in range(500)]
    small = await exports.file("csv", ["id", "name", "note"], rows[:3], name="users", role=Role.OPERATOR)
    assert small.content_base64 and small.object_name is None
    big = await exports.file("csv", ["id", "name", "note"], rows, name="users", role=Role.OPERATOR)
    assert big.object_name and big.content_base64 is None and not big.truncated and big.rows == 500
    assert big.object_name.startswith("operator/")
    url = f"/api/v1/exports/{big.object_name}"
    async with system.client(await system.key(Role.OPERATOR)) as c:
        r = await c.get(url)
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == big.sha256 and len(r.content) == big.size_bytes
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert "'=HYPERLINK" in r.content.decode("utf-8-sig")  # formula-safe in the file too
        r = await c.get("/api/v1/exports/operator/nope/none.csv")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await c.get("/api/v1/exports/backups/x.jsonl.gz")  # not an export name: nothing else is served
        assert r.status_code == 404
    async with system.client(await system.key(Role.VIEWER)) as c:
        r = await c.get(url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"
    async with system.client() as c:
        assert (await c.get(url)).status_code == 401
