"""Queue control: `pause-queue` (all, an account, a campaign; timed or until resumed),
`resume-queue`, `clear-queue` (waiting jobs only: clear never touches a job in flight).

A pause or resume is published as `queue-pause-changed`, on which every replica's scheduler wakes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_campaign import QueueCleared, QueuePauseChanged
from tgm_contracts.models.campaign import JobReason, JobState
from tgm_runtime import Invalid
from tgm_runtime.routes import answers

from .clock import Clock, utc
from .job_events import JobEvents
from .pause_store import pause_view
from .store import WAITING, attempt
from .stores import MessagingStores


class QueueControl:
    def __init__(self, stores: MessagingStores, events: JobEvents, clock: Clock) -> None:
        self.stores, self.events, self.clock = stores, events, clock

    def _scope_query(self, scope: str, account_id: str | None, campaign_id: str | None) -> dict[str, Any]:
        if scope == "account":
            return {"account_id": account_id}
        if scope == "campaign":
            return {"campaign_id": campaign_id}
        return {}

    async def _control_result(
        self, scope: str, account_id: str | None, campaign_id: str | None, paused: bool
    ) -> messaging_cmd.QueueControlResult:
        now = utc(self.clock())
        waiting = await self.stores.jobs.count(
            {**self._scope_query(scope, account_id, campaign_id), "state": {"$in": list(WAITING)}}
        )
        pauses = await self.stores.pauses.active(now)
        return messaging_cmd.QueueControlResult(
            scope=scope,
            account_id=account_id,
            campaign_id=campaign_id,
            paused=paused,
            waiting_jobs=waiting,
            pauses=[pause_view(p) for p in pauses.docs],
        )

    @answers(messaging_cmd.PauseQueue, principal=True)
    async def pause(
        self, req: messaging_cmd.PauseQueueRequest, by: str | None
    ) -> messaging_cmd.QueueControlResult:
        now = utc(self.clock())
        if req.until is not None and req.until <= now:
            raise Invalid("until must be in the future", {"field": "until"})
        await self.stores.pauses.pause(
            req.scope, req.account_id, req.campaign_id, until=req.until, reason=req.reason, by=by, now=now
        )
        await self._pause_changed(req, True, by, until=req.until, reason=req.reason)
        return await self._control_result(req.scope, req.account_id, req.campaign_id, True)

    async def _pause_changed(
        self,
        scope: messaging_cmd.QueueScope,
        paused: bool,
        by: str | None,
        *,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        """Tell every replica (their schedulers wake on it) and run a round here."""
        await self.events.emit(
            QueuePauseChanged(
                scope=scope.scope,
                account_id=scope.account_id,
                campaign_id=scope.campaign_id,
                paused=paused,
                until=until,
                reason=reason,
                by=by,
            )
        )
        self.events.wake()

    @answers(messaging_cmd.ResumeQueue, principal=True)
    async def resume(self, req: messaging_cmd.QueueScope, by: str | None) -> messaging_cmd.QueueControlResult:
        if await self.stores.pauses.resume(req.scope, req.account_id, req.campaign_id):
            await self._pause_changed(req, False, by)
        now = utc(self.clock())
        pauses = await self.stores.pauses.active(now)
        still = (
            pauses.all
            if req.scope == "all"
            else (
                req.account_id in pauses.accounts
                if req.scope == "account"
                else req.campaign_id in pauses.campaigns
            )
        )
        return await self._control_result(req.scope, req.account_id, req.campaign_id, bool(still))

    @answers(messaging_cmd.ClearQueue, principal=True)
    async def clear(
        self, req: messaging_cmd.ClearQueueRequest, by: str | None
    ) -> messaging_cmd.ClearQueueResult:
        now = utc(self.clock())
        scope = self._scope_query(req.scope, req.account_id, req.campaign_id)
        states = set(req.states)
        query: dict[str, Any] = dict(scope)
        if states == {"pending"}:
            query["$or"] = [
                {"state": JobState.PENDING.value},
                {"state": JobState.SCHEDULED.value, "not_before": {"$lte": now}},
            ]
        elif states == {"scheduled"}:
            query["state"] = JobState.SCHEDULED.value
            query["not_before"] = {"$gt": now}
        why = req.reason or "cleared"
        moved = await self.stores.jobs.settle_many_waiting(
            query,
            {
                "state": JobState.CANCELLED.value,
                "reason": JobReason.CLEARED.value,
                "last_error": why,
                "updated_at": now,
            },
            attempt(now, "cancelled", reason=JobReason.CLEARED, error=why),
        )
        in_flight = await self.stores.jobs.count({**scope, "state": JobState.IN_FLIGHT.value})
        await self.events.each_changed(moved, JobState.CANCELLED, JobReason.CLEARED, why)
        await self.events.emit(
            QueueCleared(
                scope=req.scope,
                account_id=req.account_id,
                campaign_id=req.campaign_id,
                cancelled=len(moved),
                by=by,
            )
        )
        return messaging_cmd.ClearQueueResult(cancelled=len(moved), in_flight_untouched=in_flight)

    async def cancel_campaign(self, campaign_id: str, why: str) -> int:
        """Cancel an automation campaign's waiting jobs (reason `campaign_stopped`; jobs in flight
        finish): stop-campaign, remove-campaign and a campaign's `endAt`. Returns how many moved."""
        now = utc(self.clock())
        moved = await self.stores.jobs.settle_many_waiting(
            {"campaign_id": campaign_id},
            {
                "state": JobState.CANCELLED.value,
                "reason": JobReason.CAMPAIGN_STOPPED.value,
                "last_error": why,
                "updated_at": now,
            },
            attempt(now, "cancelled", reason=JobReason.CAMPAIGN_STOPPED, error=why),
            limit=100_000,
        )
        await self.events.each_changed(moved, JobState.CANCELLED, JobReason.CAMPAIGN_STOPPED, why)
        return len(moved)
