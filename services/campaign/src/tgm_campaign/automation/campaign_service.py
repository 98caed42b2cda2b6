"""Campaigns: add-campaign, remove-campaign, get-campaigns, start-campaign, stop-campaign,
get-campaign-stats (and `counts()` for get-system-status). The runner (`campaign_runner.py`) does the
enqueueing; this module owns the definitions, the status transitions and the figures.

Statuses: `draft` (added, no `startAt`) -> `scheduled` (armed: starts by itself at `startAt`) ->
`running` -> `completed` (every target done, or `endAt` reached: waiting jobs cancelled) / `stopped`
(stop-campaign; waiting jobs cancelled unless `cancelPending` is false) / `failed` (a step could not
be queued at all: the template or account went away; `lastError` says). start-campaign on a stopped,
completed or failed campaign resumes it: the audience is resolved again (new recipients join,
existing ones keep their progress) and jobs a stop cancelled are queued again under a new key.
add-campaign with the id of a campaign that is not running redefines it; its targets stay.

Figures are never counters kept on the side: `sent`, `failed`, `skipped` (by reason), `cancelled` and
`queued` (waiting or in flight now) are an aggregation of messaging's jobs of the campaign (its
`campaign_id`; the step from the key), `targets` the count of its targets, `replied` the recipients
whose lead's `last_replied_at` (kept by the CRM from their private messages) is later than the
campaign's first send to them (counted on the step sent last before the reply), `won` the targets'
leads now in `closed_won`. `since` / `until` select jobs by their last change and replies by their
time; days are local days in the pacing timezone (the queue's own day).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_campaign import CampaignProgress
from tgm_contracts.models.campaign import CampaignStatus, LeadStage
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers

from ..messaging.clock import aware, utc
from .campaign_runner import ACTIVE, CampaignRunner, following, spec_of
from .campaign_store import OPEN
from .status_store import Scope

RUNNING = CampaignStatus.RUNNING.value
STARTABLE = (
    CampaignStatus.DRAFT.value,
    CampaignStatus.SCHEDULED.value,
    CampaignStatus.STOPPED.value,
    CampaignStatus.COMPLETED.value,
    CampaignStatus.FAILED.value,
    CampaignStatus.PAUSED.value,
)
STOPPABLE = (RUNNING, CampaignStatus.SCHEDULED.value, CampaignStatus.PAUSED.value)


@dataclass
class Figures:
    """What happened to one campaign's messages (from the jobs) and recipients (from the CRM)."""

    targets: int = 0
    states: Counter[str] = field(default_factory=Counter)
    skipped_by: Counter[str] = field(default_factory=Counter)
    steps: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    accounts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    days: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reached: int = 0
    replied: int = 0
    won: int = 0

    def counters(self) -> cmd.CampaignCounters:
        return cmd.CampaignCounters(
            targets=self.targets,
            queued=sum(self.states[s] for s in OPEN),
            sent=self.states["sent"],
            failed=self.states["failed"],
            skipped=self.states["skipped"],
            cancelled=self.states["cancelled"],
            replied=self.replied,
        )


