"""The service's small HTTP side: /healthz (alive), /readyz (NATS and database reachable), /metrics."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from .runtime import ServiceRuntime


def make_app(rt: ServiceRuntime) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        status, ctype, body = 404, "application/json", b'{"error":"not found"}'
        if path == "/healthz":
            status, body = 200, b'{"status":"ok"}'
        elif path == "/readyz":
            info = await rt.info()
            ready = info.health == "ok"
            status = 200 if ready else 503
            body = json.dumps({"ready": ready, "database": info.database.ok, "nats": info.nats.ok}).encode()
        elif path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(rt.registry)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype.encode())]}
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_health(rt: ServiceRuntime, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        make_app(rt), host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # the runtime owns signals
    asyncio.get_running_loop().create_task(server.serve())
    return server
