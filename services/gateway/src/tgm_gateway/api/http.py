"""The HTTP edge: ops endpoints, the catalogue, one command per POST and the IPC envelope over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tgm_contracts import REGISTRY, ErrorCode
from tgm_contracts import envelope as env

from .. import __version__
from ..app import Runtime
from .edge import caller, json_reply, read_json, run_ipc

API = "/api/v1"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_api(runtime: Runtime, lifespan: Lifespan) -> FastAPI:
    api = FastAPI(
        title="TG-Matrix gateway",
        version=__version__,
        description="Commands of the TG-Matrix catalogue over HTTP, the seed's IPC envelope, WebSocket and SSE.",
        lifespan=lifespan,
    )

    @api.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        nats_ok = runtime.broker._connection is not None and runtime.nc.is_connected
        return JSONResponse({"ready": nats_ok, "nats": nats_ok}, status_code=200 if nats_ok else 503)

    @api.get("/metrics", tags=["ops"])
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    @api.get(f"{API}/commands", tags=["commands"])
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

    @api.post(f"{API}/commands/{{command}}", tags=["commands"])
    async def run_command(command: str, request: Request) -> JSONResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        dispatcher = runtime.app.dispatcher
        principal = await caller(runtime, request)
        if principal is None:
            return json_reply(await dispatcher.run(command, {}, None, request_id), request_id)
        payload, bad = await read_json(request)
        if bad is not None:
            return json_reply(bad, request_id)
        return json_reply(await dispatcher.run(command, payload, principal, request_id), request_id)

    @api.post(f"{API}/ipc", tags=["commands"])
    async def ipc(request: Request) -> JSONResponse:
        principal = await caller(runtime, request)
        body, bad = await read_json(request)
        if bad is not None:
            return JSONResponse(
                env.ipc_error(ErrorCode.VALIDATION_ERROR, bad.reply["error"]["message"], None), 400
            )
        status, reply = await run_ipc(runtime.app.dispatcher, body, principal)
        return JSONResponse(reply, status_code=status)

    return api
