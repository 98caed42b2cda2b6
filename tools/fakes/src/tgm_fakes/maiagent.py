"""A fake MaiAgent built from seed 001: chatbot completions (whole and SSE), messages with citations,
conversations with cursor pages, `Authorization: Api-Key <key>`, DRF-style 400 field maps.

Paths exist both with and without `/v1` (`/api/v1/...` and `/api/...`), as on the real server. The
chatbot answers from a small knowledge base of files and text nodes: the node sharing most words with
the question, cited through `citations`/`citationNodes` of the stored outgoing message.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import FakeState, FaultMiddleware, chunk_words, control_routes, overlap, read_json, sse

DEFAULT_CHATBOT = "550e8400-e29b-41d4-a716-446655440000"
DEFAULT_KEY = "mai-test"

DEFAULT_FILES: list[dict[str, Any]] = [
    {
        "filename": "pricing.pdf",
        "nodes": [
            "The Pro plan costs 30 USD per month and includes 10 accounts.",
            "Pro 方案每月 30 美元，包含 10 個帳號。",
        ],
    },
    {
        "filename": "shipping.md",
        "nodes": [
            "Orders ship within 2 business days; delivery takes 3 to 5 days.",
            "訂單會在 2 個工作天內出貨，運送約需 3 到 5 天。",
        ],
    },
]


def error_body(status: int) -> tuple[int, Any]:
    bodies = {
        400: {"message": ["This field is required."]},
        401: {"detail": "Authentication credentials were not provided or are invalid."},
        404: {"detail": "Not found."},
        429: {"detail": "Request was throttled. Expected available in 7 seconds."},
        500: {"detail": "A server error occurred."},
    }
    return status, bodies.get(status, {"detail": "error"})


def _now_ms() -> str:
    return str(int(time.time() * 1000))


@dataclass
class MaiWorld:
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_KEY})
    chatbots: set[str] = field(default_factory=lambda: {DEFAULT_CHATBOT})
    contacts: set[str] = field(default_factory=set)
    files: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.files:
            for f in DEFAULT_FILES:
                self.add_file(f["filename"], f["nodes"])

    def add_file(self, filename: str, nodes: list[str]) -> dict[str, Any]:
        fid = str(uuid.uuid4())
        f = {
            "id": fid,
            "filename": filename,
            "file": f"https://files.example.org/{filename}",
            "fileType": filename.rsplit(".", 1)[-1],
            "size": sum(len(n) for n in nodes),
            "status": "done",
            "parser": {"id": str(uuid.uuid4()), "name": "default", "provider": "maiagent"},
            "createdAt": _now_ms(),
            "nodes": [
                {
                    "id": str(uuid.uuid4()),
                    "text": n,
                    "pageNumber": i + 1,
                    "charactersCount": len(n),
                    "hitsCount": 0,
                    "updatedAt": _now_ms(),
                    "filename": filename,
                    "chatbotFile": fid,
                    "knowledgeBaseFile": fid,
                }
                for i, n in enumerate(nodes)
            ],
        }
        self.files.append(f)
        return f

    def answer(self, question: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
        for f in self.files:
            for n in f["nodes"]:
                s = overlap(question, n["text"])
                if s > 0 and (best is None or s > best[0]):
                    best = (s, f, n)
        if best is None:
            zh = any("\u4e00" <= ch <= "\u9fff" for ch in question)
            return (
                ("抱歉，我目前沒有這方面的資料。" if zh else "Sorry, I have no information about that."),
                [],
                [],
            )
        score, f, n = best
        n["hitsCount"] += 1
        citation = {k: v for k, v in f.items() if k != "nodes"}
        node = {
            "chatbotTextNode": {
                k: n[k]
                for k in (
                    "id",
                    "charactersCount",
                    "hitsCount",
                    "text",
                    "updatedAt",
                    "filename",
                    "chatbotFile",
                    "knowledgeBaseFile",
                    "pageNumber",
                )
            },
            "score": round(score, 4),
            "displayScore": round(score * 100),
        }
        return n["text"], [citation], [node]


def build(world: MaiWorld | None = None, state: FakeState | None = None) -> Starlette:
    world = world or MaiWorld()
    state = state or FakeState()

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Api-Key ") and auth[8:] in world.api_keys

    def unauthorized() -> Response:
        # A Bearer token is refused like a missing key.
        return JSONResponse(error_body(401)[1], status_code=401)

    def new_conversation(web_chat: str | None = None) -> dict[str, Any]:
        cid = str(uuid.uuid4())
        conv = {
            "id": cid,
            "contact": {"id": str(uuid.uuid4()), "name": "API user", "avatar": None},
            "inbox": {
                "id": web_chat or str(uuid.uuid4()),
                "name": "API",
                "channelType": "web",
                "unreadConversationsCount": 0,
            },
            "title": "",
            "lastMessage": None,
            "lastMessageCreatedAt": None,
            "unreadMessagesCount": 0,
            "autoReplyEnabled": True,
            "isAutoReplyNow": True,
            "lastReadAt": None,
            "createdAt": _now_ms(),
            "isGroupChat": False,
            "enableGroupMention": False,
        }
        world.conversations[cid] = conv
        world.messages[cid] = []
        return conv

    def store(conv_id: str, kind: str, content: str, citations: list, nodes: list) -> dict[str, Any]:
        msg = {
            "id": str(uuid.uuid4()),
            "conversation": conv_id,
            "sender": {
                "id": 1 if kind == "incoming" else 2,
                "name": "user" if kind == "incoming" else "bot",
                "avatar": "",
            },
            "type": kind,
            "content": content,
            "contentPayload": None,
            "feedback": None,
            "createdAt": _now_ms(),
            "attachments": [],
            "citations": citations,
            "citationNodes": nodes,
        }
        world.messages[conv_id].append(msg)
        conv = world.conversations[conv_id]
        conv["lastMessage"] = {k: msg[k] for k in ("id", "type", "content", "createdAt")}
        conv["lastMessageCreatedAt"] = msg["createdAt"]
        if not conv["title"] and kind == "incoming":
            conv["title"] = content[:30]
        return msg

    async def completions(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        chatbot = request.path_params["chatbot_id"]
        if chatbot not in world.chatbots:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        body = await read_json(request)
        if not isinstance(body, dict):
            return JSONResponse(
                {"non_field_errors": ["Invalid data. Expected a dictionary."]}, status_code=400
            )
        message = body.get("message")
        errors: dict[str, Any] = {}
        if not isinstance(message, dict):
            errors["message"] = ["This field is required."]
        elif not isinstance(message.get("content"), str) or not message["content"].strip():
            errors["message"] = {"content": ["This field is required."]}
        elif message.get("sender") and message["sender"] not in world.contacts:
            errors["message"] = {"sender": ["Contact ID 不屬於該組織"]}
        conv_id = body.get("conversation")
        if conv_id and conv_id not in world.conversations:
            errors["conversation"] = [f'Invalid pk "{conv_id}" - object does not exist.']
        if errors:
            return JSONResponse(errors, status_code=400)
        if not conv_id:
            conv_id = new_conversation()["id"]
        assert isinstance(message, dict)  # checked above
        question = message["content"]
        store(conv_id, "incoming", question, [], [])
        text, citations, nodes = world.answer(question)
        streaming = body.get("isStreaming", body.get("is_streaming", False)) is True
        if not streaming:
            store(conv_id, "outgoing", text, citations, nodes)
            return JSONResponse({"conversationId": conv_id, "content": text, "done": True})
        cut = bool(request.scope.get("state", {}).get("stream_cut"))

        async def events() -> AsyncIterator[str]:
            pieces = chunk_words(text)
            for i, piece in enumerate(pieces):
                if cut and i >= len(pieces) // 2:
                    return  # the connection drops: no done marker
                yield json.dumps(
                    {"conversationId": conv_id, "content": piece, "done": False}, ensure_ascii=False
                )
                await asyncio.sleep(0)
            store(conv_id, "outgoing", text, citations, nodes)
            yield json.dumps({"conversationId": conv_id, "content": "", "done": True})

        return sse(events())

    async def messages(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if request.method == "POST":
            body = await read_json(request)
            if not isinstance(body, dict) or not body.get("conversation"):
                return JSONResponse({"conversation": ["This field is required."]}, status_code=400)
            if body["conversation"] not in world.conversations:
                return JSONResponse(
                    {"conversation": ["Invalid pk - object does not exist."]}, status_code=400
                )
            msg = store(body["conversation"], "incoming", str(body.get("content") or ""), [], [])
            text, citations, nodes = world.answer(msg["content"])
            store(body["conversation"], "outgoing", text, citations, nodes)
            return JSONResponse(msg, status_code=201)
        conv_id = request.query_params.get("conversation")
        if not conv_id:
            return JSONResponse({"conversation": ["This field is required."]}, status_code=400)
        if conv_id not in world.messages:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return page(request, list(reversed(world.messages[conv_id])))

    async def message_detail(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        mid = request.path_params["message_id"]
        for msgs in world.messages.values():
            for m in msgs:
                if m["id"] == mid:
                    return JSONResponse(m)
        return JSONResponse({"detail": "Not found."}, status_code=404)

    def page(request: Request, items: list[dict[str, Any]]) -> Response:
        # DRF cursor pages: opaque `next`/`previous` URLs, no `count`.
        try:
            size = max(1, min(100, int(request.query_params.get("pageSize", "20"))))
            offset = int(request.query_params.get("cursor", "0") or 0)
        except ValueError:
            return JSONResponse({"detail": "Invalid cursor"}, status_code=404)
        chunk = items[offset : offset + size]
        nxt = (
            str(request.url.include_query_params(cursor=offset + size))
            if offset + size < len(items)
            else None
        )
        prev = str(request.url.include_query_params(cursor=max(0, offset - size))) if offset else None
        return JSONResponse({"next": nxt, "previous": prev, "results": chunk})

    async def conversations(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        if request.method == "POST":
            body = await read_json(request)
            if not isinstance(body, dict) or not body.get("webChat"):
                return JSONResponse({"webChat": ["This field is required."]}, status_code=400)
            return JSONResponse(new_conversation(str(body["webChat"])), status_code=201)
        items = sorted(world.conversations.values(), key=lambda c: c["createdAt"], reverse=True)
        inbox = request.query_params.get("inbox")
        if inbox:
            items = [c for c in items if c["inbox"]["id"] == inbox]
        return page(request, items)

    async def conversation_detail(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        conv = world.conversations.get(request.path_params["conversation_id"])
        return JSONResponse(conv) if conv else JSONResponse({"detail": "Not found."}, status_code=404)

    routes = []
    for prefix in ("/api/v1", "/api"):
        routes += [
            Route(prefix + "/chatbots/{chatbot_id}/completions/", completions, methods=["POST"]),
            Route(prefix + "/messages/", messages, methods=["GET", "POST"]),
            Route(prefix + "/messages/{message_id}/", message_detail, methods=["GET"]),
            Route(prefix + "/conversations/", conversations, methods=["GET", "POST"]),
            Route(prefix + "/conversations/{conversation_id}/", conversation_detail, methods=["GET"]),
        ]
    routes += control_routes(state)
    app = Starlette(
        routes=routes, middleware=[Middleware(FaultMiddleware, state=state, error_body=error_body)]
    )
    app.state.fake = state
    app.state.world = world
    return app
