"""Ending a subscription that a handler may be answering on.

nats-py runs a subscription's callbacks in one task, and `unsubscribe()` cancels that task: a
handler still at work on that subscription (a logout served by the account's holder, a QR login
cancelled through its own subject, a send racing a lost lease) would be cancelled before its reply
leaves. So subscriptions end just after a short grace, unless the whole replica is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

#: Long enough for a reply to be written after its handler returned.
REPLY_GRACE_SECONDS = 0.5

_pending: set[asyncio.Task[Any]] = set()


async def end_subscription(
    sub: Any, then: Callable[[], Awaitable[None]] | None = None, *, now: bool = False
) -> None:
    """Unsubscribe, then run `then` (e.g. release the lease): after the grace, or at once if `now`."""

    async def run() -> None:
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if then is not None:
            with contextlib.suppress(Exception):
                await then()

    if now:
        await run()
        return

    def spawn() -> None:
        task = asyncio.ensure_future(run())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    asyncio.get_running_loop().call_later(REPLY_GRACE_SECONDS, spawn)
