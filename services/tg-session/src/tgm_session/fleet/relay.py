"""This replica's part in the lease bucket, and what it holds there served and forwarded.

Whatever one replica holds under a lease (an account `acct.<id>`, a bot `bot.<id>`, a QR login
`qr.<id>`, a scrape `scrape.<id>`) is claimed here, serves its subjects here (`tgm.acct.<id>.…`) and
is let go of here; another replica asked for it forwards the request to the lease's holder.
`Relay` is that, built once in `bootstrap.py` of the lease store, this replica's id and the
runtime's serve / forward / spawn: the account pool and the bot fleet take it as it is.

`HeldRuns` is one kind of run on it, controlled from any replica (a QR login, a scrape): the
replica that starts one claims its lease `<kind>.<run id>`, serves its control rpc, spawns the
run's task and renews the lease every heartbeat; at the end it stops serving and releases the lease.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from tgm_contracts import AccountRpc

from ..capabilities import Forward, Spawn
from .leases import Lease, LeaseStore
from .serving import ServeAccount, end_subscription, serve_control

log = logging.getLogger("tgm.session.relay")

#: What a run's holder does with a control request: `control(run id, request)`.
Control = Callable[[str, Any], Awaitable[BaseModel]]


@dataclass(frozen=True, kw_only=True)
class Relay:
    """The lease store, this replica and the runtime's serve / forward / spawn."""

    leases: LeaseStore
    replica_id: str
    serve_account: ServeAccount
    forward: Forward
    spawn: Spawn
    #: Seconds between two renewals of a held run's lease.
    heartbeat: float

    async def claim(self, key: str, *, adopt: bool = False) -> Lease | None:
        """The lease `key` for this replica if nobody holds it (or, `adopt`, if this replica id held
        it before a restart); None if another replica has it."""
        lease = await self.leases.claim(key, self.replica_id)
        if lease is None and adopt:
            lease = await self.leases.adopt(key, self.replica_id)
        return lease

    def held_runs(self, kind: str, rpc: type[AccountRpc], control: Control, *, timeout: float) -> HeldRuns:
        return HeldRuns(self, kind, rpc, control, timeout=timeout)


class HeldRuns:
    """One kind of run: leases `<kind>.<id>`, served and forwarded (within `timeout`) as `rpc`."""

    def __init__(
        self, relay: Relay, kind: str, rpc: type[AccountRpc], control: Control, *, timeout: float
    ) -> None:
        self.relay = relay
        self.kind = kind
        self.rpc = rpc
        self.timeout = timeout
        self._serve = serve_control(relay.serve_account, rpc, control)

    @property
    def replica_id(self) -> str:
        return self.relay.replica_id

    @property
    def heartbeat(self) -> float:
        return self.relay.heartbeat

    def key(self, run_id: str) -> str:
        return f"{self.kind}.{run_id}"

    async def claim_new(self, run_id: str) -> Lease:
        """The lease of a run just created here: a new id, so nobody else can hold it."""
        lease = await self.relay.claim(self.key(run_id))
        assert lease is not None
        return lease

    async def take_over(self, run_id: str) -> Lease | None:
        """The lease of a run nobody holds, or that this replica id held before a restart."""
        return await self.relay.claim(self.key(run_id), adopt=True)

    async def holder(self, run_id: str) -> str | None:
        return await self.relay.leases.holder(self.key(run_id))

    async def release(self, lease: Lease) -> None:
        await self.relay.leases.release(lease)

    async def serve(self, run_id: str) -> Any:
        """Subscribe the run's control subject here; `end` lets it go."""
        return await self._serve(run_id)

    def spawn(self, work: Coroutine[Any, Any, Any], run_id: str) -> asyncio.Task[Any]:
        """The run's task, `<kind>-<id>`."""
        return self.relay.spawn(work, f"{self.kind}-{run_id}")

    async def renew(self, lease: Lease) -> bool:
        """Renew the run's lease; False (logged) if it expired or another replica has it now."""
        try:
            await self.relay.leases.renew(lease)
        except Exception as exc:
            log.warning("%s lost its lease: %s", lease.key, exc)
            return False
        return True

    def keep(self, run_id: str, lease: Lease, lost: Callable[[], Any]) -> asyncio.Task[Any]:
        """A task renewing the lease every heartbeat until cancelled; `lost()` if it is lost."""

        async def keepalive() -> None:
            while True:
                await asyncio.sleep(self.heartbeat)
                if not await self.renew(lease):
                    lost()
                    return

        return self.relay.spawn(keepalive(), f"{self.kind}-keepalive-{run_id}")

    async def forward(self, run_id: str, req: BaseModel) -> Any:
        """Ask the replica holding the run: the rpc's response, within the kind's timeout."""
        body = req.model_dump(mode="json", by_alias=True, exclude_none=True)
        return await self.relay.forward(self.rpc.subject(run_id), body, self.rpc.Response, self.timeout)

    async def end(self, subscription: Any, lease: Lease | None, *, now: bool = False) -> None:
        """Stop serving the run, then release its lease (None: lost already): after the grace or `now`."""
        release = None if lease is None else functools.partial(self.release, lease)
        await end_subscription(self.relay.spawn, subscription, release, now=now)
