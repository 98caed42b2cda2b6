"""The WebSocket edge: the seed's IPC envelope both ways, plus events pushed to subscribers.

A connection's commands run concurrently in a TaskGroup scoped to the connection: when the client
goes away, what it still had running is cancelled with it. Replies and pushed events share one send
lock, so frames never interleave.

Every frame goes through the same body reader as HTTP (body.py): a binary, oversized, non-UTF-8,
malformed, too deep or non-object frame is answered with an `error` envelope and the socket stays
open.

The key comes one of three ways: the `Authorization: Bearer` header, `?token=` in the URL (both
checked at connect, before any frame is read), or — for browsers, which can set neither a header
nor keep a secret out of a URL — as the first frame, `{"action": "auth", "token": <key>,
"requestId": …}`, sent within `AUTH_DEADLINE_SECONDS`. Until that frame has admitted the key no
other frame is served: anything else first, a key that does not authenticate, or silence past the
deadline is answered with the error and closed with 4401 (the failed-auth limiter counts a wrong key
as it does over HTTP). An admitted first frame is answered `{"event": "auth-result", "data": {id,
name, role}}`. The key is checked again every
`ws_key_check_seconds` for every open socket (one lookup per distinct key, through the key cache): a
revoked key's sockets are told why, then closed with 4401, within about two seconds on every replica.

Pushed events are shown as the key's role may see them (`event_view.py`: a viewer gets no message
texts, login material or full phone numbers).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from tgm_contracts import ErrorCode, subjects
from tgm_contracts import envelope as env

from ..app import Runtime
from ..dispatch import Outcome, failure
from ..keys.service import Principal
from . import event_view
from .body import BodyLimits, parse_object
from .edge import bearer, caller, ipc_reply, run_ipc
from .http import API

log = logging.getLogger("tgm.gateway.ws")

#: Close codes (4000-4999: the application's own): no valid key (at connect or since), and an
#: address refused for too many failed authentications.
UNAUTHORIZED_CLOSE = 4401
RATE_LIMITED_CLOSE = 4429

#: How long a socket opened without a key may take to send its `auth` frame (read at each connect).
AUTH_DEADLINE_SECONDS = 5.0


class OpenSockets:
    """The sockets open on this replica, so their keys can be checked again together."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sessions: set[WsSession] = set()

    async def check_keys(self) -> None:
        by_key: dict[str, list[WsSession]] = {}
        for session in self.sessions:
            by_key.setdefault(session.key, []).append(session)
        for key, sessions in by_key.items():
            if await self.runtime.app.keys.authenticate(key) is None:
                for session in sessions:
                    await session.end(
                        ErrorCode.UNAUTHORIZED,
                        "this API key was revoked or no longer authenticates; the connection closes",
                        UNAUTHORIZED_CLOSE,
                    )


