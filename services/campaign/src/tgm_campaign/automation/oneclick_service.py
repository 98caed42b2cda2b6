"""one-click-start and one-click-stop: bring up (or down) what the operator configured, step by step.

Start runs every step, in this order, whatever the previous ones gave (a later step may still work,
and the report says what failed and why):

1. `check`: monitoring's configuration and access check (`start-monitoring` with `dryRun`); ok when
   it finds no critical issue.
2. `groups`: resolve each active, unpaused monitored group and settle its membership, joining through
   tg-session where allowed (`GroupService.check(join=True)`, paced by tg-session). Without
   `forceRefresh` only the groups not `ok` yet are checked; with it every one (re-resolved when its
   chat is unknown, memberships re-checked).
3. `monitoring`: `MonitoringService.start` (which refuses on critical issues: `active` false).
4. `ai`: when `aiAutoReply` is given, `autoReply` of ai's `ai` settings section (`AiControl`); the
   ai service not answering is a failed step.
5. `queue`: when `resumeQueue`, lift a whole-queue pause (`QueueControl.resume`; nothing to lift is
   fine).
6. `campaigns`: `CampaignService.start` of each of `campaignIds` (a running one stays as it is).

Stop reverses it: `campaigns` (when `stopCampaigns`: every running, scheduled or paused campaign,
waiting jobs cancelled), `queue` (when `pauseQueue`: a whole-queue pause), `ai` (when
`disableAiAutoReply`), `monitoring` (stopped).

Every step is idempotent, so running start (or stop) twice is fine: the second run finds things as
the first left them. A step that is not asked for is `skipped` (and ok). Each step publishes
`one-click-progress` when it begins (`ok` null) and when it ends, and a last one (`step` `done`,
100 %) carries the summary of what failed. One run at a time per replica (a lock); runs on two
replicas interleave harmlessly because every step is idempotent. An unexpected error inside a step
fails that step (logged), never the command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tgm_contracts.commands import automation as cmd
from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_campaign import OneClickProgress
from tgm_contracts.models.campaign import CampaignStatus, QueueScope
from tgm_runtime import DomainError, Invalid
from tgm_runtime.routes import answers

from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from .ai_control import AiControl, SysRequest
from .campaign_service import CampaignService
from .group_service import GroupService
from .monitoring_service import MonitoringService
from .ports import Call, Emit

log = logging.getLogger("tgm.campaign.automation.oneclick")

Operation = Literal["start", "stop"]
#: The steps of each operation in order (a step ending reaches index+1 / len of 100 %).
START_STEPS: tuple[cmd.OneClickStepName, ...] = ("check", "groups", "monitoring", "ai", "queue", "campaigns")
STOP_STEPS: tuple[cmd.OneClickStepName, ...] = ("campaigns", "queue", "ai", "monitoring")
#: Most campaigns one-click-start starts (more is refused before any step runs).
MAX_CAMPAIGNS = 200
#: Campaign statuses one-click-stop stops.
STOPPABLE = [CampaignStatus.RUNNING, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED]


@dataclass
class Outcome:
    """What a step did: ok, skipped (not asked for), and a sentence for the operator."""

    ok: bool
    message: str
    skipped: bool = False


class _Run:
    """One start or stop: its steps in order, their progress events and the report."""

    def __init__(self, emit: Emit, operation: Operation, steps: Sequence[cmd.OneClickStepName]) -> None:
        self.emit, self.operation, self.names = emit, operation, list(steps)
        self.steps: list[cmd.OneClickStep] = []
        self.started = time.monotonic()

    def _percent(self, index: int) -> int:
        return round(100 * index / len(self.names))

    async def _progress(self, step: str, message: str, percent: int, ok: bool | None) -> None:
        await self.emit(
            OneClickProgress(operation=self.operation, step=step, message=message, progress=percent, ok=ok)
        )

    async def step(self, name: cmd.OneClickStepName, work: Callable[[], Awaitable[Outcome]]) -> Outcome:
        index = self.names.index(name)
        await self._progress(name, f"{name}…", self._percent(index), None)
        try:
            outcome = await work()
        except DomainError as exc:
            outcome = Outcome(False, f"{exc.code.value}: {exc.message}")
        except Exception as exc:  # a bug or the database away: this step fails, the others still run
            log.exception("one-click %s: step %s failed", self.operation, name)
            outcome = Outcome(False, f"internal error: {type(exc).__name__}")
        self.steps.append(
            cmd.OneClickStep(step=name, ok=outcome.ok, skipped=outcome.skipped, message=outcome.message)
        )
        await self._progress(name, outcome.message, self._percent(index + 1), outcome.ok)
        return outcome

    async def finish(self, monitoring: cmd.MonitoringStatus) -> cmd.OneClickResult:
        failed = [s for s in self.steps if not s.ok]
        ok = not failed
        summary = (
            "every step succeeded"
            if ok
            else "failed: " + "; ".join(f"{s.step} ({s.message})" for s in failed)
        )
        await self._progress("done", summary[:1000], 100, ok)
        return cmd.OneClickResult(
            ok=ok,
            steps=self.steps,
            monitoring=monitoring,
            duration_ms=int((time.monotonic() - self.started) * 1000),
        )


class OneClickService:
    def __init__(
        self,
        monitoring: MonitoringService,
        groups: GroupService,
        campaigns: CampaignService,
        control: QueueControl,
        call: Call,
        emit: Emit,
        clock: Clock,
        request: SysRequest,
    ) -> None:
        self.monitoring, self.groups, self.campaigns, self.control = monitoring, groups, campaigns, control
        self.call, self.emit, self.clock = call, emit, clock
        self.ai = AiControl(call, request)
        self._lock = asyncio.Lock()

    # --- start -----------------------------------------------------------------------------------

    @answers(cmd.OneClickStart, principal=True)
    async def start(self, req: cmd.OneClickStartRequest, by: str | None) -> cmd.OneClickResult:
        if req.campaign_ids and len(set(req.campaign_ids)) > MAX_CAMPAIGNS:
            raise Invalid(
                f"one-click-start starts at most {MAX_CAMPAIGNS} campaigns",
                {"field": "campaignIds", "max": MAX_CAMPAIGNS},
            )
        async with self._lock:
            run = _Run(self.emit, "start", START_STEPS)
            monitoring: cmd.MonitoringStatus | None = None

            async def check() -> Outcome:
                status = await self.monitoring.start(cmd.StartMonitoringRequest(dry_run=True), by)
                return _issues_outcome(status, "configuration and access check")

            async def start_monitoring() -> Outcome:
                nonlocal monitoring
                monitoring = await self.monitoring.start(cmd.StartMonitoringRequest(), by)
                if monitoring.active:
                    return Outcome(True, f"monitoring {monitoring.groups_watched} group(s)")
                return _issues_outcome(monitoring, "monitoring did not start", failed_anyway=True)

            await run.step("check", check)
            await run.step("groups", lambda: self._groups(req.force_refresh))
            await run.step("monitoring", start_monitoring)
            await run.step("ai", lambda: self._ai(req.ai_auto_reply))
            await run.step("queue", lambda: self._resume_queue(req.resume_queue, by))
            await run.step("campaigns", lambda: self._start_campaigns(req.campaign_ids or [], by))
            return await run.finish(monitoring or await self._monitoring_now())

    async def _groups(self, force: bool) -> Outcome:
        docs = [d for d in await self.groups.all() if d.get("is_active", True) and not d.get("paused")]
        if not docs:
            return Outcome(False, "no active monitored group (add-group, or resume a paused one)")
        todo = docs if force else [d for d in docs if d.get("status") != "ok"]
        if not todo:
            return Outcome(True, f"all {len(docs)} group(s) already resolved with a member listener", True)
        try:
            listeners = await self.groups.listeners()
        except DomainError as exc:
            return Outcome(False, f"tg-session did not answer: {exc.message}")
        access: dict[str, int] = {}
        problems: list[str] = []
        for doc in todo:
            _, seen = await self.groups.check(doc, join=True, listeners=listeners)
            access[seen.access] = access.get(seen.access, 0) + 1
            if seen.access != "member":
                problems.append(f"{seen.title or seen.group_id}: {seen.detail or seen.access}")
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(access.items()))
        message = f"checked {len(todo)} of {len(docs)} group(s): {counts}"
        if problems:
            message += " — " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
        return Outcome(not problems, message)

    async def _ai(self, on: bool | None) -> Outcome:
        if on is None:
            return Outcome(True, "AI auto-reply left as it is", True)
        saved = await self.ai.set_auto_reply(on)
        return Outcome(saved is on, f"AI auto-reply {'on' if saved else 'off'}")

    async def _resume_queue(self, resume: bool, by: str | None) -> Outcome:
        if not resume:
            return Outcome(True, "queue left as it is", True)
        result = await self.control.resume(QueueScope(scope="all"), by)
        if result.paused:  # e.g. a pause saved again meanwhile
            return Outcome(False, "the whole queue is still paused")
        return Outcome(True, f"queue running ({result.waiting_jobs} waiting job(s))")

    async def _start_campaigns(self, ids: Sequence[str], by: str | None) -> Outcome:
        if not ids:
            return Outcome(True, "no campaign to start", True)
        started: list[str] = []
        failed: list[str] = []
        for campaign_id in dict.fromkeys(ids):
            try:
                view = await self.campaigns.start(cmd.CampaignIdRequest(campaign_id=campaign_id), by)
            except DomainError as exc:
                failed.append(f"{campaign_id}: {exc.message}")
                continue
            started.append(f"{view.name} {view.status.value}")
        message = ", ".join(started) if started else "none started"
        if failed:
            message += " — failed: " + "; ".join(failed)
        return Outcome(not failed, message)

    # --- stop ------------------------------------------------------------------------------------

    @answers(cmd.OneClickStop, principal=True)
    async def stop(self, req: cmd.OneClickStopRequest, by: str | None) -> cmd.OneClickResult:
        async with self._lock:
            run = _Run(self.emit, "stop", STOP_STEPS)
            monitoring: cmd.MonitoringStatus | None = None

            async def stop_monitoring() -> Outcome:
                nonlocal monitoring
                monitoring = await self.monitoring.stop(by)
                return Outcome(not monitoring.active, "monitoring stopped")

            await run.step("campaigns", lambda: self._stop_campaigns(req.stop_campaigns, by))
            await run.step("queue", lambda: self._pause_queue(req.pause_queue, by))
            await run.step("ai", lambda: self._ai(False if req.disable_ai_auto_reply else None))
            await run.step("monitoring", stop_monitoring)
            return await run.finish(monitoring or await self._monitoring_now())

    async def _stop_campaigns(self, stop: bool, by: str | None) -> Outcome:
        if not stop:
            return Outcome(True, "campaigns left as they are", True)
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.campaigns.list(
                cmd.GetCampaignsRequest(statuses=STOPPABLE, limit=500, cursor=cursor)
            )
            ids.extend(v.id for v in page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        failed: list[str] = []
        for campaign_id in dict.fromkeys(ids):
            try:
                await self.campaigns.stop(cmd.StopCampaignRequest(campaign_id=campaign_id), by)
            except DomainError as exc:
                failed.append(f"{campaign_id}: {exc.message}")
        message = f"stopped {len(ids) - len(failed)} campaign(s)"
        if failed:
            message += " — failed: " + "; ".join(failed)
        return Outcome(not failed, message)

    async def _pause_queue(self, pause: bool, by: str | None) -> Outcome:
        if not pause:
            return Outcome(True, "queue left as it is", True)
        result = await self.control.pause(
            messaging_cmd.PauseQueueRequest(scope="all", reason="one-click-stop"), by
        )
        return Outcome(result.paused, f"queue paused ({result.waiting_jobs} waiting job(s))")

    async def _monitoring_now(self) -> cmd.MonitoringStatus:
        """The monitoring state for the report when its step failed (a placeholder one if that fails
        too: the report must still be given)."""
        try:
            return await self.monitoring.status()
        except Exception as exc:
            log.warning("one-click: monitoring status unavailable: %r", exc)
            return cmd.MonitoringStatus(active=False, message="monitoring status unavailable")


def _issues_outcome(status: cmd.MonitoringStatus, what: str, failed_anyway: bool = False) -> Outcome:
    """A check's issues as a step: failed on a critical one (or always, when `failed_anyway`)."""
    critical = [i for i in status.issues if i.severity == "critical"]
    others = len(status.issues) - len(critical)
    if not critical and not failed_anyway:
        return Outcome(True, f"{what}: no critical issue" + (f", {others} warning(s)" if others else ""))
    shown = "; ".join(f"{i.code}: {i.message}" for i in (critical or status.issues)[:5])
    return Outcome(False, f"{what}: {shown}" if shown else (status.message or what))
