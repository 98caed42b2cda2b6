"""DmFlow bot API (seed 003): flow chat, FAQ, table QA, users, tags and memory templates.

Every answer is the envelope `{"rc": 0, "data": ...}`; `rc != 0` carries `error` (a string). A reply:
1. with a FAQ domain configured, ask `POST /_api/v1/bot/faqs/{faqId}` (`bestThreshold`/`suggThreshold`);
   a TEXT answer that is not a fallback is the reply, suggestions become "did you mean" lines;
2. otherwise (or on fallback) run the flow: `POST /_api/v1/bot/chat` with `platform`, `userId`, `type`
   `text` and `payload {query, type}`; `replies` are strings, or JSON strings of the platform's message
   objects (`{"text": ...}`) when a dialog template is used; `fallback` and `status` (WAIT/LISTEN) kept;
3. on a flow fallback with a table-QA domain, `POST /_api/v1/bot/tableqas/{id}` and list the subjects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from tgm_contracts import ErrorCode
from tgm_contracts.models.ai import Citation, ModelInfo

from .base import ChatRequest, ChatResult, ProviderError
from .http import HttpAdapter, join_url, malformed, parse_json, status_error, transport_error

_RC = {
    10001: (ErrorCode.NOT_FOUND, "domain deleted or not found"),
    10002: (ErrorCode.UNAVAILABLE, "domain closed"),
}


def reply_text(reply: Any) -> str:
    """A DmFlow reply string: plain text (platform api) or a JSON-encoded platform message object."""
    if not isinstance(reply, str):
        reply = json.dumps(reply, ensure_ascii=False) if reply is not None else ""
    s = reply.strip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except ValueError:
            return reply
        if isinstance(obj, dict):
            for key in ("text", "altText", "title", "content"):
                if isinstance(obj.get(key), str):
                    return obj[key]
            tpl = (
                obj.get("attachment", {}).get("payload", {})
                if isinstance(obj.get("attachment"), dict)
                else {}
            )
            if isinstance(tpl.get("text"), str):
                return tpl["text"]
        return ""
    return reply


class DmFlowProvider(HttpAdapter):
    name = "dmflow"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        platform: str = "api",
        branch: str = "prod",
        faq_id: str | None = None,
        tableqa_id: str | None = None,
        best_threshold: float | None = None,
        sugg_threshold: float | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ProviderError(self.name, ErrorCode.VALIDATION_ERROR, "no base URL configured")
        super().__init__(base_url, api_key, "Bearer", timeout, transport)
        self.platform = platform
        self.branch = branch
        self.faq_id = faq_id
        self.tableqa_id = tableqa_id
        self.best_threshold = best_threshold
        self.sugg_threshold = sugg_threshold

    model = "dmflow-bot"

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: Any = None
    ) -> Any:
        """One API call; returns `data` or raises a ProviderError mapped from HTTP status or `rc`."""
        try:
            resp = await self._client.request(method, join_url(self.base_url, path), json=body, params=params)
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc, self.timeout) from None
        payload: Any = None
        if resp.status_code >= 400:
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            raise status_error(self.name, resp, payload)
        payload = parse_json(self.name, resp)
        if not isinstance(payload, dict) or "rc" not in payload:
            raise malformed(self.name, "no `rc` in the envelope")
        rc = payload.get("rc")
        if rc != 0:
            error = str(payload.get("error") or "unknown error")
            code, what = _RC.get(rc if isinstance(rc, int) else -1, (ErrorCode.UNAVAILABLE, "request failed"))
            low = error.lower()
            if any(w in low for w in ("token", "unauthor", "auth", "forbidden", "密鑰", "授權")):
                code, what = ErrorCode.UPSTREAM_AUTH, "rejected the API key"
            elif any(w in low for w in ("required", "invalid", "must", "必填", "格式")):
                code, what = ErrorCode.VALIDATION_ERROR, "rejected the request"
            raise ProviderError(
                self.name,
                code,
                f"{what} (rc={rc}): {error}",
                details={"provider": self.name, "rc": rc, "error": error},
            )
        return payload.get("data") if payload.get("data") is not None else {}

    def user_id(self, req: ChatRequest) -> str:
        return (req.peer_key or "anonymous").replace(":", "_")[:128]

    # --- the three answer sources --------------------------------------------------------------------

    async def faq(self, text: str, user_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "userId": user_id}
        if self.best_threshold is not None:
            body["bestThreshold"] = self.best_threshold
        if self.sugg_threshold is not None:
            body["suggThreshold"] = self.sugg_threshold
        data = await self.call("POST", f"_api/v1/bot/faqs/{self.faq_id}", body)
        if not isinstance(data, dict):
            raise malformed(self.name, "faq data is not an object")
        return data

    async def flow(self, text: str, user_id: str) -> dict[str, Any]:
        body = {
            "branch": self.branch,
            "platform": self.platform,
            "userId": user_id,
            "type": "text",
            "payload": {"query": text, "type": "text"},
        }
        data = await self.call("POST", "_api/v1/bot/chat", body)
        if not isinstance(data, dict) or not isinstance(data.get("replies", []), list):
            raise malformed(self.name, "chat data has no `replies` list")
        return data

    async def tableqa(
        self,
        text: str | None,
        user_id: str,
        session_id: str,
        *,
        filter_map: dict | None = None,
        page: dict | None = None,
        event: str | None = None,
        subject_size: int = 10,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"userId": user_id, "sessionId": session_id, "subjectSize": subject_size}
        if text:
            body["text"] = text
        if filter_map:
            body["filterMap"] = filter_map
        if page:
            body["page"] = page
        if event:
            body["event"] = event
        data = await self.call("POST", f"_api/v1/bot/tableqas/{self.tableqa_id}", body)
        if not isinstance(data, dict):
            raise malformed(self.name, "tableqa data is not an object")
        return data

    async def chat(self, req: ChatRequest) -> ChatResult:
        uid = self.user_id(req)
        suggestions: list[str] = []
        if self.faq_id:
            data = await self.faq(req.message, uid)
            suggestions = [
                str(s.get("question")) for s in data.get("suggQuestions") or [] if isinstance(s, dict)
            ]
            if not data.get("fallback") and data.get("type", "TEXT") == "TEXT" and data.get("answer"):
                cit = Citation(
                    knowledge_id=f"dmflow:faq:{self.faq_id}",
                    title=data.get("question"),
                    source="faq",
                    snippet=str(data.get("answer"))[:300],
                )
                return self._result(req, str(data["answer"]), [cit], 0.85, extra={"faq": data})
        flow = await self.flow(req.message, uid)
        texts = [t for t in (reply_text(r) for r in flow.get("replies") or []) if t]
        extra = {
            "status": flow.get("status"),
            "versionId": flow.get("version_id"),
            "msgType": flow.get("msg_type"),
        }
        if texts and not flow.get("fallback"):
            return self._result(req, "\n".join(texts), [], 0.7, extra=extra)
        if self.tableqa_id:
            tq = await self.tableqa(req.message, uid, session_id=uid)
            subjects = [s for s in tq.get("subjects") or [] if isinstance(s, dict)]
            if subjects and not tq.get("fallback"):
                lines = []
                for s in subjects[:5]:
                    attrs = ", ".join(
                        f"{a.get('name')}: {a.get('value')}"
                        for a in s.get("attributes") or []
                        if isinstance(a, dict)
                    )
                    lines.append(f"{s.get('name')} — {attrs}" if attrs else str(s.get("name")))
                cits = [
                    Citation(
                        knowledge_id=f"dmflow:tableqa:{self.tableqa_id}:{s.get('name')}",
                        title=str(s.get("name")),
                        source="tableqa",
                    )
                    for s in subjects[:5]
                ]
                return self._result(req, "\n".join(lines), cits, 0.7, extra={**extra, "tableqa": tq})
            if tq.get("answer"):
                texts = [str(tq["answer"])]
        if suggestions:
            lead = "您是想問：" if req.language.startswith("zh") else "Did you mean: "
            texts.append(lead + " / ".join(suggestions[:3]))
        result = self._result(req, "\n".join(texts), [], 0.2, extra=extra)
        result.fallback = True
        return result

    def _result(
        self,
        req: ChatRequest,
        text: str,
        citations: list[Citation],
        confidence: float,
        extra: dict[str, Any] | None = None,
    ) -> ChatResult:
        return ChatResult.estimated(
            req.message, text, self.model, citations=citations, confidence=confidence, extra=extra or {}
        )

    async def stream(self, req: ChatRequest) -> AsyncIterator[str | ChatResult]:
        # DmFlow answers whole replies; each reply line streams as one delta.
        result = await self.chat(req)
        lines = result.text.split("\n")
        for i, line in enumerate(lines):
            yield line + ("\n" if i < len(lines) - 1 else "")
        yield result

    # --- users, tags and memory templates ------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        data = await self.call("GET", "_api/v1/bot/info")
        if not isinstance(data, dict):
            raise malformed(self.name, "info data is not an object")
        return data

    async def memory_fields(self) -> list[dict[str, Any]]:
        data = await self.call("GET", "_api/v1/bot/memories")
        return [f for f in (data or {}).get("userFields") or [] if isinstance(f, dict)]

    async def tags(self) -> list[dict[str, Any]]:
        data = await self.call("GET", "_api/v1/bot/tags")
        return [t for t in (data or {}).get("tags") or [] if isinstance(t, dict)]

    async def get_user(self, user_id: str) -> dict[str, Any]:
        data = await self.call("GET", f"_api/v1/bot/users/{user_id}", params={"platform": self.platform})
        return data if isinstance(data, dict) else {}

    async def update_user(
        self,
        user_id: str,
        *,
        username: str | None = None,
        fields: dict[str, Any] | None = None,
        tag_ids: list[str] | None = None,
    ) -> bool:
        """PATCH a user: custom fields by key are translated to the template's field ids."""
        body: dict[str, Any] = {"platform": self.platform}
        if username is not None:
            body["sysFields"] = {"username": username}
        if fields:
            by_key = {f.get("key"): str(f.get("id")) for f in await self.memory_fields()}
            custom = {by_key[k]: str(v) for k, v in fields.items() if k in by_key}
            if custom:
                body["customFields"] = custom
        if tag_ids is not None:
            body["tags"] = tag_ids
        data = await self.call("PATCH", f"_api/v1/bot/users/{user_id}", body)
        return bool((data or {}).get("success", True))

    async def models(self) -> list[ModelInfo]:
        info = await self.info()
        out = [
            ModelInfo(
                provider="dmflow",
                id=self.model,
                name=str(info.get("name") or "DmFlow bot"),
                kind="flow",
                default=True,
                detail=str(info.get("locale") or "") or None,
            )
        ]
        data = await self.call(
            "GET", "_api/v1/bot/domains", params=[("types", "faqEnum"), ("types", "tableqaEnum")]
        )
        for d in (data or {}).get("domains") or []:
            if isinstance(d, dict):
                kind = "faq" if d.get("type") == "faqEnum" else "flow"
                out.append(
                    ModelInfo(
                        provider="dmflow",
                        id=f"{d.get('type')}:{d.get('id')}",
                        name=str(d.get("description") or d.get("name")),
                        kind=kind,
                        default=str(d.get("id")) in (self.faq_id, self.tableqa_id),
                    )
                )
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise ProviderError(self.name, ErrorCode.UNAVAILABLE, "DmFlow offers no embeddings API")
