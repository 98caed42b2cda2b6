"""KeyCache: key records by key id, each trusted for a short while, bounded in size.

Decisions:
- A found key is trusted for `hit_seconds` (1 s by default): a revoked key stops working on every
  replica, and on every open WebSocket (which re-checks its key as often), within about that.
- An unknown key id is remembered as unknown for `miss_seconds` (10 s): a caller presenting the same
  bogus id again and again costs one database read per window, not one per request.
- At most `max_entries` ids are kept (least recently used forgotten first), so inventing key ids
  cannot grow the gateway's memory; together with the failed-auth limit per address (limiter.py)
  inventing them also cannot multiply the database reads.
- Concurrent lookups of one id share a single read (`lookup`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

Record = dict[str, Any] | None


class KeyCache:
    def __init__(self, hit_seconds: float, miss_seconds: float, max_entries: int) -> None:
        self.hit_seconds, self.miss_seconds, self.max_entries = hit_seconds, miss_seconds, max_entries
        self._entries: OrderedDict[str, tuple[float, Record]] = OrderedDict()
        self._reading: dict[str, asyncio.Future[Record]] = {}

    async def lookup(self, key_id: str, read: Callable[[str], Awaitable[Record]]) -> Record:
        """The cached record of `key_id` while fresh, else `read(key_id)` (one read for concurrent callers)."""
        now = time.monotonic()
        entry = self._entries.get(key_id)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key_id)
            return entry[1]
        pending = self._reading.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        self._reading[key_id] = future
        try:
            record = await read(key_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lookup nobody shared must not warn
            raise
        finally:
            self._reading.pop(key_id, None)
        future.set_result(record)
        ttl = self.hit_seconds if record is not None else self.miss_seconds
        self._entries[key_id] = (time.monotonic() + ttl, record)
        self._entries.move_to_end(key_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return record

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
