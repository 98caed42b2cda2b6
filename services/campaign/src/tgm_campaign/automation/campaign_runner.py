"""The campaign runner: what `tick()` does every second on the replica holding the
`automation-campaigns` lease (bootstrap schedules it on dispatching replicas; the lease keeps a second
replica from doing the same work at the same time — it would be harmless, only wasted).

One round, for each campaign that is `scheduled` (start it when `startAt` comes) or `running`:

1. **End**: past `endAt`, the campaign completes and its waiting jobs are cancelled
   (`campaign_stopped`); the jobs also carry `expiresAt = endAt`, so the queue skips a straggler.
2. **Resolve** (up to `RESOLVE_BATCH` leads or peers a round): the audience becomes
   `campaign_targets`, one per recipient, inserted idempotently (the id is a digest of campaign and
   recipient); the cursor (`run.phase`, `run.after`) is saved after each batch. With
   `includeNewLeads` (and for `lead_followup` campaigns) the leads changed since the last pass are
   looked at again every `FOLLOW_SECONDS` and the campaign runs until stopped or its `endAt`.
3. **Advance**: jobs of the campaign that ended since the last round (`run.watermark`, read back
   `SETTLE_MARGIN` for writes still in flight) move their target on: sent -> the next step is due
   `delaySeconds` after that send (or the target is done); skipped / failed / cancelled -> done with
   that outcome; cancelled by a stop while the campaign runs again -> re-armed (a new generation,
   hence a new key: the cancelled job is history, the new one is a new send).
4. **Enqueue** (up to `BATCH` due targets a round, fewer under the campaign's `dailyLimit`: jobs
   made since local midnight in the pacing timezone that were or will be sent count against it): a
   step with `stopIfReplied` is not sent to a lead who replied after the campaign's first send to
   them (`last_replied_at`, kept by the CRM); the others go to messaging's `queue_message`, one call
   per step, each job keyed `cmp:<campaign>:<target>:<step>`. The queue skips blacklisted,
   opted-out and capped recipients itself (the job is `skipped` with the reason).
5. **Finish**: resolved, not following, no open target -> `completed`. `campaign-progress` at most
   every `PROGRESS_SECONDS`.

Crash safety: every write is idempotent or compare-and-set on what was read. Killed between the
enqueue and the target's update, the next round enqueues the same keys again and the queue returns
the jobs it made (duplicates, not new jobs); killed mid-resolve, the pass resumes at its cursor and
re-inserting a target is a no-op. So a SIGKILL at any point neither loses a target nor sends twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.commands.automation import CampaignSpec, CampaignStep
from tgm_contracts.events_campaign import CampaignStateChanged
from tgm_contracts.models.campaign import CampaignStatus, JobReason, peer_key
from tgm_runtime import DomainError

from ..messaging.clock import Clock, aware, utc
from ..messaging.queue_control import QueueControl
from ..messaging.rules import Rules
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .campaign_store import CampaignStore, job_key, lead_audience_query, target_id
from .ports import Emit

log = logging.getLogger("tgm.campaign.automation.campaigns")

LEASE = "automation-campaigns"
LEASE_SECONDS = 10.0
BATCH = 200
RESOLVE_BATCH = 500
SETTLED_PAGE = 5000
SETTLE_MARGIN = timedelta(seconds=30)
FOLLOW_SECONDS = 10.0
FOLLOW_MARGIN = timedelta(seconds=60)
PROGRESS_SECONDS = 3.0

ACTIVE = (CampaignStatus.RUNNING.value, CampaignStatus.SCHEDULED.value)


def run_state_event(
    kind: Literal["campaign", "ad_campaign"],
    doc: Mapping[str, Any],
    previous: CampaignStatus | None,
    reason: str | None,
) -> CampaignStateChanged:
    """`campaign-state-changed` for an automation or ad campaign document (its status as it is now)."""
    return CampaignStateChanged(
        campaign_id=doc["_id"],
        kind=kind,
        name=doc.get("name"),
        status=CampaignStatus(doc["status"]),
        previous_status=previous,
        reason=reason,
    )


def spec_of(doc: Mapping[str, Any]) -> CampaignSpec:
    return CampaignSpec.model_validate(doc["spec"])


def following(spec: CampaignSpec) -> bool:
    """Leads that turn up while it runs join it: it ends only when stopped or at `endAt`."""
    return spec.audience.include_new_leads or spec.type == "lead_followup"


def lead_peer(lead: Mapping[str, Any]) -> int | str | None:
    if lead.get("user_id"):
        return int(lead["user_id"])
    name = lead.get("username_key") or lead.get("username")
    return "@" + str(name).lstrip("@").lower() if name else None


async def _no_progress(doc: Mapping[str, Any]) -> None:
    return None


class CampaignRunner:
    def __init__(
        self,
        store: CampaignStore,
        messaging: MessagingStores,
        queue: QueueService,
        control: QueueControl,
        emit: Emit,
        clock: Clock,
        rules: Rules,
    ) -> None:
        self.store, self.messaging, self.queue, self.control = store, messaging, queue, control
        self.emit, self.clock, self.rules = emit, clock, rules
        #: publishes a running campaign's figures (CampaignService.publish_progress; set by CampaignService)
        self.progress: Callable[[Mapping[str, Any]], Awaitable[None]] = _no_progress
        self.owner = "campaigns-" + uuid.uuid4().hex[:12]
        self._progress_at: dict[str, float] = {}

    # --- one round -----------------------------------------------------------------------------

    async def tick(self) -> None:
        now_ts = self.clock()
        now = utc(now_ts)
        if not await self.messaging.leases.acquire(LEASE, self.owner, now, utc(now_ts + LEASE_SECONDS)):
            return
        for doc in await self.store.in_statuses(ACTIVE):
            try:
                await self.run(doc)
            except Exception as exc:  # one campaign's trouble never stops the others
                log.exception("campaign %s: round failed", doc["_id"])
                await self.store.set_run(doc["_id"], {"error": f"{type(exc).__name__}: {exc}"[:500]})

    async def run(self, doc: Mapping[str, Any]) -> None:
        cid = doc["_id"]
        now = utc(self.clock())
        spec = spec_of(doc)
        if doc["status"] == CampaignStatus.SCHEDULED.value:
            start_at = aware(doc.get("start_at"))
            if start_at is not None and start_at > now:
                return
            started = await self.store.transition(
                cid,
                [CampaignStatus.SCHEDULED.value],
                {"status": CampaignStatus.RUNNING.value, "started_at": now, "updated_at": now},
            )
            if started is None:
                return
            await self.state_changed(started, CampaignStatus.SCHEDULED, "startAt reached")
            doc = started
        end_at = aware(doc.get("end_at"))
        if end_at is not None and end_at <= now:
            await self.finish(doc, CampaignStatus.COMPLETED, "endAt reached", cancel=True)
            return
        await self.resolve(doc, spec, now)
        await self.advance(doc, spec, now)
        await self.enqueue(doc, spec, now)
        current = await self.store.get(cid)
        if current is None or current["status"] != CampaignStatus.RUNNING.value:
            # Stopped or removed while this round enqueued: what it queued must not outlive that.
            if current is None or current.get("cancel_pending", True):
                await self.control.cancel_campaign(cid, "campaign stopped")
            return
        run = current.get("run") or {}
        if run.get("phase") == "done" and not following(spec) and await self.store.open_targets(cid) == 0:
            await self.finish(current, CampaignStatus.COMPLETED, "every target done", cancel=False)
            await self.progress(current)
            return
        last = self._progress_at.get(cid, 0.0)
        if self.clock() - last >= PROGRESS_SECONDS:
            self._progress_at[cid] = self.clock()
            await self.progress(current)

    async def finish(
        self, doc: Mapping[str, Any], status: CampaignStatus, reason: str, *, cancel: bool
    ) -> None:
        now = utc(self.clock())
        moved = await self.store.transition(
            doc["_id"],
            [CampaignStatus.RUNNING.value],
            {"status": status.value, "reason": reason, "finished_at": now, "updated_at": now},
        )
        if moved is None:
            return
        if cancel:
            await self.control.cancel_campaign(doc["_id"], reason)
        await self.state_changed(moved, CampaignStatus.RUNNING, reason)

    async def state_changed(
        self, doc: Mapping[str, Any], previous: CampaignStatus | None, reason: str | None
    ) -> None:
        await self.emit(run_state_event("campaign", doc, previous, reason))

    # --- 2. resolve the audience ---------------------------------------------------------------

    async def resolve(self, doc: Mapping[str, Any], spec: CampaignSpec, now: datetime) -> None:
        cid = doc["_id"]
        run = dict(doc.get("run") or {})
        phase = run.get("phase", "leads")
        if phase == "done":
            resolved_at = aware(run.get("resolved_at"))
            if not following(spec) or resolved_at is None:
                return
            if (now - resolved_at).total_seconds() < FOLLOW_SECONDS:
                return
            run = {"phase": "leads", "after": None, "since": resolved_at - FOLLOW_MARGIN, "pass_started": now}
            phase = "leads"
        first = self._first_due(spec, now)
        audience = spec.audience.model_dump(mode="json", by_alias=False)
        if phase == "leads":
            query = lead_audience_query(audience, now)
            leads: list[dict[str, Any]] = []
            if query is not None:
                since = aware(run.get("since"))
                if since is not None:
                    query = {"$and": [query, {"updated_at": {"$gte": since}}]}
                leads = await self.store.audience_leads(query, run.get("after"), RESOLVE_BATCH)
            targets = []
            for lead in leads:
                peer = lead_peer(lead)
                if peer is not None:
                    targets.append(self._target(cid, peer, lead["_id"], first, now))
            await self.store.add_targets(targets)
            if len(leads) == RESOLVE_BATCH:
                await self.store.set_run(cid, {**run, "phase": "leads", "after": leads[-1]["_id"]})
                return
            peers_next = spec.audience.peers is not None and run.get("since") is None
            phase, run = ("peers" if peers_next else "done"), {**run, "after": 0}
            if phase == "done":
                await self._resolved(cid, run, now)
                return
        if phase == "peers":
            peers = spec.audience.peers or []
            start = int(run.get("after") or 0)
            chunk = peers[start : start + RESOLVE_BATCH]
            await self.store.add_targets([self._target(cid, p, None, first, now) for p in chunk])
            if start + RESOLVE_BATCH < len(peers):
                await self.store.set_run(cid, {**run, "phase": "peers", "after": start + RESOLVE_BATCH})
                return
            await self._resolved(cid, run, now)

    async def _resolved(self, cid: str, run: Mapping[str, Any], now: datetime) -> None:
        await self.store.set_run(
            cid,
            {
                **run,
                "phase": "done",
                "after": None,
                "resolved_at": aware(run.get("pass_started")) or now,
            },
        )

    def _first_due(self, spec: CampaignSpec, now: datetime) -> datetime:
        return now + timedelta(seconds=spec.steps[0].delay_seconds)

    def _target(
        self, cid: str, peer: int | str, lead_id: str | None, due: datetime, now: datetime
    ) -> dict[str, Any]:
        pk = peer_key(peer)
        return {
            "_id": target_id(cid, pk),
            "campaign_id": cid,
            "peer": peer,
            "peer_key": pk,
            "lead_id": lead_id,
            "step": 0,
            "gen": 0,
            "job_id": None,
            "key": None,
            "next_at": due,
            "done": False,
            "outcome": None,
            "first_sent_at": None,
            "last_sent_at": None,
            "created_at": now,
            "updated_at": now,
        }

    # --- 3. advance on settled jobs ------------------------------------------------------------

    async def advance(self, doc: Mapping[str, Any], spec: CampaignSpec, now: datetime) -> None:
        cid = doc["_id"]
        run = doc.get("run") or {}
        mark = aware(run.get("watermark"))
        jobs = await self.store.settled_jobs(cid, mark - SETTLE_MARGIN if mark else None, SETTLED_PAGE)
        if not jobs:
            return
        by_id = {j["_id"]: j for j in jobs}
        for target in await self.store.targets_of_jobs(cid, list(by_id)):
            job = by_id[target["job_id"]]
            await self.store.update_target(target, self._after(target, job, spec, now))
        newest = max(aware(j["updated_at"]) or now for j in jobs)
        await self.store.set_run(cid, {"watermark": min(newest, now)})

    def _after(
        self, target: Mapping[str, Any], job: Mapping[str, Any], spec: CampaignSpec, now: datetime
    ) -> dict[str, Any]:
        state, reason = job["state"], job.get("reason")
        base: dict[str, Any] = {"updated_at": now}
        if state == "sent":
            sent_at = aware(job.get("sent_at")) or now
            base |= {"last_sent_at": sent_at, "first_sent_at": target.get("first_sent_at") or sent_at}
            step = int(target["step"]) + 1
            if step < len(spec.steps):
                delay = timedelta(seconds=spec.steps[step].delay_seconds)
                return base | {"step": step, "job_id": None, "key": None, "next_at": sent_at + delay}
            return base | {"done": True, "outcome": "sent"}
        if state == "cancelled" and reason == JobReason.CAMPAIGN_STOPPED.value:
            # Cancelled by a stop; this round runs, so the campaign was started again: re-arm.
            return base | {"gen": int(target.get("gen", 0)) + 1, "job_id": None, "key": None, "next_at": now}
        return base | {"done": True, "outcome": f"{state}:{reason}" if reason else state}

    # --- 4. enqueue due steps ------------------------------------------------------------------

    async def enqueue(self, doc: Mapping[str, Any], spec: CampaignSpec, now: datetime) -> None:
        cid = doc["_id"]
        room = BATCH
        if spec.daily_limit is not None:
            made = await self.store.jobs_made_since(cid, await self._midnight(now))
            room = min(room, spec.daily_limit - made)
            if room <= 0:
                return
        targets = await self.store.due_targets(cid, now, room)
        if not targets:
            return
        targets = await self._drop_finished(targets, spec, now)
        by_step: dict[int, list[dict[str, Any]]] = {}
        for t in targets:
            by_step.setdefault(int(t["step"]), []).append(t)
        for step, group in sorted(by_step.items()):
            await self._enqueue_step(doc, spec, step, group, now)

    async def _midnight(self, now: datetime) -> datetime:
        limits = await self.rules.limits()
        try:
            zone = ZoneInfo(limits.timezone)
        except (KeyError, ValueError):
            zone = ZoneInfo("UTC")
        local = now.astimezone(zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    async def _drop_finished(
        self, targets: Sequence[dict[str, Any]], spec: CampaignSpec, now: datetime
    ) -> list[dict[str, Any]]:
        """Targets past the last step (the definition lost steps) and those a `stopIfReplied` step
        must not reach are done; the rest are returned."""
        check = [
            t
            for t in targets
            if 0 < int(t["step"]) < len(spec.steps) and spec.steps[int(t["step"])].stop_if_replied
        ]
        checked = {t["_id"] for t in check}
        by_id, by_user = await self.store.replies_of(
            [t["lead_id"] for t in check if t.get("lead_id")],
            [t["peer"] for t in check if not t.get("lead_id") and isinstance(t["peer"], int)],
        )
        out = []
        for t in targets:
            step = int(t["step"])
            if step >= len(spec.steps):
                await self.store.update_target(t, {"done": True, "outcome": "sent", "updated_at": now})
                continue
            if t["_id"] in checked:
                lead = by_id.get(t["lead_id"]) if t.get("lead_id") else by_user.get(t["peer"])
                replied = aware((lead or {}).get("last_replied_at"))
                first = aware(t.get("first_sent_at"))
                if replied is not None and first is not None and replied > first:
                    await self.store.update_target(t, {"done": True, "outcome": "replied", "updated_at": now})
                    continue
            out.append(t)
        return out

    async def _enqueue_step(
        self,
        doc: Mapping[str, Any],
        spec: CampaignSpec,
        step: int,
        targets: Sequence[dict[str, Any]],
        now: datetime,
    ) -> None:
        cid = doc["_id"]
        targets = await self._sendable(targets, now)
        if not targets:
            return
        body: CampaignStep = spec.steps[step]
        keys = [job_key(cid, t["_id"], step, int(t.get("gen", 0))) for t in targets]
        recipients = [
            messaging_cmd.Recipient(lead_id=t["lead_id"], idempotency_key=k)
            if t.get("lead_id")
            else messaging_cmd.Recipient(peer=t["peer"], idempotency_key=k)
            for t, k in zip(targets, keys, strict=True)
        ]
        req = messaging_cmd.QueueMessageRequest(
            text=body.text,
            template_id=body.template_id,
            variables=body.variables,
            account_id=spec.account_id,
            pool=spec.pool,
            recipients=recipients,
            priority=spec.priority,
            expires_at=spec.end_at,
            idempotency_key=f"{keys[0]}:batch",
            campaign_id=cid,
            dedupe_recipients=False,
        )
        try:
            result = await self.queue.queue_message(req, None)
        except DomainError as exc:
            # Not one recipient's problem (those were checked above): the template went away, the
            # account left the fleet... The campaign cannot go on as defined.
            log.warning("campaign %s: step %d cannot be queued: %s", cid, step, exc)
            await self.fail(doc, f"step {step + 1}: {exc}")
            return
        for t, key, job in zip(targets, keys, result.jobs, strict=True):
            if job.job_id is not None:
                await self.store.update_target(t, {"job_id": job.job_id, "key": key, "updated_at": now})

    async def _sendable(self, targets: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """Lead targets whose lead is gone or has nothing to send to are done (`lead_missing`)."""
        ids = [t["lead_id"] for t in targets if t.get("lead_id")]
        leads = await self.messaging.leads.many(ids) if ids else {}
        out = []
        for t in targets:
            if t.get("lead_id"):
                lead = leads.get(t["lead_id"])
                if lead is None or lead_peer(lead) is None:
                    await self.store.update_target(
                        t, {"done": True, "outcome": "lead_missing", "updated_at": now}
                    )
                    continue
            out.append(t)
        return out

    async def fail(self, doc: Mapping[str, Any], error: str) -> None:
        now = utc(self.clock())
        moved = await self.store.transition(
            doc["_id"],
            [CampaignStatus.RUNNING.value],
            {
                "status": CampaignStatus.FAILED.value,
                "last_error": error[:500],
                "reason": "error",
                "finished_at": now,
                "updated_at": now,
            },
        )
        if moved is not None:
            await self.control.cancel_campaign(doc["_id"], f"campaign failed: {error}"[:200])
            await self.state_changed(moved, CampaignStatus.RUNNING, error[:200])
