"""Where documents come from besides the payload: over HTTP (`rag-add-document {url}` downloads here,
streamed, size-capped) and from the gateway's upload store (`rag-add-document {upload}`); every failure
becomes a `DocumentError` an operator understands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from nats.js.errors import ObjectNotFoundError
from tgm_contracts import streams

from .documents import MAX_BYTES, DocumentError, RawDocument


class UploadReader:
    """`rag-add-document {upload}`: the file the caller streamed to `POST /api/v1/uploads`, read from
    the `tgm_uploads` object store (kept an hour there, so a retried command reads it again)."""

    def __init__(self, object_store: Callable[[streams.ObjectStoreSpec], Awaitable[Any]]) -> None:
        self._open = object_store

    async def __call__(self, name: str, mime_type: str | None) -> RawDocument:
        store = await self._open(streams.UPLOADS)
        try:
            info = await store.get_info(name)
        except ObjectNotFoundError:
            raise DocumentError("no such upload (uploads are kept for an hour)") from None
        if int(info.size or 0) > MAX_BYTES:
            raise DocumentError(f"the document is larger than {MAX_BYTES // (1024 * 1024)} MB")
        data = (await store.get(name)).data or b""
        if not data:
            raise DocumentError("the uploaded file is empty")
        return RawDocument(data, name.split("/", 1)[-1], mime_type, "upload")


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
