"""Serving the subjects of what one replica holds (`tgm.acct.<id>.>`), and ending them safely.

nats-py runs a subscription's callbacks in one task, and `unsubscribe()` cancels that task: a
handler still at work on that subscription (a logout served by the account's holder, a QR login
cancelled through its own subject, a send racing a lost lease) would be cancelled before its reply
leaves. So subscriptions end just after a short grace, unless the whole replica is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel
from tgm_contracts import AccountRpc, subjects
from tgm_runtime import CallContext

from ..capabilities import Spawn

#: Long enough for a reply to be written after its handler returned.
REPLY_GRACE_SECONDS = 0.5

Handler = Callable[[Any, CallContext[Any]], Awaitable[Any]]
Routes = Mapping[str, tuple[type[AccountRpc], Handler]]
#: `ServiceRuntime.serve_account`: subscribe `tgm.acct.<id>.>` with these routes.
ServeAccount = Callable[[str, Routes], Awaitable[Any]]
#: Subscribe the subjects of one run held here (a QR login, a scrape) by its id.
Serve = Callable[[str], Awaitable[Any]]


def serve_control(
    serve_account: ServeAccount, rpc: type[AccountRpc], control: Callable[[str, Any], Awaitable[BaseModel]]
) -> Serve:
    """Serve `rpc` for a run held here (QR login, credential scrape): `control(run id, request)`."""

    async def handler(req: Any, ctx: CallContext[Any]) -> BaseModel:
        return await control(subjects.account_of(ctx.subject), req)

    async def serve(run_id: str) -> Any:
        return await serve_account(run_id, {rpc.NAME: (rpc, handler)})

    return serve


async def end_subscription(
    spawn: Spawn, sub: Any, then: Callable[[], Awaitable[None]] | None = None, *, now: bool = False
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

    async def after_grace() -> None:
        await asyncio.sleep(REPLY_GRACE_SECONDS)
        await run()

    spawn(after_grace(), "end-subscription")
