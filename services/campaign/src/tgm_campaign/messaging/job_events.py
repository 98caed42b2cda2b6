"""What happens to a job, told: the `job-state-changed` event of every transition, and the local
waiters of immediate sends (woken by this replica's outcomes, or by another replica's events).

Events inform: they go out through `runtime.emit`, so a broken stream never undoes a delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tgm_contracts.events import Event
from tgm_contracts.events_campaign import JobStateChanged
from tgm_contracts.models.campaign import JobState


class JobWaiters:
    """Immediate sends wait for their job's outcome here (never by sleeping): the scheduler, or the
    event of another replica, resolves them — at the outcome, or as soon as the job is held past the
    waiter's deadline (`held`: a limit known now, such as the warm-up cap, is answered at once with
    its reason and release time instead of after the whole wait)."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[str]]] = {}
        self._deadline: dict[asyncio.Future[str], float] = {}

    def watch(self, job_id: str, deadline: float | None = None) -> asyncio.Future[str]:
        """Start watching before looking at the job, so an outcome in between is not missed.
        `deadline` (epoch seconds): when the waiter gives up anyway."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, []).append(fut)
        if deadline is not None:
            self._deadline[fut] = deadline
        return fut

    def held(self, job_id: str, until: float) -> None:
        """The job waits until `until` (epoch seconds): wake the waiters that would give up before."""
        for fut in self._waiting.get(job_id, []):
            if not fut.done() and self._deadline.get(fut, float("inf")) < until:
                fut.set_result("scheduled")

    @staticmethod
    async def until(fut: asyncio.Future[str], timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None

    def forget(self, job_id: str, fut: asyncio.Future[str]) -> None:
        futs = self._waiting.get(job_id, [])
        if fut in futs:
            futs.remove(fut)
        if not futs:
            self._waiting.pop(job_id, None)
        self._deadline.pop(fut, None)
        if not fut.done():
            fut.cancel()

    def resolve(self, job_id: str, state: str) -> None:
        for fut in self._waiting.get(job_id, []):
            if not fut.done():
                fut.set_result(state)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._waiting


class JobEvents:
    """Publishes job transitions (best effort) and resolves the waiters of this replica."""

    def __init__(self, emit: Callable[[Event], Awaitable[bool]]) -> None:
        #: Best-effort publishing (`runtime.emit`): events inform; a broken stream must not undo a delivery.
        self.emit = emit
        self.waiters = JobWaiters()
        #: Runs a scheduler round now (set by bootstrap when this replica dispatches: `Scheduler.wake`;
        #: `due=` the epoch seconds the new jobs are due, when not now).
        self.wake: Callable[..., None] = lambda *_, **__: None

    async def job_changed(
        self,
        doc: Mapping[str, Any],
        state: JobState,
        previous: str | None,
        *,
        reason: Any = None,
        account_id: str | None = None,
        message_id: int | None = None,
        retry_at: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Publish one transition of one job and wake whoever waits for it here."""
        await self.emit(
            JobStateChanged(
                job_id=doc["_id"],
                state=state,
                previous_state=JobState(previous) if previous else None,
                reason=reason,
                attempts=attempts if attempts is not None else doc.get("attempts", 0),
                account_id=account_id if account_id is not None else doc.get("account_id"),
                peer=doc["peer"],
                lead_id=doc.get("lead_id"),
                campaign_id=doc.get("campaign_id"),
                batch_id=doc.get("batch_id"),
                message_id=message_id,
                retry_at=retry_at,
                error=error,
            )
        )
        if state.terminal:
            self.waiters.resolve(doc["_id"], state.value)
        elif state is JobState.SCHEDULED and retry_at is not None:
            self.waiters.held(doc["_id"], retry_at.timestamp())

    async def each_changed(
        self, docs: Sequence[Mapping[str, Any]], state: JobState, reason: Any, error: str | None
    ) -> None:
        """Publish the same transition of many jobs (200 at a time)."""
        for start in range(0, len(docs), 200):
            await asyncio.gather(
                *(
                    self.job_changed(doc, state, doc["state"], reason=reason, error=error)
                    for doc in docs[start : start + 200]
                )
            )