def register(api: FastAPI, runtime: Runtime, limits: BodyLimits, key_check_seconds: float) -> None:
    sockets = OpenSockets(runtime)
    runtime.every(key_check_seconds, sockets.check_keys, "websocket key check")

    @api.websocket(f"{API}/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        key = bearer(ws.headers.get("authorization")) or ws.query_params.get("token")
        request_id: str | None = None
        by_frame = key is None
        if by_frame:
            first = await first_frame_key(ws, limits)
            if first is None:  # the client went away first
                return
            key, request_id = first
        principal = await caller(runtime, ws, key) if key is not None else _no_auth_frame()
        if isinstance(principal, Outcome):
            await ws.send_json(ipc_reply(principal, None, request_id)[1])
            limited = principal.reply["error"]["code"] == ErrorCode.RATE_LIMITED
            await ws.close(code=RATE_LIMITED_CLOSE if limited else UNAUTHORIZED_CLOSE)
            return
        assert key is not None  # admitted, so a key was sent
        if by_frame:
            await ws.send_json(env.ipc_result("auth", principal.view(), request_id))
        session = WsSession(runtime, ws, principal, key, limits)
        sockets.sessions.add(session)
        try:
            await session.run()
        finally:
            sockets.sessions.discard(session)


def _no_auth_frame() -> Outcome:
    return failure(
        ErrorCode.UNAUTHORIZED,
        "missing API key: send 'Authorization: Bearer <key>', '?token=<key>', or the first frame "
        f'{{"action": "auth", "token": "<key>"}} within {AUTH_DEADLINE_SECONDS:g} s '
        "(nothing else is served before it)",
    )


async def first_frame_key(ws: WebSocket, limits: BodyLimits) -> tuple[str | None, str | None] | None:
    """The key and request id of the first frame when it is `{"action": "auth", "token": <key>}`;
    (None, …) when it is anything else or none comes within the deadline; None when the client left."""
    try:
        message = await asyncio.wait_for(ws.receive(), AUTH_DEADLINE_SECONDS)
    except TimeoutError:
        return None, None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    body = parse_object(text, limits) if text is not None else None
    if not isinstance(body, dict):
        return None, None
    request_id = body.get("requestId") if isinstance(body.get("requestId"), str) else None
    token = body.get("token")
    if body.get("action") != "auth" or not isinstance(token, str) or not token:
        return None, request_id
    return token, request_id


def _event_pattern(pattern: str) -> bool:
    """`tgm.<service|*>.evt.<event|*|>>[...]`: only event subjects may be subscribed to."""
    tokens = pattern.split(".")
    if len(tokens) < 4 or tokens[0] != "tgm" or tokens[2] != "evt":
        return False
    return all(t and (t in ("*", ">") or all(c.isalnum() or c in "-_" for c in t)) for t in tokens)


class WsSession:
    """One WebSocket client: commands run concurrently; replies and events share one send lock."""

    MAX_SUBSCRIPTIONS = 50

    def __init__(
        self, runtime: Runtime, ws: WebSocket, principal: Principal, key: str, limits: BodyLimits
    ) -> None:
        self.runtime, self.ws, self.principal, self.key, self.limits = runtime, ws, principal, key, limits
        self._lock = asyncio.Lock()
        self._subs: dict[str, Any] = {}
        self._ended = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    async def end(self, code: ErrorCode, message: str, close_code: int) -> None:
        """Tell the client why, then close; the reading loop then sees the disconnect."""
        if self._ended:
            return
        self._ended = True
        try:
            async with self._lock:
                await self.ws.send_text(json.dumps(env.ipc_error(code, message, None)))
                await self.ws.close(code=close_code)
        except Exception as exc:  # already gone
            log.debug("websocket not closed cleanly: %s", exc)

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                while True:
                    message = await self.ws.receive()
                    if message["type"] == "websocket.disconnect":
                        # Raised inside the group: it cancels the commands still running.
                        raise WebSocketDisconnect(message.get("code", 1000))
                    body = await self.read(message)
                    if body is not None:
                        tg.create_task(self.handle(body))
        except* WebSocketDisconnect:
            pass
        finally:
            for sub in self._subs.values():
                try:
                    await sub.unsubscribe()
                except Exception:
                    pass

    async def read(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """One frame as a JSON object, or None once the refusal is sent (the socket stays open)."""
        text = message.get("text")
        if text is None:
            refusal = env.ipc_error(
                ErrorCode.VALIDATION_ERROR,
                "binary frames are not accepted: send each IPC envelope as a JSON text frame",
                None,
            )
            await self.send(refusal)
            return None
        body = parse_object(text, self.limits)
        if isinstance(body, Outcome):
            await self.send(ipc_reply(body, None, None)[1])
            return None
        return body

    async def handle(self, body: dict[str, Any]) -> None:
        try:
            if body.get("action") in ("subscribe", "unsubscribe"):
                await self.subscription(body)
                return
            if body.get("action") == "auth":
                request_id = body.get("requestId") if isinstance(body.get("requestId"), str) else None
                await self.send(
                    env.ipc_error(
                        ErrorCode.VALIDATION_ERROR, "this connection is authenticated already", request_id
                    )
                )
                return
            try:
                _, reply = await run_ipc(self.runtime.app.dispatcher, body, self.principal)
            except Exception:  # a bug: answered like HTTP's 500, never silence
                log.exception("websocket command failed")
                request_id = body.get("requestId") if isinstance(body.get("requestId"), str) else None
                reply = env.ipc_error(ErrorCode.INTERNAL, "the gateway failed on this message", request_id)
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
        name = parsed.name if parsed is not None else msg.subject
        try:
            await self.send(
                {
                    "event": name,
                    "subject": msg.subject,
                    "data": event_view.for_role(self.principal.role, name, data),
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            )
        except Exception:  # the socket went away; run() cleans up
            pass
