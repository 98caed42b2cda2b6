"""Token buckets by name: one per API key (a runaway script cannot starve the others) and one per
client address for failed authentications (guessing keys costs the guesser, not the database).

Both are bounded: past `max_entries` names the least recently used bucket is forgotten, which only
ever gives a name a fresh, full bucket — so memory stays flat whatever names a caller invents.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_entries: int = 100_000) -> None:
        self.rate, self.burst, self.max_entries = rate, burst, max_entries
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, name: str, now: float) -> float:
        tokens, last = self._buckets.get(name, (float(self.burst), now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _store(self, name: str, tokens: float, now: float) -> None:
        self._buckets[name] = (tokens, now)
        self._buckets.move_to_end(name)
        while len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)

    def wait(self, name: str) -> float:
        """0 when a token is there (none is taken), else seconds until one is."""
        tokens = self._level(name, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, name: str) -> float:
        """0 when allowed (a token is taken), else seconds until a token is free."""
        now = time.monotonic()
        tokens = self._level(name, now)
        if tokens >= 1:
            self._store(name, tokens - 1, now)
            return 0.0
        self._store(name, tokens, now)
        return (1 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class KeyRateLimiter(TokenBuckets):
    """Requests per API key (after authentication, so only real key ids get a bucket)."""


class FailedAuthLimiter(TokenBuckets):
    """Failed authentications per client address: `take` on each failure, `wait` before each lookup."""
