"""Pacing of the calls to Tailchat servers, per app, by the server's own limits.

- `CallPacer`: at most `calls_per_second` calls per app, spaced evenly (a call waits for its slot; the
  server has no global HTTP limit, so this only keeps one app's burst from hammering its server).
- `AnswerBudget`: the server's callback-answer counter mirrored here. The fork counts answers per bot
  under a key whose 60 s TTL is set again on every counted call, so the counter only starts over after
  60 quiet seconds — "60 answers with less than 60 s between them", not 60 a minute. Past the limit an
  answer is refused here, at once, with `retry_after` (the quiet time left), without calling the server:
  a refused call there would extend its window again, and a press's traceId lives only 30 s, so waiting
  in line is no use.

*Decision:* both are per replica. With several replicas of the service the server's own refusal (mapped to
RATE_LIMITED) is the backstop; answers of one bot normally come from the replica that received its
callbacks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class CallPacer:
    def __init__(self, calls_per_second: float, clock: Clock = time.monotonic) -> None:
        self._interval = 1.0 / calls_per_second
        self._clock = clock
        self._next: dict[str, float] = {}

    def reserve(self, app_id: str) -> float:
        """Take the app's next slot; the seconds to wait before using it (0 when it is now)."""
        now = self._clock()
        slot = max(now, self._next.get(app_id, now))
        self._next[app_id] = slot + self._interval
        return slot - now

    async def wait(self, app_id: str) -> None:
        delay = self.reserve(app_id)
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the wait is the point, not a poll

    def forget(self, app_id: str) -> None:
        self._next.pop(app_id, None)


@dataclass
class _Count:
    used: int
    last: float


class AnswerBudget:
    def __init__(self, limit: int, window_seconds: float, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._counts: dict[str, _Count] = {}

    def take(self, bot: str) -> float | None:
        """Count one answer of `bot`: None when it may go now, else the seconds until it may."""
        now = self._clock()
        count = self._counts.get(bot)
        if count is None or now - count.last >= self.window:
            count = self._counts[bot] = _Count(0, now)
        if count.used >= self.limit:
            return self.window - (now - count.last)
        count.used += 1
        count.last = now
        return None

    def give_back(self, bot: str) -> None:
        """The answer never reached the server's counter (no connection): do not count it."""
        count = self._counts.get(bot)
        if count is not None and count.used > 0:
            count.used -= 1

    def forget(self, bot: str) -> None:
        self._counts.pop(bot, None)
