"""The HTTP edge: ops endpoints, the catalogue, one command per POST and the IPC envelope over HTTP.

*Decision:* `GET /api/v1/commands` (every command with its request and response JSON Schemas, about
840 KB) is built once per process, on first request, and served as those bytes with a strong ETag
(`If-None-Match` answers 304). The registry cannot change while the process runs, and rebuilding every
schema per request cost seconds under load.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from tgm_contracts import REGISTRY, ErrorCode
from tgm_contracts import envelope as env

from .. import __version__
from ..app import Runtime
from ..dispatch import Outcome
from ..presence import Presence
from . import openapi
from .body import BodyLimits, read_object
from .edge import caller, ipc_reply, json_reply, posted_command, run_ipc

API = "/api/v1"

log = logging.getLogger("tgm.gateway.http")

_HTTP_CODES = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND}


def allowed_methods(api: FastAPI, path: str) -> list[str]:
    """Every method some route of `api` serves at `path`, for a 405's `Allow` (Starlette names only the
    first route it matched: `GET` for `/api/v1/keys`, which also takes POST). The console's catch-all
    (GET on any path) does not count."""
    methods: set[str] = set()
    for route in api.routes:
        regex, served = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is None or not served or getattr(route, "name", "") == "console":
            continue
        if regex.match(path):
            methods |= set(served)
    return sorted(methods)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Catalogue:
    """The catalogue's JSON bytes and their ETag, built once (in a worker thread, so the first request
    does not stall the event loop for the second it takes) and kept for the process."""

    def __init__(self) -> None:
        self._built: tuple[bytes, str] | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def document() -> dict[str, Any]:
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

    @classmethod
    def encode(cls) -> tuple[bytes, str]:
        body = json.dumps(cls.document(), ensure_ascii=False, separators=(",", ":")).encode()
        return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'

    async def body(self) -> tuple[bytes, str]:
        if self._built is None:
            async with self._lock:
                if self._built is None:
                    self._built = await asyncio.to_thread(self.encode)
        return self._built

    async def response(self, if_none_match: str | None, presence: Presence) -> Response:
        """The catalogue with who serves it right now in front: `servedBy` (the services that answered
        the last presence round; null before the first) and `unserved` (commands nobody serves now)."""
        static, tag = await self.body()
        up = None if presence.up is None else sorted(s.value for s in presence.up)
        head = json.dumps({"servedBy": up, "unserved": presence.unserved()}, separators=(",", ":"))
        body = head[:-1].encode() + b"," + static[1:]
        etag = f'"{tag.strip(chr(34))}-{hashlib.sha256(head.encode()).hexdigest()[:12]}"'

        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        presented = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
        if etag in presented or "*" in presented:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)


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
        headers, status, detail = dict(exc.headers or {}), exc.status_code, str(exc.detail)
        if status == 405:
            served = allowed_methods(api, request.url.path)
            if served:
                headers["Allow"] = ", ".join(served)
            else:  # only the console's GET matched: no route of the API is there
                code, status, detail = ErrorCode.NOT_FOUND, 404, f"no route {request.url.path[:100]}"
        return JSONResponse(env.error(code, detail), status_code=status, headers=headers)

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

    @api.get("/asyncapi", tags=["ops"], response_class=Response)
    async def asyncapi_document() -> Response:
        """The NATS side (commands, internal calls, events) as AsyncAPI 3.0, from the contracts."""
        return Response(_asyncapi_bytes(), media_type="application/json")

    @api.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    catalogue_cache = Catalogue()

    @api.get(f"{API}/commands", tags=["commands"], response_class=Response)
    async def catalogue(request: Request) -> Response:
        """Every command with its request/response JSON Schemas and least role (ETag: If-None-Match)."""
        return await catalogue_cache.response(
            request.headers.get("if-none-match"), runtime.app.dispatcher.presence
        )

    @api.post(f"{API}/commands/{{command}}", tags=["commands"], include_in_schema=False)
    async def run_command(command: str, request: Request) -> Response:
        # Documented per command in /openapi.json (openapi.py), not as this one generic route.
        call = await posted_command(runtime, request, limits)
        if isinstance(call, Response):
            return call
        outcome = await runtime.app.dispatcher.run(command, call.payload, call.principal, call.request_id)
        return json_reply(outcome, call.request_id)

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


@functools.cache
def _asyncapi_bytes() -> bytes:
    """The AsyncAPI document, built on first request (the registry cannot change while we run)."""
    from tgm_contracts.asyncapi import document

    return json.dumps(document(__version__)).encode()
