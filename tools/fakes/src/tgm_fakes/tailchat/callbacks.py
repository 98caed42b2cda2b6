"""Callbacks to an app's `bot.callbackUrl`, sent the way the server's `got.post` sends them: a compact
JSON body, `Content-Type: application/json`, `X-TC-Payload-Type` and got's User-Agent; no signature,
no auth header, no retry, no timeout; the answer's status and body are ignored (only recorded here).
A `callbackUrl` that is not `http(s)://host[:port][/…]` skips the callback, as on the server.

Each delivery runs on its own daemon thread, so a webhook that never answers holds nothing but that
thread; `Delivery.done` lets the test API wait a bounded time for the outcome.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from .world import CALLBACK_URL, TcApp, js_json

USER_AGENT = "got (https://github.com/sindresorhus/got)"


@dataclass
class Delivery:
    """One callback: what was sent where, and what came of it."""

    kind: str  # inbox | dm.start | buttonCallback
    app_id: str
    url: str | None
    headers: dict[str, str]
    body: dict[str, Any]
    status: int | None = None
    error: str | None = None
    skipped: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "appId": self.app_id,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "error": self.error,
            "skipped": self.skipped,
            "pending": not self.done.is_set(),
        }


class CallbackSender:
    """Sends callbacks and keeps every one of them for the test to read."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def clear(self) -> None:
        self.deliveries = []

    def send(self, app: TcApp, kind: str, body: dict[str, Any]) -> Delivery:
        url = app.bot.get("callbackUrl")
        headers = {"Content-Type": "application/json", "X-TC-Payload-Type": kind, "User-Agent": USER_AGENT}
        delivery = Delivery(kind, app.app_id, url if isinstance(url, str) else None, headers, body)
        self.deliveries.append(delivery)
        if not isinstance(url, str) or not CALLBACK_URL.match(url):
            delivery.skipped = "the app's callbackUrl is not a usable URL"
            delivery.done.set()
            return delivery
        threading.Thread(target=self._post, args=(delivery,), daemon=True, name="tailchat-callback").start()
        return delivery

    @staticmethod
    def _post(delivery: Delivery) -> None:
        assert delivery.url is not None
        request = urllib.request.Request(
            delivery.url, js_json(delivery.body).encode(), delivery.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request) as answer:
                delivery.status = answer.status
        except urllib.error.HTTPError as exc:
            delivery.status = exc.code
        except OSError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        finally:
            delivery.done.set()
