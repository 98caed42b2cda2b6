"""The gateway's public API, and nothing else: the catalogue (`GET /api/v1/commands`), one command per
`POST /api/v1/commands/<name>`, and the WebSocket `/api/v1/ws` for pushed events.

This module is the CLI's only adapter: httpx and websockets are used here and nowhere else in
`tgm_cli`, and `PUBLIC_ROUTES` lists every route it touches (a test checks the source for others).
Every failure, the gateway's error envelope or a transport problem, becomes an `ApiError` carrying
the gateway's error code, so the exit code follows from the code alone.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

from .config import Credentials

API = "/api/v1"
#: Every route of the gateway this client calls.
PUBLIC_ROUTES = (f"{API}/commands", f"{API}/commands/{{name}}", f"{API}/exports/{{objectName}}", f"{API}/ws")

#: Longer than the longest command timeout of the catalogue (backups: 600 s); the gateway answers
#: TIMEOUT itself when its own deadline for the command passes.
DEFAULT_TIMEOUT = 630.0


class ApiError(Exception):
    """A refused or failed call: the gateway's error code, message, details and retry hint."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status
        self.details, self.retry_after = details, retry_after

    def envelope(self) -> dict[str, Any]:
        """The error as the gateway's envelope shapes it (for `--output json`)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"ok": False, "error": error}


def _transport_error(url: str, exc: Exception) -> ApiError:
    if isinstance(exc, httpx.TimeoutException):
        return ApiError("TIMEOUT", f"no answer from the gateway at {url} in time ({type(exc).__name__})")
    return ApiError("UNAVAILABLE", f"cannot reach the gateway at {url}: {exc}")


class Gateway:
    """A client of one gateway with one key (which may be None for the anonymous catalogue)."""

    def __init__(self, creds: Credentials, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url, self.key = creds.url, creds.key
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=5))

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"} if self.key else {}

    def catalogue(self) -> list[dict[str, Any]]:
        """Every command: name, owner, domain, least role, summary, request and response schemas."""
        try:
            r = self.http.get(f"{API}/commands", headers=self._headers())
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc) from None
        if r.status_code != 200:
            raise ApiError("INTERNAL", f"GET {API}/commands answered {r.status_code}", status=r.status_code)
        commands: list[dict[str, Any]] = r.json()["commands"]
        return commands

    def call(self, command: str, payload: Any) -> Any:
        """The `data` of a successful reply; raises `ApiError` with the envelope's error otherwise."""
        if not self.key:
            raise ApiError("UNAUTHORIZED", "no API key: run `tgm login` or set TGM_KEY")
        try:
            r = self.http.post(f"{API}/commands/{command}", json=payload, headers=self._headers())
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc) from None
        try:
            body = r.json()
        except ValueError:
            raise ApiError(
                "INTERNAL", f"the gateway answered {r.status_code} without JSON", status=r.status_code
            ) from None
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("data")
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            raise ApiError(
                "INTERNAL", f"unexpected reply ({r.status_code}): {body!r:.200}", status=r.status_code
            )
        raise ApiError(
            error["code"],
            str(error.get("message", "")),
            status=r.status_code,
            details=error.get("details"),
            retry_after=error.get("retry_after"),
        )

    def download(self, object_name: str, sink: Any) -> int:
        """An export kept in the object store, streamed into `sink` (a binary file); bytes written."""
        if not self.key:
            raise ApiError("UNAUTHORIZED", "no API key: run `tgm login` or set TGM_KEY")
        written = 0
        try:
            with self.http.stream("GET", f"{API}/exports/{object_name}", headers=self._headers()) as r:
                if r.status_code != 200:
                    r.read()
                    try:
                        error = r.json().get("error") or {}
                    except ValueError:
                        error = {}
                    raise ApiError(
                        str(error.get("code") or "INTERNAL"),
                        str(error.get("message") or f"download answered {r.status_code}"),
                        status=r.status_code,
                    )
                for block in r.iter_bytes():
                    sink.write(block)
                    written += len(block)
        except httpx.HTTPError as exc:
            raise _transport_error(self.url, exc) from None
        return written

    def events(self, subjects: list[str]) -> EventStream:
        """The WebSocket, subscribed to `subjects` (NATS patterns of event subjects)."""
        return EventStream(self.url, self.key, subjects)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventStream:
    """Pushed events of one WebSocket subscription; `next(timeout)` waits for the next one."""

    def __init__(self, url: str, key: str | None, subjects: list[str]) -> None:
        from websockets.exceptions import InvalidStatus, WebSocketException  # only `events` needs them
        from websockets.sync.client import connect

        if not key:
            raise ApiError("UNAUTHORIZED", "no API key: run `tgm login` or set TGM_KEY")
        ws_url = "ws" + url.removeprefix("http") + f"{API}/ws"
        self._exit = contextlib.ExitStack()
        try:
            self.ws = self._exit.enter_context(
                connect(
                    ws_url,
                    additional_headers={"authorization": f"Bearer {key}"},
                    open_timeout=10,
                    close_timeout=3,
                    max_size=None,
                )
            )
        except (OSError, TimeoutError, InvalidStatus, WebSocketException) as exc:
            raise ApiError("UNAVAILABLE", f"cannot open the WebSocket at {ws_url}: {exc}") from None
        try:
            self.subjects = self._subscribe(subjects)
        except BaseException:
            self._exit.close()
            raise

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            text = self.ws.recv(timeout)
        except ConnectionClosed as exc:
            raise ApiError("UNAVAILABLE", f"the gateway closed the WebSocket ({exc})") from None
        message: dict[str, Any] = json.loads(text)
        return message

    def _subscribe(self, subjects: list[str]) -> list[str]:
        self.ws.send(json.dumps({"action": "subscribe", "subjects": subjects, "requestId": "tgm-subscribe"}))
        while True:
            reply = self._receive(30)
            if reply.get("event") == "subscribe-result":
                return list(reply["data"]["subjects"])
            if reply.get("event") == "error":
                err = reply.get("data") or {}
                raise ApiError(
                    err.get("code", "INTERNAL"),
                    err.get("message", "subscribe refused"),
                    details=err.get("details"),
                )

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next pushed event `{event, subject, data, timestamp}`, or None after `timeout` seconds."""
        while True:
            try:
                message = self._receive(timeout)
            except TimeoutError:
                return None
            if "subject" in message:
                return message

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
