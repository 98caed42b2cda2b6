"""Chores: the queue's periodic sweeps, run by the one replica that holds the `maintenance` lease
(every `CHORES_SECONDS`, on `runtime.every`).

Expired claims go back to the queue (a replica died mid-send), jobs past `expiresAt` are skipped,
timed pauses that reached their end are lifted, jobs held by the warm-up of an account that no
longer warms up are planned again (`replan.py`), and the queue-progress snapshot is published. A
restarted replica also takes back its own predecessor's claims at once instead of waiting for them
to expire. A claim that goes back stays pinned to its account: the retry goes where the first
attempt went, and tg-session answers it from its record if the first one was delivered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tgm_contracts.events_campaign import QueuePauseChanged
from tgm_contracts.models.campaign import JobReason, JobState

from .clock import Clock, utc
from .dispatch import DispatchSettings
from .job_events import JobEvents
from .outcomes import Outcomes
from .store import attempt
from .stores import MessagingStores

#: How long the `maintenance` lease lasts (renewed at every round of the chores).
LEASE_SECONDS = 15.0


class Chores:
    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        clock: Clock,
        outcomes: Outcomes,
        settings: DispatchSettings,
    ) -> None:
        self.stores = stores
        self.events = events
        self.clock = clock
        self.outcomes = outcomes
        self.settings = settings
        #: Publishes the queue-progress snapshot (the status use case; set by bootstrap).
        self.progress: Callable[[], Awaitable[None]] | None = None
        #: Releases held jobs whose accounts' own limits changed (`Replanner`; set by the scheduler).
        self.replan_accounts: Callable[[], Awaitable[int]] | None = None

    async def tick(self) -> None:
        """One round of the chores, if this replica holds (or takes) the `maintenance` lease."""
        now = self.clock()
        if await self.stores.leases.acquire(
            "maintenance", self.settings.owner, utc(now), utc(now + LEASE_SECONDS)
        ):
            await self.run()

    async def release_lease(self) -> None:
        await self.stores.leases.release("maintenance", self.settings.owner)

    async def run(self) -> None:
        await self.release_expired()
        now = utc(self.clock())
        for job in await self.stores.jobs.expired_waiting(now):
            await self.outcomes.skip_waiting(job, JobReason.EXPIRED, "not sent before expiresAt")
        for pause in await self.stores.pauses.lapsed(now):
            await self.events.emit(
                QueuePauseChanged(
                    scope=pause["scope"],
                    account_id=pause.get("account_id"),
                    campaign_id=pause.get("campaign_id"),
                    paused=False,
                    reason="the pause reached its end",
                    by="system",
                )
            )
            self.events.wake()
        if self.replan_accounts is not None:
            await self.replan_accounts()
        if self.progress is not None:
            await self.progress()

    async def recover_own_claims(self) -> int:
        """Claims left by an earlier incarnation of this replica go back to the queue at once."""
        docs = await self.stores.jobs.claims_of(self.settings.replica, self.settings.owner)
        n = 0
        for doc in docs:
            n += await self._requeue_claim(doc, "this replica restarted while the send was in flight")
        return n

    async def release_expired(self) -> int:
        n = 0
        for doc in await self.stores.jobs.expired_claims(utc(self.clock())):
            n += await self._requeue_claim(doc, "claim expired: its scheduler stopped answering")
        return n

    async def _requeue_claim(self, doc: Mapping[str, Any], why: str) -> int:
        claim = doc.get("claim") or {}
        now = utc(self.clock())
        ok = await self.stores.jobs.settle(
            doc["_id"],
            claim.get("token", ""),
            set_={
                "state": JobState.PENDING.value,
                "reason": JobReason.RETRY_BACKOFF.value,
                "not_before": now,
                "updated_at": now,
                "last_error": why,
            },
            history=[attempt(now, "requeued", account_id=doc.get("account_id"), error=why)],
        )
        if ok:
            # Still pinned to its account: the retry goes where the first attempt went.
            await self.events.job_changed(
                doc, JobState.PENDING, JobState.IN_FLIGHT.value, reason=JobReason.RETRY_BACKOFF, error=why
            )
            self.events.wake()
        return int(ok)
