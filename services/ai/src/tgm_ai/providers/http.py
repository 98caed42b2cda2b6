"""HTTP plumbing shared by the remote adapters: their client, error mapping and server-sent-event parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from tgm_contracts import ErrorCode

from .base import ProviderError

_STATUS = {
    400: ErrorCode.VALIDATION_ERROR,
    # The provider refused TG-Matrix's key for it, not the caller's: 502 UPSTREAM_AUTH, never 401.
    401: ErrorCode.UPSTREAM_AUTH,
    403: ErrorCode.UPSTREAM_AUTH,
    404: ErrorCode.NOT_FOUND,
    408: ErrorCode.TIMEOUT,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.VALIDATION_ERROR,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
}
_WHAT = {
    400: "rejected the request",
    401: "rejected the API key",
    403: "refused access with this API key",
    404: "does not know this resource (check the chatbot / endpoint id)",
    408: "timed out",
    413: "found the request too large",
    422: "rejected the request",
    429: "is rate limiting us",
}


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _summary(body: Any) -> str:
    """A short human summary of an error body: DRF field maps, {detail}, {error}, OpenAI {error:{message}}."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str) and err:
            return err[:300]
        if body.get("detail"):
            return str(body["detail"])[:300]
        parts = []
        for k, v in list(body.items())[:5]:
            msg = (
                v if isinstance(v, str) else "; ".join(map(str, v)) if isinstance(v, list) else json.dumps(v)
            )
            parts.append(f"{k}: {msg}")
        return ", ".join(parts)[:300]
    return str(body)[:300] if body else ""


def status_error(provider: str, resp: httpx.Response, body: Any = None) -> ProviderError:
    status = resp.status_code
    if body is None:
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:300]
    code = _STATUS.get(status, ErrorCode.UNAVAILABLE)
    what = _WHAT.get(status, f"answered HTTP {status}" + (" (server error)" if status >= 500 else ""))
    summary = _summary(body)
    message = f"{what} (HTTP {status})" + (f": {summary}" if summary else "")
    if status in (401, 403):
        message += "; check the key in save-ai-settings"
    details: dict[str, Any] = {"provider": provider, "upstreamStatus": status}
    if status in (400, 422) and isinstance(body, dict):
        details["fields"] = body  # DRF-style field errors, useful to the operator
    return ProviderError(
        provider, code, message, status=status, details=details, retry_after=_retry_after(resp)
    )


def transport_error(provider: str, exc: Exception, timeout: float | None = None) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            provider, ErrorCode.TIMEOUT, f"no answer within {timeout or '?'}s", details={"provider": provider}
        )
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ProviderError(
            provider, ErrorCode.VALIDATION_ERROR, f"bad base URL: {exc}", details={"provider": provider}
        )
    return ProviderError(
        provider,
        ErrorCode.UNAVAILABLE,
        f"cannot reach the endpoint ({type(exc).__name__})",
        details={"provider": provider},
    )


def malformed(provider: str, what: str) -> ProviderError:
    return ProviderError(
        provider, ErrorCode.UNAVAILABLE, f"malformed response: {what}", details={"provider": provider}
    )


def parse_json(provider: str, resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (ValueError, UnicodeDecodeError):
        raise malformed(provider, f"body is not JSON ({resp.text[:80]!r})") from None


async def sse_data(resp: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each server-sent event (multi-line data joined), ignoring comments and ids."""
    buf: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if buf:
                yield "\n".join(buf)
                buf = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buf.append(value[1:] if value.startswith(" ") else value)
    if buf:
        yield "\n".join(buf)


async def sse_events(provider: str, resp: httpx.Response) -> AsyncIterator[dict[str, Any] | None]:
    """Each server-sent event's data as the JSON object it must be; None for the `[DONE]` end mark."""
    async for raw in sse_data(resp):
        if raw.strip() == "[DONE]":
            yield None
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            raise malformed(provider, f"stream event is not JSON ({raw[:60]!r})") from None
        if not isinstance(event, dict):
            raise malformed(provider, "stream event is not an object")
        yield event


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


class HttpAdapter:
    """What every remote provider holds: its base URL, its timeout and one pooled httpx client that
    sends the API key in `Authorization` (as `<scheme> <key>`, none without a key)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        scheme: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        headers = {"Authorization": f"{scheme} {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()
