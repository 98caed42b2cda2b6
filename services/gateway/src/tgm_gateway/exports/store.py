"""Where exports live: the `tgm_exports` JetStream object store (declared in contracts `streams.EXPORTS`;
the services that make exports put them there, `tgm_runtime.exports`). The gateway only reads."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import IO, Any

from nats.js.errors import ObjectNotFoundError
from tgm_contracts import streams


class ExportObjects:
    def __init__(self, object_store: Callable[[streams.ObjectStoreSpec], Awaitable[Any]]) -> None:
        self._open = object_store

    async def size(self, name: str) -> int | None:
        """The object's size in bytes; None when there is no such object (or it expired)."""
        store = await self._open(streams.EXPORTS)
        try:
            info = await store.get_info(name)
        except ObjectNotFoundError:
            return None
        return int(info.size or 0)

    async def spooled(self, name: str) -> IO[bytes] | None:
        """The object's bytes in a spooled temporary file at position 0 (memory up to 8 MB, then disk);
        the caller closes it. None when the object is gone."""
        store = await self._open(streams.EXPORTS)
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - handed over
        try:
            await store.get(name, writeinto=spool)
        except ObjectNotFoundError:
            spool.close()
            return None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool
