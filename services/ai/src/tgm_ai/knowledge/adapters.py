"""Documents over HTTP: `rag-add-document {url}` downloads here (streamed, size-capped), and every
failure becomes a `DocumentError` an operator understands."""

from __future__ import annotations

import httpx

from .documents import MAX_BYTES, DocumentError, RawDocument


async def fetch(
    url: str, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
) -> RawDocument:
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code >= 400:
                raise DocumentError(f"the URL answered HTTP {resp.status_code}")
            declared = int(resp.headers.get("content-length") or 0)
            if declared > MAX_BYTES:
                raise DocumentError(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MB")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise DocumentError(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MB")
                chunks.append(chunk)
            mime = (resp.headers.get("content-type") or "").split(";")[0].strip() or None
    except httpx.TimeoutException:
        raise DocumentError(f"the URL did not answer within {timeout:.0f}s") from None
    except httpx.HTTPError as exc:
        raise DocumentError(f"the URL cannot be fetched ({type(exc).__name__})") from None
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None
    return RawDocument(b"".join(chunks), name, mime, url)
