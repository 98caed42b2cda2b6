"""`python -m tgm_gateway`: serve HTTP on TGM_GATEWAY_HOST:TGM_GATEWAY_PORT (default 127.0.0.1:8080).

uvicorn runs on uvloop with the httptools parser (both from uvicorn[standard]): the event loop and the
HTTP parser in C, measured in bench/gateway (issue 16)."""

from __future__ import annotations

import asyncio

import uvicorn
import uvloop
from tgm_runtime.logs import setup_logging
from tgm_runtime.tracing import setup_tracing

from .bootstrap import build, build_app
from .settings import GatewaySettings


async def main() -> None:
    settings = GatewaySettings()
    runtime = build(settings)
    api = build_app(runtime, settings)
    setup_logging("gateway", runtime.settings.replica_id, runtime.settings.log_level)
    setup_tracing("gateway", runtime.settings.otlp_endpoint, runtime.settings.trace_sample_ratio)
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
    )

    async def stop_on_request() -> None:
        await runtime.stop_requested()  # graceful-shutdown asked the gateway to stop too
        server.should_exit = True

    async with asyncio.TaskGroup() as tg:
        watcher = tg.create_task(stop_on_request())
        try:
            await server.serve()
        finally:
            watcher.cancel()


if __name__ == "__main__":
    # `server.serve()` runs on the loop it is awaited in, so the loop is chosen here.
    uvloop.run(main())
