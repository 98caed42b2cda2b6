"""The HTTP edge: ops endpoints, the catalogue, one command per POST and the IPC envelope over HTTP."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from tgm_contracts import REGISTRY, ErrorCode
from tgm_contracts import envelope as env

from .. import __version__
from ..app import Runtime
from ..dispatch import Outcome
from . import openapi
from .body import BodyLimits, read_object
from .edge import caller, ipc_reply, json_reply, run_ipc

API = "/api/v1"

log = logging.getLogger("tgm.gateway.http")

_HTTP_CODES = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND}

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_api(runtime: Runtime, lifespan: Lifespan, limits: BodyLimits) -> FastAPI:
    api = FastAPI(
        title="TG-Matrix gateway",
        version=__version__,
        description="Commands of the TG-Matrix catalogue over HTTP, the seed's IPC envelope, WebSocket and SSE.",
        lifespan=lifespan,
    )

    openapi.install(api, API)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Routing errors (no such route, wrong method) in the error envelope too."""
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        if exc.status_code >= 500:
            code = ErrorCode.INTERNAL
        return JSONResponse(
            env.error(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @api.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        """A bug is logged with its traceback and answered as an INTERNAL envelope, never plain text."""
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            env.error(ErrorCode.INTERNAL, "the gateway failed on this request; see its logs"), status_code=500
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

    @api.post(f"{API}/commands/{{command}}", tags=["commands"], include_in_schema=False)
    async def run_command(command: str, request: Request) -> JSONResponse:
        # Documented per command in /openapi.json (openapi.py), not as this one generic route.
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return json_reply(principal, request_id)
        payload = await read_object(request, limits)
        if isinstance(payload, Outcome):
            return json_reply(payload, request_id)
        return json_reply(
            await runtime.app.dispatcher.run(command, payload, principal, request_id), request_id
        )

    @api.post(f"{API}/ipc", tags=["commands"])
    async def ipc(request: Request) -> JSONResponse:
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return JSONResponse(ipc_reply(principal, None, None)[1], status_code=principal.status)
        body = await read_object(request, limits)
        if isinstance(body, Outcome):
            return JSONResponse(ipc_reply(body, None, None)[1], status_code=body.status)
        status, reply = await run_ipc(runtime.app.dispatcher, body, principal)
        return JSONResponse(reply, status_code=status)

    return api
