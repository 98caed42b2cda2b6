"""Where uploads go: the `tgm_uploads` JetStream object store (contracts `streams.UPLOADS`, kept an hour);
the service a command names an upload to reads it from there. The gateway only writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import IO, Any

from tgm_contracts import streams


class UploadObjects:
    def __init__(self, object_store: Callable[[streams.ObjectStoreSpec], Awaitable[Any]]) -> None:
        self._open = object_store

    async def put(self, name: str, body: IO[bytes]) -> None:
        """Store `body` (read from its current position, in the store's chunks) under `name`."""
        store = await self._open(streams.UPLOADS)
        await store.put(name, body)
