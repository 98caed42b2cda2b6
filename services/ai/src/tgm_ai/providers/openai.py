"""Any OpenAI-compatible endpoint (`/chat/completions`, streaming SSE, `/embeddings`, `/models`) via httpx.

Retrieved passages go into the system prompt numbered `[n]`; the model is asked to cite them the same
way and to answer `[[handoff]]` when the knowledge does not answer the question.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from tgm_contracts import ErrorCode
from tgm_contracts.models.ai import ModelInfo

from .base import ChatRequest, ChatResult, ProviderError, estimate_tokens
from .http import HttpAdapter, join_url, malformed, parse_json, sse_events, status_error, transport_error

HANDOFF_MARK = "[[handoff]]"
_CITE = re.compile(r"\[(\d{1,2})\]")

LANG_NAMES = {"zh-TW": "Traditional Chinese", "zh-CN": "Simplified Chinese", "en": "English"}


def render_messages(req: ChatRequest) -> list[dict[str, str]]:
    system = req.system.strip()
    lang = LANG_NAMES.get(req.language)
    rules = [
        f"Answer in {lang}." if lang else "Answer in the language of the user's message.",
        f"Keep the reply under {req.max_chars} characters.",
        f"If the knowledge below does not answer the question, reply exactly {HANDOFF_MARK}.",
    ]
    if req.passages:
        rules.append("Cite the knowledge you use with its number in brackets, e.g. [1].")
        knowledge = "\n".join(f"[{p.n}] {p.text}" for p in req.passages)
        system = f"{system}\n\n" + "\n".join(rules) + f"\n\nKnowledge:\n{knowledge}"
    else:
        system = f"{system}\n\n" + "\n".join(rules[:2])
    messages = [{"role": "system", "content": system.strip()}]
    for role, content in req.history:
        messages.append({"role": "assistant" if role == "assistant" else "user", "content": content})
    messages.append({"role": "user", "content": req.message})
    return messages


def cited(text: str, numbers: set[int]) -> list[int]:
    return sorted({int(m) for m in _CITE.findall(text) if int(m) in numbers})


class OpenAiProvider(HttpAdapter):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str | None,
        embedding_model: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ProviderError("openai", ErrorCode.VALIDATION_ERROR, "no base URL configured")
        super().__init__(base_url, api_key, "Bearer", timeout, transport)
        self.model = model or "gpt-4o-mini"
        self.embedding_model = embedding_model

    def _body(self, req: ChatRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": req.model or self.model,
            "messages": render_messages(req),
            "temperature": req.temperature,
            "max_tokens": max(64, req.max_chars // 2),
            "stream": stream,
        }
        if req.seed is not None:
            body["seed"] = req.seed
        if req.peer_key:
            body["user"] = req.peer_key
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            resp = await self._client.post(join_url(self.base_url, path), json=body)
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        if resp.status_code >= 400:
            raise status_error(self.name, resp)
        return parse_json(self.name, resp)

    def _finish(self, req: ChatRequest, text: str, model: str, usage: dict[str, Any] | None) -> ChatResult:
        handoff = HANDOFF_MARK in text
        text = text.replace(HANDOFF_MARK, "").strip()
        numbers = {p.n for p in req.passages}
        usage = usage or {}
        return ChatResult(
            text=text,
            model=model,
            prompt_tokens=int(
                usage.get("prompt_tokens") or estimate_tokens(json.dumps(render_messages(req)))
            ),
            completion_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
            used_passages=cited(text, numbers),
            fallback=handoff,
        )

    def _parse(self, req: ChatRequest, data: Any) -> ChatResult:
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise malformed(self.name, "no choices[0].message.content") from None
        if not isinstance(text, str):
            raise malformed(self.name, "content is not text")
        return self._finish(req, text, str(data.get("model") or req.model or self.model), data.get("usage"))

    async def chat(self, req: ChatRequest) -> ChatResult:
        return self._parse(req, await self._post("chat/completions", self._body(req, stream=False)))

    async def stream(self, req: ChatRequest) -> AsyncIterator[str | ChatResult]:
        body = self._body(req, stream=True)
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        model = req.model or self.model
        try:
            async with self._client.stream(
                "POST", join_url(self.base_url, "chat/completions"), json=body
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise status_error(self.name, resp)
                ctype = resp.headers.get("content-type", "")
                if "text/event-stream" not in ctype:
                    # Some servers ignore `stream`; accept a whole JSON answer too.
                    await resp.aread()
                    result = self._parse(req, parse_json(self.name, resp))
                    if result.text:
                        yield result.text
                    yield result
                    return
                # The whole reply may be the hand-off mark: hold text back while it could still be one.
                pending, flushing = "", False
                async for event in sse_events(self.name, resp):
                    if event is None:
                        break
                    if event.get("error"):
                        raise ProviderError(
                            self.name,
                            ErrorCode.UNAVAILABLE,
                            f"stream failed: {event['error']}",
                            details={"provider": self.name},
                        )
                    model = str(event.get("model") or model)
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content") or ""
                        if not delta:
                            continue
                        parts.append(delta)
                        if flushing:
                            yield delta
                            continue
                        pending += delta
                        head = pending.lstrip()
                        if HANDOFF_MARK.startswith(head) or head.startswith(HANDOFF_MARK):
                            continue
                        flushing = True
                        yield pending
                        pending = ""
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        if pending and HANDOFF_MARK not in pending:
            yield pending
        yield self._finish(req, "".join(parts), model, usage)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not self.embedding_model:
            raise ProviderError(self.name, ErrorCode.VALIDATION_ERROR, "no embedding model configured")
        out: list[list[float]] = []
        for i in range(0, len(texts), 64):
            batch = texts[i : i + 64]
            data = await self._post("embeddings", {"model": self.embedding_model, "input": batch})
            try:
                rows = sorted(data["data"], key=lambda r: r.get("index", 0))
                vectors = [[float(x) for x in r["embedding"]] for r in rows]
            except (KeyError, TypeError, ValueError):
                raise malformed(self.name, "no data[].embedding") from None
            if len(vectors) != len(batch):
                raise malformed(self.name, f"{len(vectors)} embeddings for {len(batch)} inputs")
            out.extend(vectors)
        return out

    async def models(self) -> list[ModelInfo]:
        try:
            resp = await self._client.get(join_url(self.base_url, "models"))
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        if resp.status_code >= 400:
            raise status_error(self.name, resp)
        data = parse_json(self.name, resp)
        try:
            ids = [str(m["id"]) for m in data["data"]]
        except (KeyError, TypeError):
            raise malformed(self.name, "no data[].id in the model list") from None
        out = []
        for mid in sorted(ids):
            kind = "embedding" if "embed" in mid else "chat"
            out.append(
                ModelInfo(
                    provider="openai", id=mid, kind=kind, default=mid in (self.model, self.embedding_model)
                )
            )
        return out
