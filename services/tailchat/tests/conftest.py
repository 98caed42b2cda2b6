"""Component-test wiring of the tailchat service: its real runtime (`tgm_tailchat.bootstrap.build`) on
FastStream's in-memory broker with a real database, talking to `MockTailchat` through an httpx
`MockTransport` — a small stand-in for the fork's OpenAPI bot endpoints with its envelope and its
refusals (HTTP 500 `{name, message, code}`), enough to drive the service's mapping and memory. The
seed-faithful fake of tools/fakes is driven by the integration test.

- `tailchat`: the stand-in (its `requests` are every call it saw, headers included).
- `client`: a `RuntimeClient` of a fresh runtime wired to it (`client.data` calls a command); `err`
  asserts a refusal's code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import RuntimeClient, runtime_client
from tgm_tailchat.bootstrap import build
from tgm_tailchat.settings import TailchatSettings

SERVER = "http://tailchat.test"
APP_ID = "a1b2c3d4e5"
SECRET = "0123456789abcdef0123456789_abcdef012"
BOT_ID = "64f000000000000000000b07"


def _error(status: int, message: str, name: str = "Error") -> httpx.Response:
    return httpx.Response(status, json={"name": name, "message": message, "code": status})


@dataclass
class MockTailchat:
    secret: str = SECRET
    requests: list[httpx.Request] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    traces: set[str] = field(default_factory=set)
    #: operation -> a response to give once instead of the normal one.
    faults: dict[str, httpx.Response | Exception] = field(default_factory=dict)
    bot_info: dict[str, Any] = field(default_factory=dict)
    commands_version: int = 0

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        return [json.loads(r.content or b"{}") for r in self.requests if r.url.path.endswith("/" + operation)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        op = request.url.path.rsplit("/", 1)[-1]
        fault = self.faults.pop(op, None)
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            return fault
        if request.headers.get("x-app-secret") != f"{APP_ID}:{self.secret}":
            return _error(500, "Open app secret not match")
        body = json.loads(request.content or b"{}")
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            return _error(404, "Not found", "NotFoundError")
        result = handler(body)
        if isinstance(result, httpx.Response):
            return result
        return httpx.Response(200, json={"code": 200} if result is None else {"code": 200, "data": result})

    def op_whoami(self, body: dict[str, Any]) -> Any:
        return {"_id": BOT_ID, "nickname": "TestBot", "email": f"open_{APP_ID}@openapi.msgbyte.com"}

    def op_ensureDMWithUser(self, body: dict[str, Any]) -> Any:
        return {"converseId": "dm-" + body["userId"]}

    def op_sendMessage(self, body: dict[str, Any]) -> Any:
        mid = f"m{len(self.messages) + 1:04d}"
        msg = {
            "_id": mid,
            "content": body["content"],
            "author": BOT_ID,
            "converseId": body["converseId"],
            "groupId": body.get("groupId"),
            "meta": body.get("meta", {}),
            "createdAt": "2026-12-02T10:00:00.000Z",
        }
        self.messages[mid] = msg
        return msg

    def op_editMessage(self, body: dict[str, Any]) -> Any:
        msg = self.messages.get(body["messageId"])
        if msg is None:
            return _error(404, "消息不存在", "DataNotFoundError")
        if "content" in body:
            msg["content"] = body["content"]
        if "meta" in body:
            msg["meta"] = body["meta"]  # the whole meta, as the fork's $set does
        msg["isEdited"] = True
        return msg

    def op_deleteMessage(self, body: dict[str, Any]) -> Any:
        if self.messages.pop(body["messageId"], None) is None:
            return _error(404, "消息不存在", "DataNotFoundError")
        return True

    def op_answerCallbackQuery(self, body: dict[str, Any]) -> Any:
        if body.get("appSecret") != f"{APP_ID}:{self.secret}":
            return _error(500, "Open app secret not match")
        if body["traceId"] not in self.traces:
            return _error(500, "Invalid or expired traceId")
        if len(body["text"]) > 200:
            return _error(500, "Text too long (max 200 characters)")
        self.traces.discard(body["traceId"])
        return {"success": True}

    def op_setAppBotInfo(self, body: dict[str, Any]) -> Any:
        name, value = body["fieldName"], body["fieldValue"]
        if name == "username" and "username" in self.bot_info:
            return _error(500, "Bot username already exists and cannot be modified")
        self.bot_info[name] = value
        if name == "commands":
            self.commands_version += 1
        return None

    def op_getBotCommands(self, body: dict[str, Any]) -> Any:
        version, etag = self.commands_version, f"sha1-{self.commands_version}"
        if body.get("ifVersion") == version or body.get("ifEtag") == etag:
            return {"appId": APP_ID, "notModified": True, "version": version, "etag": etag}
        commands = self.bot_info.get("commands") or []
        return {"appId": APP_ID, "appName": "TestBot", "commands": commands, "version": version, "etag": etag}

    def op_getBotCommandsByScope(self, body: dict[str, Any]) -> Any:
        answer = self.op_getBotCommands(body)
        if "commands" in answer:
            wanted = body["scopeType"]
            answer["commands"] = [
                c for c in answer["commands"] if (c.get("scope") or {}).get("type", "default") == wanted
            ]
            answer["scopeType"] = wanted
        return answer


@pytest.fixture
def tailchat() -> MockTailchat:
    return MockTailchat()


def settings(**options: Any) -> TailchatSettings:
    s = TailchatSettings(retry_backoff_seconds=0.01, **options)
    s.runtime = RuntimeSettings()
    return s


@pytest.fixture
async def client(mongo_server: Any, tailchat: MockTailchat) -> AsyncIterator[RuntimeClient]:
    runtime = build(
        settings(public_url="https://tgm.example.com"), transport=httpx.MockTransport(tailchat.handle)
    )
    async with runtime_client(runtime, mongo_server.uri) as c:
        yield c


async def err(client: RuntimeClient, cmd: Any, payload: Any, code: str) -> dict[str, Any]:
    reply = await client.call(cmd, payload)
    assert not reply["ok"], reply
    assert reply["error"]["code"] == code, reply
    return reply["error"]


def register_payload(**extra: Any) -> dict[str, Any]:
    return {"serverUrl": SERVER, "appId": APP_ID, "appSecret": f"{APP_ID}:{SECRET}", **extra}


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