class CampaignService:
    def __init__(self, runner: CampaignRunner) -> None:
        """The commands work on what the runner enqueues with (its store of campaigns, messaging's
        stores, the queue and its control, events, clock, rules); the runner publishes progress here."""
        self.runner, r = runner, runner
        self.store, self.messaging, self.queue, self.control = r.store, r.messaging, r.queue, r.control
        self.emit, self.clock, self.rules = r.emit, r.clock, r.rules
        runner.progress = self.publish_progress

    # --- definitions -------------------------------------------------------------------------

    async def _check(self, spec: cmd.CampaignSpec) -> None:
        now = utc(self.clock())
        if spec.end_at is not None and spec.end_at <= now:
            raise Invalid("endAt is in the past", {"field": "endAt"})
        for i, step in enumerate(spec.steps):
            await self.queue.check_content(step.template_id, step.text, at=f"steps[{i}]")
        accounts = [spec.account_id] if spec.account_id else list((spec.pool and spec.pool.account_ids) or [])
        missing = await self.queue.directory.missing(accounts)
        if missing:
            raise NotFound(f"no such account: {', '.join(missing)}", {"missing": missing})

    @answers(cmd.AddCampaign, principal=True)
    async def add(self, req: cmd.AddCampaignRequest, by: str | None) -> cmd.CampaignView:
        await self._check(req)
        now = utc(self.clock())
        spec = req.model_dump(mode="json", by_alias=False, exclude={"id"})
        fields = {
            "spec": spec,
            "name": req.name,
            "name_key": req.name.casefold(),
            "type": req.type,
            "start_at": req.start_at,
            "end_at": req.end_at,
            "updated_at": now,
        }
        if req.id is not None:
            existing = await self.store.get(req.id)
            if existing is None:
                raise NotFound(f"campaign {req.id} does not exist")
            status = existing["status"]
            if status == CampaignStatus.DRAFT.value and req.start_at is not None:
                fields["status"] = CampaignStatus.SCHEDULED.value
            elif status == CampaignStatus.SCHEDULED.value and req.start_at is None:
                fields["status"] = CampaignStatus.DRAFT.value
            doc = await self.store.redefine(req.id, fields, not_in=[RUNNING])
            if doc is None:
                raise Conflict(f"campaign {req.id} is running; stop it before redefining it")
            if doc["status"] != status:
                await self.runner.state_changed(doc, CampaignStatus(status), "redefined")
            return await self.view(doc)
        doc = {
            "_id": "cmp_" + uuid.uuid4().hex[:16],
            **fields,
            "status": (CampaignStatus.SCHEDULED if req.start_at else CampaignStatus.DRAFT).value,
            "reason": None,
            "last_error": None,
            "by": by,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "run": {},
        }
        await self.store.insert(doc)
        await self.runner.state_changed(doc, None, "added")
        return await self.view(doc)

    async def _get(self, campaign_id: str) -> dict[str, Any]:
        doc = await self.store.get(campaign_id)
        if doc is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return doc

    @answers(cmd.RemoveCampaign, principal=True)
    async def remove(self, req: cmd.RemoveCampaignRequest, by: str | None) -> Ack:
        doc = await self._get(req.id)
        deleted = await self.store.delete(req.id)
        # After the delete: a runner round that enqueued meanwhile sees it gone and cancels too.
        cancelled = await self.control.cancel_campaign(req.id, "campaign removed")
        if deleted:
            await self.runner.state_changed(
                {**doc, "status": CampaignStatus.STOPPED.value}, CampaignStatus(doc["status"]), "removed"
            )
        return Ack(affected=int(deleted) + cancelled)

    @answers(cmd.GetCampaigns)
    async def list(self, req: cmd.GetCampaignsRequest) -> Page[cmd.CampaignView]:
        statuses = [s.value for s in req.statuses] if req.statuses else None
        docs, cursor, total = await self.store.page(
            statuses, req.search, req.limit, req.cursor, type=req.type or None
        )
        figures = await self.figures([d["_id"] for d in docs])
        return Page(
            items=[self._view(d, figures.get(d["_id"], Figures())) for d in docs],
            next_cursor=cursor,
            total=total,
        )

    async def view(self, doc: Mapping[str, Any]) -> cmd.CampaignView:
        figures = await self.figures([doc["_id"]])
        return self._view(doc, figures.get(doc["_id"], Figures()))

    def _view(self, doc: Mapping[str, Any], fig: Figures) -> cmd.CampaignView:
        return cmd.CampaignView.model_validate(
            {
                **doc["spec"],
                "id": doc["_id"],
                "status": doc["status"],
                "counters": fig.counters(),
                "last_error": doc.get("last_error"),
                "created_at": doc["created_at"],
                "updated_at": doc["updated_at"],
                "started_at": doc.get("started_at"),
                "finished_at": doc.get("finished_at"),
            }
        )

    # --- start / stop --------------------------------------------------------------------------

    @answers(cmd.StartCampaign, principal=True)
    async def start(self, req: cmd.CampaignIdRequest, by: str | None) -> cmd.CampaignView:
        """Arm (future `startAt`) or start a campaign now; a running one is answered as it is."""
        doc = await self._get(req.campaign_id)
        if doc["status"] == RUNNING:
            return await self.view(doc)
        spec = spec_of(doc)
        await self._check(spec)  # templates and accounts may have changed since it was added
        now = utc(self.clock())
        start_at = aware(doc.get("start_at"))
        run = {"phase": "leads", "after": None, "since": None, "pass_started": now, "watermark": None}
        if start_at is not None and start_at > now:
            target, reason = CampaignStatus.SCHEDULED, "armed until startAt"
        else:
            target, reason = CampaignStatus.RUNNING, "started"
        moved = await self.store.transition(
            doc["_id"],
            STARTABLE,
            {
                "status": target.value,
                "reason": reason,
                "last_error": None,
                "cancel_pending": True,
                "updated_at": now,
                "finished_at": None,
                "run": run,
                **({"started_at": now} if target is CampaignStatus.RUNNING else {}),
            },
        )
        if moved is None:  # started by someone else meanwhile
            return await self.view(await self._get(doc["_id"]))
        await self.runner.state_changed(moved, CampaignStatus(doc["status"]), reason)
        return await self.view(moved)

    @answers(cmd.StopCampaign, principal=True)
    async def stop(self, req: cmd.StopCampaignRequest, by: str | None) -> cmd.CampaignView:
        """Stop a running or armed campaign (in-flight sends finish); stopping a stopped one only
        cancels what is still waiting, when asked."""
        doc = await self._get(req.campaign_id)
        now = utc(self.clock())
        moved = await self.store.transition(
            doc["_id"],
            STOPPABLE,
            {
                "status": CampaignStatus.STOPPED.value,
                "reason": f"stopped by {by}" if by else "stopped",
                "cancel_pending": req.cancel_pending,
                "finished_at": now,
                "updated_at": now,
            },
        )
        if req.cancel_pending:
            await self.control.cancel_campaign(doc["_id"], "campaign stopped")
        if moved is not None:
            await self.runner.state_changed(moved, CampaignStatus(doc["status"]), moved.get("reason"))
            doc = moved
        return await self.view(doc)

    # --- figures -------------------------------------------------------------------------------

    async def _timezone(self) -> str:
        tz = (await self.rules.limits()).timezone
        try:
            ZoneInfo(tz)
        except (KeyError, ValueError):
            return "UTC"
        return tz

    async def figures(
        self,
        campaign_ids: Sequence[str],
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Figures]:
        if not campaign_ids:
            return {}
        tz = await self._timezone()
        zone = ZoneInfo(tz)
        out: dict[str, Figures] = {cid: Figures() for cid in campaign_ids}
        for cid, n in (await self.store.count_targets(campaign_ids)).items():
            out[cid].targets = n
        for row in await self.store.job_breakdown(Scope(campaign_ids, since, until, tz)):
            fig = out[row["c"]]
            state, n = row["s"], row["n"]
            fig.states[state] += n
            if state == "skipped":
                fig.skipped_by[row.get("r") or "unknown"] += n
            step = int(row["k"]) if isinstance(row.get("k"), str) and row["k"].isdigit() else None
            if step is not None:
                fig.steps[step][state] += n
            if row.get("a") and state in ("sent", "failed"):
                fig.accounts[row["a"]][state] += n
            if row.get("d") and state in ("sent", "failed"):
                fig.days[row["d"]][state] += n
        await self._replies(out, campaign_ids, since, until, zone)
        return out

    async def _replies(
        self,
        out: dict[str, Figures],
        campaign_ids: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        zone: ZoneInfo,
    ) -> None:
        """Replied: a recipient whose lead wrote after the campaign's first send to them."""
        sends: dict[tuple[str, str], dict[int, datetime]] = defaultdict(dict)
        who: dict[tuple[str, str], tuple[str | None, int | None]] = {}
        for row in await self.store.first_sends(campaign_ids):
            rid = row.get("l") or row.get("p")
            at = aware(row.get("at"))
            if not rid or at is None:
                continue
            key = (row["c"], str(rid))
            k = row.get("k")
            step = int(k) if isinstance(k, str) and k.isdigit() else 0
            sends[key][step] = min(at, sends[key].get(step, at))
            peer = row.get("peer")
            who[key] = (row.get("l"), peer if isinstance(peer, int) and peer > 0 else None)
        target_leads, target_users = await self.store.target_leads(campaign_ids)
        by_id, by_user = await self.store.replies_of(
            [lid for lid, _ in who.values() if lid] + target_leads,
            [uid for lid, uid in who.values() if not lid and uid] + target_users,
        )
        for key, steps in sends.items():
            cid = key[0]
            lead_id, user_id = who[key]
            lead = by_id.get(lead_id) if lead_id else by_user.get(user_id) if user_id else None
            out[cid].reached += 1
            replied = aware((lead or {}).get("last_replied_at"))
            if replied is None or replied <= min(steps.values()):
                continue
            if (since and replied < since) or (until and replied >= until):
                continue
            out[cid].replied += 1
            last_step = max(s for s, at in steps.items() if at < replied)
            out[cid].steps[last_step]["replied"] += 1
            out[cid].days[replied.astimezone(zone).date().isoformat()]["replied"] += 1
        # won: the leads of each campaign's targets now in closed_won (one lookup for all campaigns)
        for cid in campaign_ids:
            leads, users = await self.store.target_leads([cid])
            docs = [by_id[i] for i in leads if i in by_id] + [by_user[u] for u in users if u in by_user]
            out[cid].won = sum(d.get("stage") == LeadStage.CLOSED_WON.value for d in docs)

    @answers(cmd.GetCampaignStats)
    async def stats(self, req: cmd.GetCampaignStatsRequest) -> cmd.CampaignStatsReport:
        if req.since and req.until and req.until <= req.since:
            raise Invalid("until must be after since", {"field": "until"})
        if req.campaign_id is not None:
            docs = [await self._get(req.campaign_id)]
        else:
            docs = sorted(
                await self.store.in_statuses([s.value for s in CampaignStatus]),
                key=lambda d: d["created_at"],
                reverse=True,
            )
        ids = [d["_id"] for d in docs]
        figures = await self.figures(ids, req.since, req.until)
        items = []
        totals = cmd.CampaignCounters()
        for d in docs:
            fig = figures[d["_id"]]
            counters = fig.counters()
            for name in cmd.CampaignCounters.model_fields:
                setattr(totals, name, getattr(totals, name) + getattr(counters, name))
            items.append(
                cmd.CampaignStats(
                    campaign_id=d["_id"],
                    name=d["name"],
                    status=CampaignStatus(d["status"]),
                    counters=counters,
                    skipped_by_reason=dict(fig.skipped_by),
                    reply_rate=(fig.replied / fig.reached) if fig.reached else None,
                    won=fig.won,
                    by_step=[
                        cmd.StepStats(
                            step=s,
                            sent=c["sent"],
                            failed=c["failed"],
                            skipped=c["skipped"],
                            replied=c["replied"],
                        )
                        for s, c in sorted(fig.steps.items())
                    ],
                    by_account=[
                        cmd.AccountSendStats(account_id=a, sent=c["sent"], failed=c["failed"])
                        for a, c in sorted(fig.accounts.items())
                    ],
                    by_day=[
                        cmd.DaySendStats(
                            day=date.fromisoformat(day),
                            sent=c["sent"],
                            failed=c["failed"],
                            replied=c["replied"],
                        )
                        for day, c in sorted(fig.days.items())
                    ]
                    if req.by_day
                    else [],
                )
            )
        leads, users = await self.store.target_leads(ids)
        by_id, by_user = await self.store.replies_of(leads, users)
        intent = Counter(str(d.get("intent_level") or "none") for d in [*by_id.values(), *by_user.values()])
        return cmd.CampaignStatsReport(items=items, totals=totals, intent=dict(intent))

    async def counts(self) -> cmd.CountActive:
        """Campaigns in all, and running or armed ones (for get-system-status)."""
        return cmd.CountActive(total=await self.store.count(), active=await self.store.count(ACTIVE))

    # --- the runner ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round of the runner (runtime.every): enqueue the next batch of running campaigns."""
        await self.runner.tick()

    async def publish_progress(self, doc: Mapping[str, Any]) -> None:
        fig = (await self.figures([doc["_id"]])).get(doc["_id"], Figures())
        counters = fig.counters()
        spec = spec_of(doc)
        open_targets = await self.store.open_targets(doc["_id"])
        resolved = (doc.get("run") or {}).get("phase") == "done"
        percent = 0
        if counters.targets:
            percent = round(100 * (counters.targets - open_targets) / counters.targets)
            if not resolved or following(spec):
                percent = min(percent, 99)
        await self.emit(
            CampaignProgress(
                campaign_id=doc["_id"],
                name=doc.get("name"),
                targets=counters.targets,
                queued=counters.queued,
                sent=counters.sent,
                failed=counters.failed,
                skipped=counters.skipped,
                replied=counters.replied,
                percent=percent if doc["status"] == RUNNING else 100,
            )
        )
