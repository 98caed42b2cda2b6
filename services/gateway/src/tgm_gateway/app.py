"""The gateway's HTTP, IPC, WebSocket and SSE edges. Every command goes through `Dispatcher.run`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, ValidationError
from sse_starlette.sse import EventSourceResponse
from tgm_contracts import HTTP_STATUS, REGISTRY, ErrorCode, Role, Service, subjects, validation_details
from tgm_contracts import envelope as env
from tgm_contracts.envelope import IpcRequest
from tgm_contracts.events_system import SettingsChanged
from tgm_runtime import RuntimeSettings, ServiceRuntime

from . import __version__
from .auth import KeyRateLimiter, KeyStore, Principal
from .dispatch import Dispatcher, Outcome, failure
from .migrations import MIGRATIONS
from .settings import GatewaySettings
from .system import SystemCommands

log = logging.getLogger("tgm.gateway")

API = "/api/v1"


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(viewer|operator|admin)$")


class Gateway:
    """Holds the runtime, key store and dispatcher; one per process."""

    def __init__(self, settings: GatewaySettings, runtime: ServiceRuntime) -> None:
        self.settings = settings
        self.rt = runtime
        self.limiter = KeyRateLimiter(settings.key_rate_per_second, settings.key_rate_burst)
        self.keys: KeyStore | None = None
        self._settings_sub: Any = None
        self.timeout = settings.command_timeout_seconds
        self.dispatcher = Dispatcher(lambda: self.rt.nc, self.limiter, lambda: self.timeout, runtime.registry)
        self.system = SystemCommands(
            runtime, runtime.settings.data_dir, lambda: settings.fanout_window_seconds
        )
        self.system.register()
        runtime.on_start(self._on_start)
        runtime.on_restore(self._on_start)

    async def _on_start(self, rt: ServiceRuntime) -> None:
        self.keys = KeyStore(rt.db)
        await self.system.recover_interrupted()
        await self.refresh_timeout()
        if self._settings_sub is None:
            # Every gateway replica follows settings changes, whichever replica saved them.
            async def changed(msg: Any) -> None:
                if json.loads(msg.data).get("section") == "general":
                    await self.refresh_timeout()

            self._settings_sub = await rt.nc.subscribe(SettingsChanged.SUBJECT, cb=changed)

    async def principal(self, key: str | None) -> Principal | None:
        return await self.keys.authenticate(key) if self.keys else None

    async def refresh_timeout(self) -> None:
        """The `general` section's deadline wins once saved; until then the environment's default."""
        if self.rt.settings_store is None:
            return
        section = await self.rt.settings_store.get("general")
        if section.version > 0:
            self.timeout = section.values["commandTimeoutSeconds"]
        else:
            self.timeout = self.settings.command_timeout_seconds


def _json(outcome: Outcome, request_id: str) -> JSONResponse:
    return JSONResponse(outcome.reply, status_code=outcome.status, headers={"x-request-id": request_id})


def _ipc(outcome: Outcome, command: str, request_id: str | None) -> tuple[int, dict[str, Any]]:
    if outcome.ok:
        return 200, env.ipc_result(command, outcome.reply.get("data"), request_id)
    err = outcome.reply["error"]
    return outcome.status, env.ipc_error(
        ErrorCode(err["code"]), err["message"], request_id, err.get("details"), err.get("retry_after")
    )


async def _read_json(request: Request) -> tuple[Any, Outcome | None]:
    raw = await request.body()
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        out = failure(ErrorCode.VALIDATION_ERROR, f"body is not valid JSON: {exc}")
        out.status = 400
        return None, out


def create_app(
    settings: GatewaySettings | None = None, runtime_settings: RuntimeSettings | None = None
) -> FastAPI:
    settings = settings or GatewaySettings()
    rt = ServiceRuntime(
        Service.GATEWAY, __version__, migrations=MIGRATIONS, settings=runtime_settings, counts=_counts
    )
    gw = Gateway(settings, rt)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        assert gw.keys is not None
        if settings.bootstrap_admin_key:
            key = await gw.keys.bootstrap(rt.settings.data_dir)
            if key:
                path = Path(rt.settings.data_dir) / "admin.key"
                # Shown once on a terminal, on purpose: this is how the operator learns the first key.
                # When output goes to a log file (under tgm-stack), only the file's path is written;
                # the supervisor reads the file and shows the key on its own console.
                if sys.stdout.isatty():
                    print(f"TG-Matrix admin key (shown once, also in {path}): {key}", flush=True)
                else:
                    log.info("first admin key created and written to %s (mode 0600)", path)
        yield
        await rt.stop()

    app = FastAPI(
        title="TG-Matrix gateway",
        version=__version__,
        description="Commands of the TG-Matrix catalogue over HTTP, the seed's IPC envelope, WebSocket and SSE.",
        lifespan=lifespan,
    )
    app.state.gateway = gw

    async def auth(request: Request) -> Principal | None:
        return await gw.principal(_bearer(request.headers.get("authorization")))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        nats_ok = rt.broker._connection is not None and rt.nc.is_connected
        return JSONResponse({"ready": nats_ok, "nats": nats_ok}, status_code=200 if nats_ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(f"{API}/commands", tags=["commands"])
    async def catalogue() -> dict[str, Any]:
        return {
            "count": len(REGISTRY),
            "commands": [
                {
                    **c.describe(),
                    "request": c.Request.model_json_schema(by_alias=True),
                    "response": c.Response.model_json_schema(by_alias=True, mode="serialization"),
                }
                for c in REGISTRY.all()
            ],
        }

    @app.post(f"{API}/commands/{{command}}", tags=["commands"])
    async def run_command(command: str, request: Request) -> JSONResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        principal = await auth(request)
        if principal is None:
            return _json(await gw.dispatcher.run(command, {}, None, request_id), request_id)
        payload, bad = await _read_json(request)
        if bad is not None:
            return _json(bad, request_id)
        return _json(await gw.dispatcher.run(command, payload, principal, request_id), request_id)

    @app.post(f"{API}/ipc", tags=["commands"])
    async def ipc(request: Request) -> JSONResponse:
        principal = await auth(request)
        body, bad = await _read_json(request)
        if bad is not None:
            return JSONResponse(
                env.ipc_error(ErrorCode.VALIDATION_ERROR, bad.reply["error"]["message"], None), 400
            )
        status, reply = await _handle_ipc(gw, body, principal)
        return JSONResponse(reply, status_code=status)

    @app.post(f"{API}/stream/{{command}}", tags=["commands"])
    async def stream(command: str, request: Request) -> Any:
        """Run a streaming command (its contract has `streamId`) and stream its output as SSE."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        principal = await auth(request)
        payload, bad = await _read_json(request)
        if bad is not None:
            return _json(bad, request_id)
        cmd = REGISTRY.get(command)
        if principal is not None and cmd is not None and "stream_id" not in cmd.Request.model_fields:
            return _json(failure(ErrorCode.VALIDATION_ERROR, f"{command} does not stream"), request_id)
        stream_id = uuid.uuid4().hex
        queue: asyncio.Queue[Any] = asyncio.Queue()
        sub = await rt.nc.subscribe(subjects.stream_chunk(stream_id), cb=queue.put)
        task = asyncio.create_task(
            gw.dispatcher.run(command, payload, principal, request_id, extra={"streamId": stream_id})
        )
        first = asyncio.create_task(queue.get())
        await asyncio.wait({task, first}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and json.loads(first.result().data).get("done"):
            # Nothing was streamed: the command ended at once (typically an error), so its reply
            # decides the answer — a plain JSON envelope with the matching status, not a stream.
            await task
        if task.done() and not task.result().ok:
            first.cancel()
            await sub.unsubscribe()
            return _json(task.result(), request_id)

        async def events() -> AsyncIterator[dict[str, Any]]:
            try:
                pending_first: asyncio.Task[Any] | None = first
                while True:
                    getter = pending_first or asyncio.create_task(queue.get())
                    pending_first = None
                    done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        chunk = json.loads(getter.result().data)
                        if chunk.get("done"):
                            continue  # the command's own reply carries the final result
                        yield {"event": "chunk", "data": json.dumps(chunk, ensure_ascii=False)}
                        continue
                    getter.cancel()
                    while not queue.empty():
                        chunk = json.loads(queue.get_nowait().data)
                        if not chunk.get("done"):
                            yield {"event": "chunk", "data": json.dumps(chunk, ensure_ascii=False)}
                    outcome = task.result()
                    if outcome.ok:
                        yield {"event": "done", "data": json.dumps(outcome.reply["data"], ensure_ascii=False)}
                    else:
                        yield {
                            "event": "error",
                            "data": json.dumps(outcome.reply["error"], ensure_ascii=False),
                        }
                    return
            finally:
                await sub.unsubscribe()

        return EventSourceResponse(events(), headers={"x-request-id": request_id})

    # --- API keys (admin-only HTTP routes, not seed commands) ----------------------------------------

    async def admin(request: Request) -> JSONResponse | None:
        principal = await auth(request)
        if principal is None:
            return _json(failure(ErrorCode.UNAUTHORIZED, "missing or invalid API key"), "-")
        if principal.role < Role.ADMIN:
            return _json(failure(ErrorCode.FORBIDDEN, "managing API keys needs the admin role"), "-")
        return None

    @app.get(f"{API}/keys", tags=["keys"])
    async def list_keys(request: Request) -> Any:
        denied = await admin(request)
        if denied is not None:
            return denied
        assert gw.keys is not None
        return env.ok({"items": await gw.keys.list()})

    @app.post(f"{API}/keys", tags=["keys"])
    async def create_key(request: Request) -> Any:
        denied = await admin(request)
        if denied is not None:
            return denied
        body, bad = await _read_json(request)
        if bad is not None:
            return _json(bad, "-")
        try:
            spec = NewKey.model_validate(body)
        except ValidationError as exc:
            return _json(
                failure(ErrorCode.VALIDATION_ERROR, "invalid key request", validation_details(exc)), "-"
            )
        assert gw.keys is not None
        key, view = await gw.keys.create(spec.name, Role.parse(spec.role))
        return JSONResponse(env.ok({**view, "key": key}), status_code=201)

    @app.delete(f"{API}/keys/{{key_id}}", tags=["keys"])
    async def revoke_key(key_id: str, request: Request) -> Any:
        denied = await admin(request)
        if denied is not None:
            return denied
        assert gw.keys is not None
        if not await gw.keys.revoke(key_id):
            return _json(failure(ErrorCode.NOT_FOUND, f"no key {key_id!r}"), "-")
        return env.ok({"id": key_id, "revoked": True})

    # --- WebSocket: the seed's IPC both ways, plus pushed events ---------------------------------------

    @app.websocket(f"{API}/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        key = _bearer(ws.headers.get("authorization")) or ws.query_params.get("token")
        principal = await gw.principal(key)
        if principal is None:
            await ws.send_json(env.ipc_error(ErrorCode.UNAUTHORIZED, "missing or invalid API key", None))
            await ws.close(code=4401)
            return
        await WsSession(gw, ws, principal).run()

    return app


async def _counts(db: Any) -> dict[str, int]:
    return {"apiKeys": await db["api_keys"].count_documents({"revoked": False})}


async def _handle_ipc(gw: Gateway, body: Any, principal: Principal | None) -> tuple[int, dict[str, Any]]:
    request_id = (
        body.get("requestId") if isinstance(body, dict) and isinstance(body.get("requestId"), str) else None
    )
    try:
        ipc = IpcRequest.model_validate(body)
    except ValidationError as exc:
        return 422, env.ipc_error(
            ErrorCode.VALIDATION_ERROR,
            "not an IPC envelope {command, payload, requestId}",
            request_id,
            validation_details(exc),
        )
    outcome = await gw.dispatcher.run(ipc.command, ipc.payload, principal, ipc.request_id)
    return _ipc(outcome, ipc.command, ipc.request_id)


class WsSession:
    """One WebSocket client: commands run concurrently; replies and events share one send lock."""

    MAX_SUBSCRIPTIONS = 50

    def __init__(self, gw: Gateway, ws: WebSocket, principal: Principal) -> None:
        self.gw, self.ws, self.principal = gw, ws, principal
        self._lock = asyncio.Lock()
        self._subs: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    async def run(self) -> None:
        try:
            while True:
                text = await self.ws.receive_text()
                try:
                    body = json.loads(text)
                except ValueError:
                    await self.send(
                        env.ipc_error(ErrorCode.VALIDATION_ERROR, "message is not valid JSON", None)
                    )
                    continue
                task = asyncio.create_task(self.handle(body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._tasks:
                task.cancel()
            for sub in self._subs.values():
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass

    async def handle(self, body: Any) -> None:
        if isinstance(body, dict) and body.get("action") in ("subscribe", "unsubscribe"):
            await self.subscription(body)
            return
        _, reply = await _handle_ipc(self.gw, body, self.principal)
        await self.send(reply)

    async def subscription(self, body: dict[str, Any]) -> None:
        request_id = body.get("requestId")
        patterns = body.get("subjects")
        action = body["action"]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns) or not patterns:
            await self.send(
                env.ipc_error(ErrorCode.VALIDATION_ERROR, "subjects must be a non-empty list", request_id)
            )
            return
        bad = [p for p in patterns if not _event_pattern(p)]
        if bad:
            await self.send(
                env.ipc_error(
                    ErrorCode.VALIDATION_ERROR,
                    "only event subjects may be subscribed: tgm.<service|*>.evt.<event|*|>>[.v<n>]",
                    request_id,
                    {"rejected": bad},
                )
            )
            return
        if action == "subscribe":
            if len(self._subs) + len(patterns) > self.MAX_SUBSCRIPTIONS:
                await self.send(env.ipc_error(ErrorCode.RATE_LIMITED, "too many subscriptions", request_id))
                return
            for p in patterns:
                if p not in self._subs:
                    self._subs[p] = await self.gw.rt.nc.subscribe(p, cb=self.push)
        else:
            for p in patterns:
                sub = self._subs.pop(p, None)
                if sub is not None:
                    await sub.unsubscribe()
        await self.send(env.ipc_result(action, {"subjects": sorted(self._subs)}, request_id))

    async def push(self, msg: Any) -> None:
        parts = msg.subject.split(".")
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        try:
            await self.send(
                {
                    "event": parts[3] if len(parts) > 3 else msg.subject,
                    "subject": msg.subject,
                    "data": data,
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            )
        except Exception:  # the socket went away; run() cleans up
            pass


def _event_pattern(pattern: str) -> bool:
    tokens = pattern.split(".")
    if len(tokens) < 4 or tokens[0] != "tgm" or tokens[2] != "evt":
        return False
    return all(t and (t in ("*", ">") or all(c.isalnum() or c in "-_" for c in t)) for t in tokens)


__all__ = ["HTTP_STATUS", "create_app"]
