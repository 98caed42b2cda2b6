"""The WebSocket edge: the seed's IPC envelope both ways, plus events pushed to subscribers.

A connection's commands run concurrently in a TaskGroup scoped to the connection: when the client
goes away, what it still had running is cancelled with it. Replies and pushed events share one send
lock, so frames never interleave.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from tgm_contracts import ErrorCode, subjects
from tgm_contracts import envelope as env

from ..app import Runtime
from ..keys.service import Principal
from .edge import bearer, run_ipc
from .http import API

log = logging.getLogger("tgm.gateway.ws")

#: Close code for a connection without a valid key (4000-4999: the application's own).
UNAUTHORIZED_CLOSE = 4401


def register(api: FastAPI, runtime: Runtime) -> None:
    @api.websocket(f"{API}/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        key = bearer(ws.headers.get("authorization")) or ws.query_params.get("token")
        principal = await runtime.app.keys.authenticate(key)
        if principal is None:
            await ws.send_json(env.ipc_error(ErrorCode.UNAUTHORIZED, "missing or invalid API key", None))
            await ws.close(code=UNAUTHORIZED_CLOSE)
            return
        await WsSession(runtime, ws, principal).run()


def _event_pattern(pattern: str) -> bool:
    """`tgm.<service|*>.evt.<event|*|>>[...]`: only event subjects may be subscribed to."""
    tokens = pattern.split(".")
    if len(tokens) < 4 or tokens[0] != "tgm" or tokens[2] != "evt":
        return False
    return all(t and (t in ("*", ">") or all(c.isalnum() or c in "-_" for c in t)) for t in tokens)


class WsSession:
    """One WebSocket client: commands run concurrently; replies and events share one send lock."""

    MAX_SUBSCRIPTIONS = 50

    def __init__(self, runtime: Runtime, ws: WebSocket, principal: Principal) -> None:
        self.runtime, self.ws, self.principal = runtime, ws, principal
        self._lock = asyncio.Lock()
        self._subs: dict[str, Any] = {}

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    # A disconnect raises here: the group cancels the commands still running.
                    text = await self.ws.receive_text()
                    try:
                        body = json.loads(text)
                    except ValueError:
                        await self.send(
                            env.ipc_error(ErrorCode.VALIDATION_ERROR, "message is not valid JSON", None)
                        )
                        continue
                    tg.create_task(self.handle(body))
        except* WebSocketDisconnect:
            pass
        finally:
            for sub in self._subs.values():
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass

    async def handle(self, body: Any) -> None:
        try:
            if isinstance(body, dict) and body.get("action") in ("subscribe", "unsubscribe"):
                await self.subscription(body)
                return
            _, reply = await run_ipc(self.runtime.app.dispatcher, body, self.principal)
            await self.send(reply)
        except Exception as exc:
            # One command's failure (typically: the socket went away mid-reply) must not end the
            # connection's other commands; the reading loop sees a real disconnect by itself.
            log.debug("websocket message not answered: %s", exc)

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
                    self._subs[p] = await self.runtime.nc.subscribe(p, cb=self.push)
        else:
            for p in patterns:
                sub = self._subs.pop(p, None)
                if sub is not None:
                    await sub.unsubscribe()
        await self.send(env.ipc_result(action, {"subjects": sorted(self._subs)}, request_id))

    async def push(self, msg: Any) -> None:
        parsed = subjects.parse_service(msg.subject)
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        try:
            await self.send(
                {
                    "event": parsed.name if parsed is not None else msg.subject,
                    "subject": msg.subject,
                    "data": data,
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            )
        except Exception:  # the socket went away; run() cleans up
            pass
