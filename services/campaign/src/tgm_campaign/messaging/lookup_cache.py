"""Short-lived caches of look-ups.

- `LookupCache`: per-key answers of a directory lookup (aliases, conversations, users), kept a few
  seconds. Those directories only grow, so a slightly old answer is at worst conservative; a round asks
  for the same keys again and again, and the cache spares the database those reads.
- `Fresh`: one value a hot path reads on every event (the chats of running scripted runs, of running
  swarms), read again at most every `ttl` seconds; concurrent readers when it is due share one read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tgm_runtime.single_flight import SingleFlight

T = TypeVar("T")

#: Past this many keys, a lookup's stale entries are dropped.
MAX_KEYS = 50_000


class LookupCache:
    def __init__(self) -> None:
        self._caches: dict[str, dict[str, tuple[float, Any]]] = {}

    async def get(
        self,
        name: str,
        keys: list[str],
        load: Callable[[list[str]], Awaitable[dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> dict[str, Any]:
        """`load`'s answer for each of `keys` (those it had none for left out), at most `ttl` s old."""
        cache = self._caches.setdefault(name, {})
        out: dict[str, Any] = {}
        missing = []
        for k in keys:
            hit = cache.get(k)
            if hit is not None and now - hit[0] < ttl:
                out[k] = hit[1]
            else:
                missing.append(k)
        if missing:
            fresh = await load(missing)
            for k in missing:
                value = fresh.get(k)
                cache[k] = (now, value)
                out[k] = value
        if len(cache) > MAX_KEYS:
            self._caches[name] = {k: v for k, v in cache.items() if now - v[0] < ttl}
        return {k: v for k, v in out.items() if v is not None}


class Fresh(Generic[T]):
    """`read()`'s value, at most `ttl` seconds old (monotonic clock).

    When it is due, the concurrent readers share one read (`SingleFlight`): an event consumer with 32
    events in flight made one query a second instead of one per event in flight (bench/automation,
    200 messages/s behind a backlog: the chats of scripted runs were read ~7 times a second).
    `clear()` — this replica changed what the value reflects — makes the next reader read again; a read
    that was already under way then answers its own callers but is not kept (it may predate the change).
    """

    def __init__(self, read: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._read, self.ttl = read, ttl
        self._kept: tuple[float, T] | None = None
        self._generation = 0
        self._flight = SingleFlight()

    async def get(self) -> T:
        kept = self._kept
        if kept is not None and time.monotonic() - kept[0] < self.ttl:
            return kept[1]
        return await self._flight.run(self._generation, self._load)

    def clear(self) -> None:
        self._kept = None
        self._generation += 1

    async def _load(self) -> T:
        generation, at = self._generation, time.monotonic()
        value = await self._read()
        if generation == self._generation:
            self._kept = (at, value)
        return value
