"""Per-key answers of a directory lookup (aliases, conversations, users), kept a few seconds.

Those directories only grow, so a slightly old answer is at worst conservative; a round asks for the
same keys again and again, and the cache spares the database those reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

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
