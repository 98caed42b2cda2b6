"""A test client of the gateway, for tests that drive the whole system only from the outside.

`GatewayClient` speaks the gateway's public routes the way an operator's tool does: commands over
HTTP (returning their data, or asserting an error envelope), the IPC route, the SSE stream route
and API keys; `EventFeed` is its WebSocket, collecting every event pushed on the subjects it
subscribed to. `wait_until` is the pace at which such tests poll the system (through the gateway or
the emulator): `tgm_testing.procs.wait_for`, slowed to a rate the stack bears and reporting the last
value seen when it gives up.

The client reads the gateway's address from its source (a `tgm_stack.Stack`, or anything with
`gateway_url` and `admin_key`) at every request, so it keeps working across a restart of the stack.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, Self, TypeVar

import httpx

from .procs import WaitTimeout, wait_for

__all__ = ["EventFeed", "GatewayAddress", "GatewayClient", "wait_until"]

T = TypeVar("T")


class GatewayAddress(Protocol):
    """Where the gateway listens and the admin key it accepts (`tgm_stack.Stack` is one)."""

    @property
    def gateway_url(self) -> str: ...

    @property
    def admin_key(self) -> str: ...


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str = "condition", *, interval: float = 0.5
) -> T:
    """Poll `predicate` every `interval` seconds until it returns a truthy value, and return it.

    Raises `WaitTimeout` naming `what` and the last value seen after `timeout` seconds. The default
    interval is half a second: each probe is a round trip through the whole stack, which polling
    faster would only load (on a small machine, enough to slow what is being waited for)."""
    last: list[T] = []

    def probe() -> T:
        value = predicate()
        last[:] = [value]
        return value

    try:
        return wait_for(probe, timeout, interval, message=what)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc} (last: {last[0]!r})" if last else str(exc)) from None


def _always(data: dict[str, Any]) -> bool:
    return True


class GatewayClient:
    """The gateway's HTTP API with the admin key (or another); remembers which commands it called.

    `post` is the raw exchange (an `httpx.Response`); `call` the reply envelope; `ok` the data of a
    successful reply; `err` the error of a refused one, checked against the expected code and status.
    """

    def __init__(self, source: GatewayAddress, *, timeout: float = 90) -> None:
        self.source = source
        self.key = source.admin_key
        # A dead gateway shows at once (connect), a slow command gets the whole `timeout`.
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=5))
        self.called: set[str] = set()

    @property
    def url(self) -> str:
        return self.source.gateway_url

    def _headers(self, key: str | None, anonymous: bool) -> dict[str, str]:
        return {} if anonymous else {"authorization": f"Bearer {key or self.key}"}

    # ----------------------------------------------------------------- commands

    def post(
        self,
        command: str,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        anonymous: bool = False,
        timeout: float | None = None,
    ) -> httpx.Response:
        """POST a command: with the admin key, another `key`, or no key at all (`anonymous`)."""
        self.called.add(command)
        return self.http.post(
            f"{self.url}/api/v1/commands/{command}",
            json=payload or {},
            headers=self._headers(key, anonymous),
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )

    def call(self, command: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reply envelope (`ok` and `data`, or `ok` false and `error`), whatever the outcome."""
        reply: dict[str, Any] = self.post(command, payload).json()
        assert "ok" in reply, (command, reply)
        return reply

    def ok(self, command: str, payload: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """The data of a successful reply; fails the test on any other outcome."""
        r = self.post(command, payload, timeout=timeout)
        body = r.json()
        assert r.status_code == 200 and body.get("ok"), (command, r.status_code, body)
        return body["data"]

    def err(self, command: str, payload: dict[str, Any], code: str, status: int) -> dict[str, Any]:
        """The error of a refused reply, which must carry `code` with HTTP `status`."""
        r = self.post(command, payload)
        body = r.json()
        assert (r.status_code, body["ok"], body["error"]["code"]) == (status, False, code), (command, body)
        error: dict[str, Any] = body["error"]
        return error

    def pages(self, command: str, payload: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
        """Every item of a paged listing, following `nextCursor` (under `data[key]` when given)."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            data = self.ok(command, {**payload, **({"cursor": cursor} if cursor else {})})
            page = data[key] if key else data
            out += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return out

    # ----------------------------------------------------------------- other routes

    def ipc(self, command: str, payload: dict[str, Any], request_id: str) -> httpx.Response:
        """The IPC route: one command in the desktop app's `{command, payload, requestId}` shape."""
        self.called.add(command)
        return self.http.post(
            f"{self.url}/api/v1/ipc",
            json={"command": command, "payload": payload, "requestId": request_id},
            headers=self._headers(None, False),
        )

    def create_key(self, name: str, role: str) -> dict[str, Any]:
        """A new API key (its view, with the secret under `key`)."""
        r = self.http.post(
            f"{self.url}/api/v1/keys", json={"name": name, "role": role}, headers=self._headers(None, False)
        )
        created: dict[str, Any] = r.json()["data"]
        return created

    def stream(
        self, command: str, payload: dict[str, Any], deadline: float = 30
    ) -> tuple[int, str, list[tuple[str, Any]]]:
        """POST to the SSE route; (status, content type, [(event, parsed data)]), or for a JSON answer
        [("json", body)]. The whole exchange must end within `deadline` seconds."""
        self.called.add(command)
        started = time.monotonic()
        events: list[tuple[str, Any]] = []
        data: list[str]
        with self.http.stream(
            "POST",
            f"{self.url}/api/v1/stream/{command}",
            json=payload,
            headers=self._headers(None, False),
            timeout=deadline,
        ) as r:
            ctype = r.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                r.read()
                return r.status_code, ctype, [("json", r.json())]
            name, data = "message", []  # the event being read: its name, its data lines
            for line in r.iter_lines():
                assert time.monotonic() - started < deadline, f"stream of {command} still open"
                if line == "":
                    if data:
                        events.append((name, json.loads("\n".join(data))))
                    name, data = "message", []
                elif line.startswith(":"):
                    continue  # keep-alive comment
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
            return r.status_code, ctype, events

    def events(self, subjects: list[str], *, token_in_query: bool = False) -> EventFeed:
        """The WebSocket, subscribed to `subjects` (the key in a header, or as `?token=`)."""
        return EventFeed(self.url, self.key, subjects, token_in_query=token_in_query)

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventFeed:
    """The gateway's WebSocket, subscribed to some subjects; collects every event pushed, in order."""

    def __init__(self, url: str, key: str, subjects: list[str], *, token_in_query: bool = False) -> None:
        from websockets.sync.client import connect

        ws_url = url.replace("http://", "ws://") + "/api/v1/ws"
        if token_in_query:
            ws_url += f"?token={key}"
        headers = None if token_in_query else {"authorization": f"Bearer {key}"}
        self._exit = contextlib.ExitStack()
        self.ws = self._exit.enter_context(
            connect(ws_url, additional_headers=headers, open_timeout=10, max_size=None)
        )
        self.items: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.ws.send(json.dumps({"action": "subscribe", "subjects": subjects, "requestId": "sub"}))
        ack = json.loads(self.ws.recv(10))
        assert ack["event"] == "subscribe-result" and ack["data"]["subjects"] == sorted(subjects), ack
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                with self.cond:
                    self.items.append(json.loads(text))
                    self.cond.notify_all()
        except Exception:  # closed: the feed just stops growing
            pass

    def named(self, event: str, pred: Callable[[dict[str, Any]], bool] = _always) -> list[dict[str, Any]]:
        """The data of every `event` pushed so far that `pred` accepts."""
        with self.cond:
            return [m["data"] for m in self.items if m.get("event") == event and pred(m["data"])]

    def wait(
        self, event: str, pred: Callable[[dict[str, Any]], bool] = _always, timeout: float = 30
    ) -> dict[str, Any]:
        """The data of the first `event` that `pred` accepts, pushed already or within `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.items:
                    if m.get("event") == event and pred(m["data"]):
                        data: dict[str, Any] = m["data"]
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event} event pushed within {timeout}s")
                self.cond.wait(left)

    def close(self) -> None:
        self._exit.close()
        self.thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
