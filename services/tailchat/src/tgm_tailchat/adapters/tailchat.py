"""The HTTP client of a Tailchat server's OpenAPI bot endpoints (the fork blooworet/tailchat).

- Every call sends `X-App-Secret: <appId>:<secret>` (the composite string the server stores); the secret
  is held in memory only for the call and never logged (httpx logs the URL, never headers).
- Answers: `{"code": 200, "data": …}` on the wire (`{"code": 200}` alone when the action returns
  nothing); the shipped docs show bare results, so a body without the envelope is taken as the result.
  Refusals: mostly HTTP 500 `{name, message, code}`, mapped by `errors.refusal`.
- Retries (`Endpoint.safe`): reads, `ensureDMWithUser`, `editMessage` and `setAppBotInfo` give the same
  result when repeated, so a timeout, a dropped connection or a 502/503/504 is tried again (with
  backoff, `attempts` in all). `sendMessage`, `deleteMessage` and `answerCallbackQuery` are tried once:
  a repeat could post twice, or consume a trace the first call already answered. A connection that
  was refused (nothing reached the server) is retried for every call.
- Pacing: each call waits for its app's slot (`pacing.CallPacer`) first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ..metrics import TailchatMetrics
from ..pacing import CallPacer
from .errors import TailchatError, malformed, refusal, timed_out, unreachable

log = logging.getLogger("tgm.tailchat.client")

#: What stands in for the network in tests (an httpx MockTransport), so callers need not import httpx.
Transport = httpx.AsyncBaseTransport

#: Statuses of a server (or its proxy) that failed before doing anything we asked.
_TRANSIENT = {502, 503, 504}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation: str
    #: Safe to repeat after a failure whose outcome is unknown (see the module docstring).
    safe: bool


WHOAMI = Endpoint("GET", "/api/openapi/bot/whoami", "whoami", True)
SEND_MESSAGE = Endpoint("POST", "/api/openapi/bot/sendMessage", "sendMessage", False)
EDIT_MESSAGE = Endpoint("POST", "/api/openapi/bot/editMessage", "editMessage", True)
DELETE_MESSAGE = Endpoint("POST", "/api/openapi/bot/deleteMessage", "deleteMessage", False)
ENSURE_DM = Endpoint("POST", "/api/openapi/bot/ensureDMWithUser", "ensureDMWithUser", True)
ANSWER_CALLBACK = Endpoint("POST", "/api/openapi/bot/answerCallbackQuery", "answerCallbackQuery", False)
SET_BOT_INFO = Endpoint("POST", "/api/openapi/app/setAppBotInfo", "setAppBotInfo", True)
GET_COMMANDS = Endpoint("POST", "/api/openapi/app/getBotCommands", "getBotCommands", True)
GET_COMMANDS_BY_SCOPE = Endpoint(
    "POST", "/api/openapi/app/getBotCommandsByScope", "getBotCommandsByScope", True
)


@dataclass(frozen=True)
class AppCredentials:
    """What a call needs of an app; `secret` is the part after `<appId>:`."""

    server_url: str
    app_id: str
    secret: str

    @property
    def header(self) -> str:
        return f"{self.app_id}:{self.secret}"

    def __repr__(self) -> str:  # never print the secret
        return f"AppCredentials(server_url={self.server_url!r}, app_id={self.app_id!r}, secret=<hidden>)"


class TailchatClient:
    """One pooled httpx client for every app (the server URL and secret travel with each call)."""

    def __init__(
        self,
        pacer: CallPacer,
        metrics: TailchatMetrics,
        *,
        timeout: float,
        attempts: int,
        backoff: float,
        transport: Transport | None = None,
    ) -> None:
        self._pacer = pacer
        self._metrics = metrics
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, app: AppCredentials, endpoint: Endpoint, body: dict[str, Any] | None = None) -> Any:
        """The `data` of the server's answer; raises `TailchatError`."""
        started = time.monotonic()
        outcome = "ok"
        try:
            return await self._attempts_of(app, endpoint, body)
        except TailchatError as exc:
            outcome = exc.code.value
            raise
        finally:
            self._metrics.observe(endpoint.operation, time.monotonic() - started, outcome)

    async def _attempts_of(self, app: AppCredentials, endpoint: Endpoint, body: dict[str, Any] | None) -> Any:
        url = app.server_url.rstrip("/") + endpoint.path
        headers = {"X-App-Secret": app.header, "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            await self._pacer.wait(app.app_id)
            try:
                resp = await self._http.request(
                    endpoint.method,
                    url,
                    json=body if endpoint.method != "GET" else None,
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                error, repeatable = self._transport_error(endpoint, exc)
                if repeatable and attempt < self._attempts:
                    await self._pause(endpoint, attempt, type(exc).__name__)
                    continue
                raise error from None
            if resp.status_code in _TRANSIENT and endpoint.safe and attempt < self._attempts:
                await self._pause(endpoint, attempt, f"HTTP {resp.status_code}")
                continue
            return self._result(endpoint, resp)

    def _transport_error(self, endpoint: Endpoint, exc: httpx.HTTPError) -> tuple[TailchatError, bool]:
        """The error a transport failure means, and whether trying again is safe."""
        op = endpoint.operation
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return unreachable(op, type(exc).__name__), True  # nothing reached the server
        if isinstance(exc, httpx.TimeoutException):
            return timed_out(op, self._timeout), endpoint.safe
        if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return unreachable(op, f"bad server URL: {type(exc).__name__}"), False
        return unreachable(op, type(exc).__name__), endpoint.safe

    async def _pause(self, endpoint: Endpoint, attempt: int, why: str) -> None:
        self._metrics.retries.labels(endpoint.operation).inc()
        log.info("tailchat %s: %s, trying again (attempt %d)", endpoint.operation, why, attempt + 1)
        await asyncio.sleep(self._backoff * (2 ** (attempt - 1)))  # backoff between attempts

    @staticmethod
    def _result(endpoint: Endpoint, resp: httpx.Response) -> Any:
        op = endpoint.operation
        try:
            body = resp.json() if resp.content else None
        except (ValueError, UnicodeDecodeError):
            body = resp.text[:300]
            if resp.status_code < 400:
                raise malformed(op, f"a body that is not JSON (HTTP {resp.status_code})") from None
        if resp.status_code >= 400:
            raise refusal(resp.status_code, body, op)
        if isinstance(body, dict) and isinstance(body.get("code"), int) and set(body) <= {"code", "data"}:
            if body["code"] != 200:
                raise refusal(body["code"] if 400 <= body["code"] <= 599 else 500, body, op)
            return body.get("data")
        return body
