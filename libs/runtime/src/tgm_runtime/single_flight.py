"""Concurrent callers of the same look-up share one call ("single flight").

A hot path that reads through a short TTL cache (`if fresh: return cached; else: read`) has every
concurrent caller read when the entry expires: an event consumer with 32 events in flight made 32
identical queries a second instead of one (campaign at 200 messages/s, bench/automation: 400
reads of the monitoring state in 50 s where 50 were due). Wrapping the cached call in
`flight.run(key, call)` makes the callers that arrive while a call for `key` is running wait for its
answer (or its exception) instead of starting their own. A call that answers from its cache without
suspending never registers, so the fast path costs a dict look-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """`await call()`, unless a call for `key` is running: then its outcome."""
        while (running := self._running.get(key)) is not None:
            try:
                result: T = await asyncio.shield(running)
                return result
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # this caller is being cancelled
                # the call it waited for was cancelled (its caller was): make the call itself
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = fut
        try:
            value = await call()
        except asyncio.CancelledError:
            fut.cancel()  # a waiter then makes the call itself
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            fut.set_result(value)
            return value
        finally:
            del self._running[key]

    def __len__(self) -> int:
        return len(self._running)
