"""What the three fakes share: fault injection, request recording, a loopback server runner, SSE."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

FAULT_MODES = ("ok", "401", "400", "404", "429", "500", "timeout", "malformed", "schema", "stream-cut")


@dataclass
class Faults:
    """The fault a fake injects on its next `count` API calls (None = until changed)."""

    mode: str = "ok"
    count: int | None = None
    delay: float = 30.0  # how long `timeout` stalls before answering

    def take(self) -> str:
        if self.mode == "ok":
            return "ok"
        mode = self.mode
        if self.count is not None:
            self.count -= 1
            if self.count <= 0:
                self.mode, self.count = "ok", None
        return mode

    def set(self, mode: str, count: int | None = None, delay: float | None = None) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {', '.join(FAULT_MODES)}")
        self.mode, self.count = mode, count
        if delay is not None:
            self.delay = delay


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeState:
    faults: Faults = field(default_factory=Faults)
    requests: list[Recorded] = field(default_factory=list)

    def last(self, path_contains: str = "") -> Recorded | None:
        for r in reversed(self.requests):
            if path_contains in r.path:
                return r
        return None


ErrorBody = Callable[[int], tuple[int, Any]]


def fault_response(mode: str, error_body: ErrorBody) -> Response | None:
    """The response for an injected fault, or None to answer normally (`ok`, `timeout` after sleeping)."""
    if mode in ("401", "400", "404", "429", "500"):
        status, body = error_body(int(mode))
        headers = {"Retry-After": "7"} if mode == "429" else None
        return JSONResponse(body, status_code=status, headers=headers)
    if mode == "malformed":
        return PlainTextResponse("<html><body>502 Bad Gateway</body></html>{not json", status_code=200)
    if mode == "schema":
        return JSONResponse({"unexpected": True}, status_code=200)
    return None


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def control_routes(state: FakeState) -> list[Route]:
    """`POST /_fake/faults {"mode", "count"?, "delay"?}`, `GET /_fake/requests`, `POST /_fake/reset`."""

    async def faults(request: Request) -> Response:
        body = await read_json(request) or {}
        try:
            state.faults.set(str(body.get("mode", "ok")), body.get("count"), body.get("delay"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"mode": state.faults.mode, "count": state.faults.count})

    async def requests(request: Request) -> Response:
        return JSONResponse([r.__dict__ for r in state.requests[-200:]])

    async def reset(request: Request) -> Response:
        state.faults.set("ok")
        state.requests.clear()
        return JSONResponse({"ok": True})

    return [
        Route("/_fake/faults", faults, methods=["POST"]),
        Route("/_fake/requests", requests, methods=["GET"]),
        Route("/_fake/reset", reset, methods=["POST"]),
    ]


class FaultMiddleware:
    """Records every API call and injects the configured fault before the route runs."""

    def __init__(self, app: Any, state: FakeState, error_body: ErrorBody) -> None:
        self.app, self.state, self.error_body = app, state, error_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_fake/"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            msg = await receive()
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        query = dict(
            p.split("=", 1) if "=" in p else (p, "")
            for p in scope.get("query_string", b"").decode().split("&")
            if p
        )
        self.state.requests.append(Recorded(scope["method"], scope["path"], query, headers, parsed))
        mode = self.state.faults.take()
        if mode == "timeout":
            await asyncio.sleep(self.state.faults.delay)
        resp = fault_response(mode, self.error_body)
        if mode == "stream-cut":
            scope.setdefault("state", {})["stream_cut"] = True
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if resp is not None:
            await resp(scope, replay, send)
        else:
            await self.app(scope, replay, send)


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for data in events:
            yield f"data: {data}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]", re.I)


def terms(text: str) -> set[str]:
    """Lower-case words and single CJK characters (plus CJK bigrams): enough for a fake's matching."""
    toks = [t.lower() for t in _WORD.findall(text or "")]
    cjk = [t for t in toks if "\u4e00" <= t <= "\u9fff"]
    return set(toks) | {a + b for a, b in itertools.pairwise(cjk)}


def overlap(a: str, b: str) -> float:
    ta, tb = terms(a), terms(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def chunk_words(text: str, size: int = 3) -> list[str]:
    """Split into small pieces for streaming: a few words, or a few CJK characters."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [
        " ".join(words[i : i + size]) + (" " if i + size < len(words) else "")
        for i in range(0, len(words), size)
    ]


class LoopbackServer:
    """Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread; usable from sync or async code."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
