"""MaiAgent chatbot through the completions API (seed 001).

- `POST {base}/chatbots/{chatbotId}/completions/` with `{"conversation", "message": {"content"},
  "isStreaming"}` and `Authorization: Api-Key <key>`. No conversation id starts a new conversation;
  we keep the returned id per peer so context continues.
- Whole answers are `{"conversationId", "content", "done"}`; streamed answers are SSE `data:` events
  `{"conversationId", "content" (delta), "done": false}` ending with `{"content": "", "done": true}`.
  Older payloads say `conversation_id`; both are accepted, and a `data: [DONE]` line ends a stream too.
- Citations are not in completions: after an answer we read the conversation's latest outgoing message
  (`GET {base}/messages/?conversation=<id>`) and map its `citations`/`citationNodes` to ours.
- 400 bodies are DRF field maps (`{"field": ["msg"]}`), mapped to VALIDATION_ERROR with the fields.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from tgm_contracts import ErrorCode
from tgm_contracts.models.ai import Citation, ModelInfo

from .base import ChatRequest, ChatResult, ProviderError
from .http import HttpAdapter, join_url, malformed, parse_json, sse_events, status_error, transport_error

log = logging.getLogger("tgm.ai.maiagent")
DEFAULT_BASE = "https://api.maiagent.ai/api/v1/"


def _conversation_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("conversationId") or obj.get("conversation_id") or obj.get("conversation")
    return str(value) if value else None


def map_citations(message: dict[str, Any]) -> list[Citation]:
    """MaiAgent `citationNodes` (text nodes with scores) and `citations` (files) -> our citations."""
    out: list[Citation] = []
    files = {str(c.get("id")): c for c in message.get("citations") or [] if isinstance(c, dict)}
    seen_files: set[str] = set()
    for node in message.get("citationNodes") or []:
        if not isinstance(node, dict):
            continue
        text_node = node.get("chatbotTextNode") or {}
        file_id = str(text_node.get("chatbotFile") or text_node.get("knowledgeBaseFile") or "")
        f = files.get(file_id, {})
        score = node.get("score")
        if score is None:
            try:
                score = float(str(node.get("displayScore"))) / 100.0
            except (TypeError, ValueError):
                score = None
        page = text_node.get("pageNumber")
        out.append(
            Citation(
                knowledge_id=f"maiagent:{file_id or text_node.get('id', '')}",
                document_id=file_id or None,
                chunk_id=str(text_node.get("id")) if text_node.get("id") else None,
                page=page if isinstance(page, int) and page > 0 else None,
                title=text_node.get("filename") or f.get("filename"),
                source=f.get("file") or text_node.get("filename"),
                score=float(score) if isinstance(score, int | float) else None,
                snippet=(text_node.get("text") or "")[:300] or None,
            )
        )
        seen_files.add(file_id)
    for fid, f in files.items():  # files cited without a node
        if fid not in seen_files:
            out.append(
                Citation(
                    knowledge_id=f"maiagent:{fid}",
                    document_id=fid,
                    title=f.get("filename"),
                    source=f.get("file"),
                )
            )
    return out


class MaiAgentProvider(HttpAdapter):
    name = "maiagent"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        chatbot_id: str | None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not chatbot_id:
            raise ProviderError(self.name, ErrorCode.VALIDATION_ERROR, "no chatbot id configured")
        super().__init__(base_url or DEFAULT_BASE, api_key, "Api-Key", timeout, transport)
        self.chatbot_id = chatbot_id

    @property
    def model(self) -> str:
        return f"chatbot:{self.chatbot_id}"

    def _completions_url(self) -> str:
        return join_url(self.base_url, f"chatbots/{self.chatbot_id}/completions/")

    def _body(self, req: ChatRequest, streaming: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"content": req.message}
        if req.system or req.language:
            # Our strategy travels as query metadata; the chatbot's own prompt stays in charge.
            message["queryMetadata"] = {"language": req.language, "tone": req.tone}
        body: dict[str, Any] = {"message": message, "isStreaming": streaming}
        if req.conversation_id:
            body["conversation"] = req.conversation_id
        return body

    async def chat(self, req: ChatRequest) -> ChatResult:
        try:
            resp = await self._client.post(self._completions_url(), json=self._body(req, False))
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        if resp.status_code >= 400:
            raise status_error(self.name, resp)
        data = parse_json(self.name, resp)
        if not isinstance(data, dict) or not isinstance(data.get("content"), str):
            raise malformed(self.name, "no `content` text in the completion")
        conv = _conversation_id(data) or req.conversation_id
        return await self._finish(req, data["content"], conv)

    async def _finish(self, req: ChatRequest, text: str, conv: str | None) -> ChatResult:
        citations = await self._citations(conv) if conv else []
        return ChatResult.estimated(req.message, text, self.model, conversation_id=conv, citations=citations)

    async def _citations(self, conversation_id: str) -> list[Citation]:
        """Citations of the latest outgoing message; a failure here never fails the reply."""
        try:
            resp = await self._client.get(
                join_url(self.base_url, "messages/"), params={"conversation": conversation_id, "pageSize": 5}
            )
            if resp.status_code >= 400:
                return []
            data = resp.json()
            results = data.get("results") if isinstance(data, dict) else data
            messages = [m for m in results or [] if isinstance(m, dict)]
        except (httpx.HTTPError, ValueError):
            log.info("maiagent: could not read citations of conversation %s", conversation_id)
            return []
        outgoing = [m for m in messages if m.get("type") in ("outgoing", None)]
        if not outgoing:
            return []
        latest = max(outgoing, key=lambda m: str(m.get("createdAt") or m.get("created_at") or ""))
        return map_citations(latest)

    async def stream(self, req: ChatRequest) -> AsyncIterator[str | ChatResult]:
        parts: list[str] = []
        conv = req.conversation_id
        try:
            async with self._client.stream(
                "POST", self._completions_url(), json=self._body(req, True)
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise status_error(self.name, resp)
                if "text/event-stream" not in resp.headers.get("content-type", ""):
                    await resp.aread()
                    data = parse_json(self.name, resp)
                    if not isinstance(data, dict) or not isinstance(data.get("content"), str):
                        raise malformed(self.name, "no `content` text in the completion")
                    if data["content"]:
                        yield data["content"]
                    yield await self._finish(req, data["content"], _conversation_id(data) or conv)
                    return
                done = False
                async for event in sse_events(self.name, resp):
                    if event is None:
                        done = True
                        break
                    conv = _conversation_id(event) or conv
                    delta = event.get("content") or ""
                    if not isinstance(delta, str):
                        raise malformed(self.name, "stream `content` is not text")
                    if delta:
                        parts.append(delta)
                        yield delta
                    if event.get("done"):
                        done = True
                        break
                if not done:
                    raise malformed(self.name, "the stream ended without `done: true`")
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        yield await self._finish(req, "".join(parts), conv)

    async def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                provider="maiagent",
                id=self.model,
                name=f"MaiAgent chatbot {self.chatbot_id}",
                kind="chat",
                default=True,
            )
        ]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise ProviderError(self.name, ErrorCode.UNAVAILABLE, "MaiAgent offers no embeddings API")
