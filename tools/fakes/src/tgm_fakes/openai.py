"""A fake OpenAI-compatible endpoint: `/v1/chat/completions` (whole and SSE-streamed), `/v1/embeddings`,
`/v1/models`, bearer keys, and the error bodies real servers send.

Replies are deterministic: with numbered knowledge in the system prompt the answer is the first
sentence of passage [1] with the citation `[1]`; a message containing `handoff-please` gets
`[[handoff]]`; anything else is echoed. Embeddings are hashed bags of words (64 dimensions,
L2-normalised), so similar texts get similar vectors without any model.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import FakeState, FaultMiddleware, chunk_words, control_routes, read_json, sse, terms

DIM = 64
CHAT_MODELS = ("fake-gpt", "fake-gpt-mini")
EMBED_MODELS = ("fake-embed",)


def error_body(status: int) -> tuple[int, Any]:
    kinds = {
        400: ("invalid_request_error", "Invalid request: 'messages' is required", None),
        401: ("invalid_request_error", "Incorrect API key provided.", "invalid_api_key"),
        404: ("invalid_request_error", "The model does not exist.", "model_not_found"),
        429: ("rate_limit_error", "Rate limit reached. Please try again in 7s.", "rate_limit_exceeded"),
        500: ("server_error", "The server had an error while processing your request.", None),
    }
    t, msg, code = kinds.get(status, ("server_error", "error", None))
    return status, {"error": {"message": msg, "type": t, "param": None, "code": code}}


def embed_text(text: str) -> list[float]:
    v = [0.0] * DIM
    for t in terms(text):
        h = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big")
        v[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def answer(messages: list[dict[str, Any]]) -> str:
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    if "handoff-please" in user:
        return "[[handoff]]"
    m = re.search(r"^\[1\] (.+)$", system, flags=re.M)
    if m:
        first = re.split(r"(?<=[.!?。！？])\s*", m.group(1).strip())[0]
        return f"{first} [1]"
    return f"You said: {user}"


def build(state: FakeState | None = None, api_keys: set[str] | None = None) -> Starlette:
    state = state or FakeState()
    keys = api_keys if api_keys is not None else {"sk-test"}

    def authorized(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in keys

    def unauthorized() -> Response:
        status, body = error_body(401)
        return JSONResponse(body, status_code=status)

    async def chat(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return JSONResponse(error_body(400)[1], status_code=400)
        model = body.get("model") or CHAT_MODELS[0]
        if model not in CHAT_MODELS:
            return JSONResponse(error_body(404)[1], status_code=404)
        text = answer(body["messages"])
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 + 1 for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text) // 4 + 1,
            "total_tokens": prompt_tokens + len(text) // 4 + 1,
        }
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        cut = bool(request.scope.get("state", {}).get("stream_cut"))

        async def events() -> AsyncIterator[str]:
            import json

            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                return json.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                )

            yield chunk({"role": "assistant", "content": ""})
            pieces = chunk_words(text)
            for i, piece in enumerate(pieces):
                if cut and i >= len(pieces) // 2:
                    yield "{broken"  # a connection that dies mid-stream leaves garbage
                    return
                yield chunk({"content": piece})
                await asyncio.sleep(0)
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield json.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield "[DONE]"

        return sse(events())

    async def embeddings(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        body = await read_json(request)
        if not isinstance(body, dict) or "input" not in body:
            return JSONResponse(error_body(400)[1], status_code=400)
        model = body.get("model") or EMBED_MODELS[0]
        if model not in EMBED_MODELS:
            return JSONResponse(error_body(404)[1], status_code=404)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": embed_text(str(t))} for i, t in enumerate(inputs)
        ]
        tokens = sum(len(str(t)) // 4 + 1 for t in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "tgm-fakes"}
                    for m in (*CHAT_MODELS, *EMBED_MODELS)
                ],
            }
        )

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        *control_routes(state),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(FaultMiddleware, state=state, error_body=error_body)]
    )
    app.state.fake = state
    return app
