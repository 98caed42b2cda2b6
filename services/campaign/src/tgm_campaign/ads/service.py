"""Ad campaigns: the 9 `ads` commands; the runner round is `runner.py` (`tick`).

- create / update: templates must exist and be of category `ad`; targets are monitored groups
  (that exist) or chats by id (an invite link or a user is refused); the schedule's zone and cron are
  checked; named accounts must be in the fleet. `update` of a running campaign applies from its next
  run (the run in progress keeps its frozen plan); a changed schedule recomputes `nextRunAt`.
- start: from any status but running; the first run is due at once (or at `startAt`, or the
  schedule's first time). Runs keep counting across restarts (so `rotate` goes on with the next
  account). No run left (a past `endAt`, `maxRuns` reached) is a Conflict.
- stop: cancels the waiting posts (`cancelPending`, default), in-flight ones finish; the open run
  settles. delete: the same, and the definition goes; runs and jobs stay for the stats.
- stats are aggregations of the jobs (`ad:` keys), of the runs' skipped targets and of the replies
  to the posts (`replies.py`: a group message replying to a post's message, once), live while a run
  sends; `leads` are the repliers who are leads in the CRM now; `clicks` are null (not measurable
  without link tracking, which posts do not have).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import ads as cmd
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import CampaignStatus, PreviewInput, TemplateVariable, peer_key
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers, hears

from ..automation.monitoring_service import MonitoringService
from ..automation.ports import Call
from ..automation.status_store import Scope
from ..messaging.clock import aware, utc
from ..messaging.template_store import template_view
from ..messaging.templates import TemplateError, preview
from .replies import AdReplies
from .runner import RUNNING, AdRunner, seeded, spec_of, target_key
from .schedule import check, next_run, zone
from .store import job_key

SPEC_FIELDS = tuple(cmd.AdCampaignSpec.model_fields)


class AdService:
    def __init__(self, runner: AdRunner, call: Call, monitoring: MonitoringService | None = None) -> None:
        """The commands work on what the runner posts with: its store, messaging's stores, the queue
        and its control, the monitored groups, the rules, events and clock."""
        self.runner, self.call, r = runner, call, runner
        self.store, self.messaging, self.queue, self.control = r.store, r.messaging, r.queue, r.control
        self.groups, self.rules, self.emit, self.clock = r.groups, r.rules, r.emit, r.clock
        self.replies = AdReplies(runner.store, runner.clock)
        if monitoring is not None:  # the groups posted in are watched, so replies reach campaign
            monitoring.also_watch(self.replies.watched_chats)
            self.runner.watch = monitoring.republish

    # --- definitions -----------------------------------------------------------------------------

    async def _check(self, spec: cmd.AdCampaignSpec) -> None:
        check(spec.schedule)
        if spec.quiet_hours is not None and spec.quiet_hours.timezone:
            zone(spec.quiet_hours.timezone)
        templates = await self.messaging.templates.find(
            category=None, active_only=False, search=None, ids=list(spec.template_ids)
        )
        found = {t["_id"]: t for t in templates}
        for tid in spec.template_ids:
            tpl = found.get(tid)
            if tpl is None:
                raise NotFound(f"template {tid} does not exist", {"field": "templateIds"})
            if tpl.get("category") != "ad":
                raise Invalid(
                    f"template {tid} is of category {tpl.get('category')!r}; ad campaigns post `ad` templates",
                    {"field": "templateIds"},
                )
        if len(set(spec.template_ids)) != len(spec.template_ids):
            raise Invalid("templateIds repeats a template", {"field": "templateIds"})
        keys = [target_key(t) for t in spec.targets]
        if len(set(keys)) != len(keys):
            raise Invalid("targets repeat a group", {"field": "targets"})
        group_ids = [t.group_id for t in spec.targets if t.group_id is not None]
        if group_ids:
            missing = await self.groups.missing(group_ids)
            if missing:
                raise NotFound(f"no such monitored group: {', '.join(missing[:10])}", {"missing": missing})
        for t in spec.targets:
            chat = t.chat
            if isinstance(chat, str) and chat.startswith("+"):
                raise Invalid(
                    "an invite link is not a chat to post in: join the group first, then give its id",
                    {"field": "targets"},
                )
            if isinstance(chat, int) and chat > 0:
                raise Invalid("a group id is negative (-100… for supergroups)", {"field": "targets"})
        if spec.accounts.account_ids:
            missing = await self.queue.directory.missing(spec.accounts.account_ids)
            if missing:
                raise NotFound(f"no such account: {', '.join(missing)}", {"missing": missing})

    def _fields(self, spec: cmd.AdCampaignSpec, now: datetime) -> dict[str, Any]:
        return {
            "spec": spec.model_dump(mode="json", by_alias=False),
            "name": spec.name.strip(),
            "name_key": spec.name.strip().casefold(),
            "template_ids": list(spec.template_ids),
            "updated_at": now,
        }

    @answers(cmd.CreateAdCampaign, principal=True)
    async def create(self, req: cmd.CreateAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        spec = cmd.AdCampaignSpec.model_validate(req.model_dump(include=set(SPEC_FIELDS)))
        await self._check(spec)
        now = utc(self.clock())
        doc = {
            "_id": "ad_" + uuid.uuid4().hex[:16],
            **self._fields(spec, now),
            "status": CampaignStatus.DRAFT.value,
            "runs": 0,
            "by": by,
            "created_at": now,
            "next_run_at": None,
            "last_run_at": None,
        }
        await self.store.insert(doc)
        if req.start:
            return await self.start(cmd.AdCampaignIdRequest(id=doc["_id"]), by)
        return (await self.views([doc]))[0]

    @answers(cmd.UpdateAdCampaign, principal=True)
    async def update(self, req: cmd.UpdateAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        doc = await self._get(req.id)
        current = spec_of(doc).model_dump(by_alias=False)
        changes = {k: getattr(req, k) for k in req.model_fields_set if k != "id" and k in SPEC_FIELDS}
        if "template_ids" in changes and "template_weights" not in changes:
            changes["template_weights"] = None  # weights belong to the list they were given with
        try:
            spec = cmd.AdCampaignSpec.model_validate({**current, **changes})
        except ValueError as exc:
            raise Invalid(f"the campaign after this change is not valid: {exc}") from None
        await self._check(spec)
        now = utc(self.clock())
        fields = self._fields(spec, now)
        if doc["status"] == RUNNING and "schedule" in changes:
            fields["next_run_at"] = await self._first_run(spec, now, int(doc.get("runs", 0)))
            fields["anchor"] = fields["next_run_at"]
        moved = await self.store.redefine(req.id, fields, [])
        if moved is None:
            raise NotFound(f"ad campaign {req.id} does not exist")
        return (await self.views([moved]))[0]

    @answers(cmd.DeleteAdCampaign, principal=True)
    async def delete(self, req: cmd.AdCampaignIdRequest, by: str | None) -> Ack:
        doc = await self._get(req.id)
        if not await self.store.delete(req.id):
            raise NotFound(f"ad campaign {req.id} does not exist")
        await self.control.cancel_campaign(req.id, "ad campaign deleted")
        if doc["status"] == RUNNING:
            stopped = {**doc, "status": CampaignStatus.STOPPED.value}
            await self.runner.state_changed(stopped, CampaignStatus.RUNNING, "deleted")
        return Ack(affected=1)

    @answers(cmd.GetAdCampaigns)
    async def list(self, req: cmd.GetAdCampaignsRequest) -> Page[cmd.AdCampaignView]:
        statuses = [s.value for s in req.statuses] if req.statuses else None
        docs, cursor, total = await self.store.page(
            statuses, req.search, req.limit, req.cursor, template_ids=req.template_id or None
        )
        return Page(items=await self.views(docs), next_cursor=cursor, total=total)

    # --- start / stop ----------------------------------------------------------------------------

    async def _first_run(self, spec: cmd.AdCampaignSpec, now: datetime, runs: int) -> datetime:
        if spec.schedule.max_runs is not None and runs >= spec.schedule.max_runs:
            raise Conflict(f"the schedule's {spec.schedule.max_runs} runs were made; raise maxRuns")
        at = next_run(spec.schedule, now, await self.runner.timezone(), inclusive=True)
        if at is None:
            raise Conflict("the schedule has no run left (endAt is past); change the schedule")
        return at

    @answers(cmd.StartAdCampaign, principal=True)
    async def start(self, req: cmd.AdCampaignIdRequest, by: str | None) -> cmd.AdCampaignView:
        doc = await self._get(req.id)
        if doc["status"] == RUNNING:
            return (await self.views([doc]))[0]
        spec = spec_of(doc)
        now = utc(self.clock())
        first = await self._first_run(spec, now, int(doc.get("runs", 0)))
        previous = CampaignStatus(doc["status"])
        moved = await self.store.transition(
            req.id,
            [s.value for s in CampaignStatus if s.value != RUNNING],
            {
                "status": RUNNING,
                "next_run_at": first,
                "anchor": first,
                "started_at": now,
                "updated_at": now,
                "reason": None,
                "last_error": None,
                "finished_at": None,
            },
        )
        if moved is None:
            doc = await self._get(req.id)
            return (await self.views([doc]))[0]
        await self.runner.state_changed(moved, previous, "started")
        return (await self.views([moved]))[0]

    @answers(cmd.StopAdCampaign, principal=True)
    async def stop(self, req: cmd.StopAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        doc = await self._get(req.id)
        now = utc(self.clock())
        moved = await self.store.transition(
            req.id,
            [RUNNING, CampaignStatus.SCHEDULED.value, CampaignStatus.PAUSED.value],
            {
                "status": CampaignStatus.STOPPED.value,
                "reason": "stopped",
                "cancel_pending": req.cancel_pending,
                "next_run_at": None,
                "finished_at": now,
                "updated_at": now,
            },
        )
        if moved is None:
            return (await self.views([doc]))[0]
        if req.cancel_pending:
            await self.control.cancel_campaign(req.id, "ad campaign stopped")
        await self.runner.state_changed(moved, CampaignStatus(doc["status"]), "stopped")
        return (await self.views([moved]))[0]

    async def tick(self) -> None:
        """One runner round: queue the posts of due runs, settle the runs whose posts are done."""
        await self.runner.tick()

    @hears(MessageReceived, "ad_replies")
    async def on_message(self, evt: MessageReceived) -> None:
        """A group message: recorded when it replies to one of our posts (once)."""
        await self.replies.on_message(evt)

    # --- templates, preview ----------------------------------------------------------------------

    @answers(cmd.GetAdTemplates)
    async def templates(self, req: cmd.GetAdTemplatesRequest) -> Page[cmd.AdTemplateView]:
        docs = await self.messaging.templates.find(
            category="ad", active_only=req.active_only, search=req.search, ids=None
        )
        ids = [d["_id"] for d in docs]
        using = await self.store.using_templates(ids) if ids else {}
        posted = await self.store.posted_by_template(ids) if ids else {}
        items = [
            cmd.AdTemplateView(
                **template_view(d).model_dump(by_alias=False),
                ad_campaign_ids=sorted(using.get(d["_id"], [])),
                posted=posted.get(d["_id"], 0),
            )
            for d in docs
        ]
        return Page(items=items, total=len(items))

    @answers(cmd.PreviewAd)
    async def preview(self, req: cmd.PreviewAdRequest) -> cmd.AdPreview:
        sample = PreviewInput(
            variables=req.variables, recipient=req.recipient, samples=req.samples, seed=req.seed
        )
        if req.content is not None:
            return cmd.AdPreview(**self._render(req.content, [], sample).model_dump(by_alias=False))
        if req.template_id is not None:
            tpl = await self.messaging.templates.get(req.template_id)
            if tpl is None:
                raise NotFound(f"template {req.template_id} does not exist")
            shown = self._render(tpl["content"], tpl.get("variables") or [], sample)
            return cmd.AdPreview(**shown.model_dump(by_alias=False), template_id=req.template_id)
        assert req.ad_campaign_id is not None
        doc = await self._get(req.ad_campaign_id)
        spec = spec_of(doc)
        n = int(doc.get("runs", 0)) + 1
        plan, _ = await self.runner.plan(doc, spec, n)
        tpls = {
            t["_id"]: t
            for t in await self.messaging.templates.find(
                category=None, active_only=False, search=None, ids=list(spec.template_ids)
            )
        }
        first_tid = next((e["template_id"] for e in plan if e["template_id"] in tpls), None)
        if first_tid is None:
            raise Conflict("none of the campaign's templates exists any more")
        first = tpls[first_tid]
        shown = self._render(first["content"], first.get("variables") or [], sample)
        posts = []
        for e in plan:
            tpl = tpls.get(e["template_id"])
            text = None
            if tpl is not None and e["skip"] is None:
                one = PreviewInput(
                    variables=req.variables,
                    recipient=req.recipient,
                    samples=1,
                    seed=(req.seed or 0) + seeded(job_key(doc["_id"], n, e["tk"])).randrange(1_000_000),
                )
                text = self._render(tpl["content"], tpl.get("variables") or [], one).samples[0]
            posts.append(
                cmd.AdPostPreview(
                    target=e["target"],
                    label=e["label"],
                    peer=e["peer"],
                    account_id=e["account_id"],
                    template_id=e["template_id"],
                    text=text,
                    skip=e["skip"],
                )
            )
        nxt = aware(doc.get("next_run_at"))
        if nxt is None and doc["status"] != RUNNING:
            try:
                nxt = await self._first_run(spec, utc(self.clock()), n - 1)
            except Conflict:
                nxt = None
        return cmd.AdPreview(
            **shown.model_dump(by_alias=False),
            template_id=first_tid,
            next_run_at=nxt,
            targets=sum(1 for e in plan if e["skip"] is None),
            posts=posts,
        )

    @staticmethod
    def _render(content: str, declared: Sequence[Any], sample: PreviewInput) -> Any:
        try:
            return preview(content, [TemplateVariable.model_validate(v) for v in declared], sample)
        except TemplateError as exc:
            raise Invalid(f"content: {exc}", {"field": "content", "position": exc.position}) from None

    # --- views and stats -------------------------------------------------------------------------

    async def _get(self, campaign_id: str) -> dict[str, Any]:
        doc = await self.store.get(campaign_id)
        if doc is None:
            raise NotFound(f"ad campaign {campaign_id} does not exist")
        return doc

    async def _rows(
        self, ids: Sequence[str] | None, since: datetime | None, until: datetime | None
    ) -> builtins.list[dict[str, Any]]:
        """Every post, skipped target and reply as rows `{c, s, r, a, t, p, d, n, last}` (job
        breakdown, the runs' skips as state `skipped`, the replies as state `reply` with their
        `senders`)."""
        tz = await self.runner.timezone()
        scope = Scope(ids, since, until, tz)
        rows = await self.store.job_breakdown(scope)
        for rp in await self.store.reply_breakdown(scope):
            rows.append({**rp, "s": "reply", "r": None, "last": None})
        for sk in await self.store.skipped_targets(scope):
            at = aware(sk.get("at"))
            rows.append(
                {
                    "c": sk["c"],
                    "s": "skipped",
                    "r": sk["skip"],
                    "a": sk.get("account_id"),
                    "t": sk.get("template_id"),
                    "p": peer_key(sk["peer"]) if sk.get("peer") is not None else f"target:{sk['tk']}",
                    "d": at.astimezone(_zone(tz)).date().isoformat() if at else None,
                    "n": 1,
                    "last": None,
                }
            )
        return rows

    async def views(self, docs: Sequence[Mapping[str, Any]]) -> builtins.list[cmd.AdCampaignView]:
        if not docs:
            return []
        rows = await self._rows([d["_id"] for d in docs], None, None)
        counters: dict[str, cmd.AdCounters] = {
            d["_id"]: cmd.AdCounters(runs=int(d.get("runs", 0))) for d in docs
        }
        for r in rows:
            c = counters.get(r["c"])
            if c is None:
                continue
            if r["s"] == "sent":
                c.posted += r["n"]
            elif r["s"] == "failed":
                c.failed += r["n"]
            elif r["s"] == "skipped":
                c.skipped += r["n"]
        out = []
        for d in docs:
            spec = spec_of(d)
            out.append(
                cmd.AdCampaignView(
                    **spec.model_dump(by_alias=False),
                    id=d["_id"],
                    status=CampaignStatus(d["status"]),
                    counters=counters[d["_id"]],
                    next_run_at=d.get("next_run_at") if d["status"] == RUNNING else None,
                    last_run_at=d.get("last_run_at"),
                    last_error=d.get("last_error"),
                    created_at=d["created_at"],
                    updated_at=d["updated_at"],
                )
            )
        return out

    @answers(cmd.GetAdStats)
    async def stats(self, req: cmd.GetAdStatsRequest) -> cmd.AdStats:
        if req.since and req.until and req.until <= req.since:
            raise Invalid("until must be after since", {"field": "until"})
        ids: builtins.list[str] | None = None
        if req.ad_campaign_id is not None:
            await self._get(req.ad_campaign_id)
            ids = [req.ad_campaign_id]
        rows = await self._rows(ids, req.since, req.until)
        labels = await self._labels(req.group_by, rows)
        field = {"campaign": "c", "day": "d", "group": "p", "account": "a", "template": "t"}[req.group_by]
        grouped: dict[str, cmd.AdStatsRow] = {}
        totals = cmd.AdStatsRow(key="total")
        repliers: dict[str, set[int]] = {"total": set()}
        for r in rows:
            key = str(r.get(field) or "none")
            row = grouped.setdefault(key, cmd.AdStatsRow(key=key, label=labels.get(key)))
            for target in (row, totals):
                _add(target, r)
            if r["s"] == "reply":
                for k in (key, "total"):
                    repliers.setdefault(k, set()).update(r["senders"])
        leads = set(await self.messaging.leads.by_users(repliers["total"])) if repliers["total"] else set()
        for k, users in repliers.items():
            (totals if k == "total" else grouped[k]).leads = len(users & leads)
        tz = await self.runner.timezone()
        return cmd.AdStats(
            group_by=req.group_by,
            since=_day(req.since, tz),
            until=_day(req.until, tz),
            totals=totals,
            rows=sorted(grouped.values(), key=lambda x: x.key),
        )

    async def _labels(self, group_by: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        if group_by == "campaign":
            docs = await self.store.many({r["c"] for r in rows})
            return {d["_id"]: d.get("name") or d["_id"] for d in docs}
        if group_by == "template":
            ids = [str(r["t"]) for r in rows if r.get("t")]
            docs = await self.messaging.templates.find(category=None, active_only=False, search=None, ids=ids)
            return {d["_id"]: d["name"] for d in docs} if ids else {}
        if group_by == "group":
            out: dict[str, str] = {}
            for run in await self.store.plans_of({r["c"] for r in rows}):
                for e in run.get("plan") or []:
                    if e.get("peer") is not None and e.get("label"):
                        out[peer_key(e["peer"])] = str(e["label"])
            return out
        return {}


def _add(row: cmd.AdStatsRow, r: Mapping[str, Any]) -> None:
    n, state, reason = int(r["n"]), r["s"], r.get("r") or "unknown"
    if state == "sent":
        row.posted += n
        last = aware(r.get("last"))
        if last is not None and (row.last_posted_at is None or last > row.last_posted_at):
            row.last_posted_at = last
    elif state == "failed":
        row.failed += n
        row.failed_by_reason[reason] = row.failed_by_reason.get(reason, 0) + n
    elif state == "skipped":
        row.skipped += n
        row.skipped_by_reason[reason] = row.skipped_by_reason.get(reason, 0) + n
    elif state == "cancelled":
        row.cancelled += n
    elif state == "reply":
        row.replies += n
    else:
        row.queued += n


def _zone(name: str) -> Any:
    try:
        return zone(name)
    except Invalid:
        return zone("UTC")


def _day(at: datetime | None, tz: str) -> date | None:
    return at.astimezone(_zone(tz)).date() if at is not None else None
