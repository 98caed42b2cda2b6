"""Queue status: totals, per-account pacing state (next allowed send, limits in force), per-campaign
counts, and the periodic `queue-progress` snapshot with its metrics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tgm_contracts.base import Page
from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events import Event
from tgm_contracts.events_campaign import QueueProgress
from tgm_contracts.models.campaign import (
    AccountQueueRow,
    ActiveLimit,
    CampaignQueueRow,
    JobState,
    QueueCounts,
    peer_key,
)
from tgm_runtime.routes import answers

from .accounts import AccountDirectory
from .clock import Clock, utc
from .metrics import Metrics
from .pacing import DAY, AccountPace, Hold, Pacer, Target, earliest
from .pause_store import pause_view
from .rules import Rules
from .scheduler import Scheduler
from .store import WAITING, job_view
from .stores import MessagingStores

_STATES = [s.value for s in JobState]


def _limit(h: Hold) -> ActiveLimit:
    return ActiveLimit(
        kind=h.kind,
        until=utc(h.until) if h.until is not None else None,
        used=h.used,
        cap=h.cap,
        detail=h.detail,
    )


class StatusService:
    def __init__(
        self,
        stores: MessagingStores,
        rules: Rules,
        directory: AccountDirectory,
        metrics: Metrics,
        clock: Clock,
        emit: Callable[[Event], Awaitable[bool]],
        scheduler: Scheduler | None = None,
    ) -> None:
        self.stores, self.rules, self.directory = stores, rules, directory
        self.metrics, self.clock, self.emit = metrics, clock, emit
        #: This replica's scheduler, for what its last round saw (None where it does not dispatch).
        self.scheduler = scheduler
        self._had_work = False
        self._last: dict[str, Any] | None = None

    async def _counts(
        self, match: Mapping[str, Any], now: datetime
    ) -> tuple[QueueCounts, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        jobs = self.stores.jobs
        by_state = await jobs.aggregate(
            [
                {"$match": dict(match)},
                {
                    "$group": {
                        "_id": {"s": "$state", "a": "$account_id", "c": "$campaign_id"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
        due = await jobs.aggregate(
            [
                {"$match": {**match, "state": {"$in": list(WAITING)}, "not_before": {"$lte": now}}},
                {
                    "$group": {
                        "_id": {"a": "$account_id", "c": "$campaign_id"},
                        "n": {"$sum": 1},
                        "oldest": {"$min": "$not_before"},
                    }
                },
            ]
        )
        totals: dict[str, Any] = defaultdict(int)
        accounts: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        campaigns: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))

        def add(bucket: dict[str, Any], state: str, n: int) -> None:
            if state in WAITING:
                bucket["waiting"] += n
            else:
                bucket[state] += n

        for row in by_state:
            key, n = row["_id"], row["n"]
            add(totals, key["s"], n)
            if key.get("a"):
                add(accounts[key["a"]], key["s"], n)
            if key.get("c"):
                add(campaigns[key["c"]], key["s"], n)

        def add_due(bucket: dict[str, Any], n: int, oldest: datetime | None) -> None:
            bucket["due"] += n
            if oldest is not None and (bucket.get("oldest") is None or oldest < bucket["oldest"]):
                bucket["oldest"] = oldest

        for row in due:
            key = row["_id"]
            add_due(totals, row["n"], row.get("oldest"))
            if key.get("a"):
                add_due(accounts[key["a"]], row["n"], row.get("oldest"))
            if key.get("c"):
                add_due(campaigns[key["c"]], row["n"], row.get("oldest"))
        return self._view(totals, now), accounts, campaigns

    @staticmethod
    def _view(bucket: Mapping[str, Any], now: datetime) -> QueueCounts:
        # Two reads (by state, then the due ones): a job may move between them, so clamp.
        waiting = bucket.get("waiting", 0)
        due = min(bucket.get("due", 0), waiting)
        oldest = bucket.get("oldest")
        return QueueCounts(
            pending=due,
            scheduled=waiting - due,
            in_flight=bucket.get(JobState.IN_FLIGHT.value, 0),
            sent=bucket.get(JobState.SENT.value, 0),
            failed=bucket.get(JobState.FAILED.value, 0),
            skipped=bucket.get(JobState.SKIPPED.value, 0),
            cancelled=bucket.get(JobState.CANCELLED.value, 0),
            oldest_pending_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
        )

    @answers(messaging_cmd.GetQueueStatus)
    async def status(self, req: messaging_cmd.GetQueueStatusRequest) -> messaging_cmd.QueueStatus:
        now_ts = self.clock()
        now = utc(now_ts)
        match: dict[str, Any] = {}
        if req.account_id:
            match["account_id"] = req.account_id
        if req.campaign_id:
            match["campaign_id"] = req.campaign_id
        totals, accounts, campaigns = await self._counts(match, now)
        pauses = await self.stores.pauses.active(now)
        limits = await self.rules.limits()
        pacer = Pacer(limits)
        paces = {doc["_id"][5:]: doc for doc in await self.stores.pacing.all_accounts()}
        ids = sorted(set(accounts) | (set(paces) if not req.campaign_id else set()))
        if req.account_id:
            ids = [req.account_id]
        profiles = await self.directory.profiles(ids) if ids else {}
        midnight = now.astimezone(pacer.zone("")).replace(hour=0, minute=0, second=0, microsecond=0)
        sent_today = {
            r["_id"]: r["n"]
            for r in await self.stores.jobs.aggregate(
                [
                    {"$match": {"state": JobState.SENT.value, "sent_at": {"$gte": midnight}}},
                    {"$group": {"_id": "$account_id", "n": {"$sum": 1}}},
                ]
            )
        }
        rows = []
        for acct in ids:
            pace = AccountPace.from_doc(acct, paces.get(acct))
            profile = profiles.get(acct)
            holds = pacer.account_holds(pace, profile, Target("private", ""), now_ts)
            cold = pacer.account_holds(pace, profile, Target("private", "", non_contact=True), now_ts)
            extra = [h for h in cold if h.kind.value in ("account_daily_non_contacts", "warmup")]
            at = earliest(holds, now_ts)
            counts = self._view(accounts.get(acct, {}), now)
            rows.append(
                AccountQueueRow(
                    **counts.model_dump(),
                    account_id=acct,
                    paused=acct in pauses.accounts,
                    next_allowed_at=utc(at) if at is not None else None,
                    limits=[_limit(h) for h in [*holds, *extra]],
                    sent_today=sent_today.get(acct, 0),
                    daily_cap=pacer.non_contact_cap(profile, pace, now_ts),
                    recent_non_contacts=sum(1 for t in pace.non_contacts if t > now_ts - DAY),
                    cooldown_until=utc(pace.cooldown_until) if pace.cooldown_until > now_ts else None,
                )
            )
        camp_rows = [
            CampaignQueueRow(
                **self._view(bucket, now).model_dump(), campaign_id=cid, paused=cid in pauses.campaigns
            )
            for cid, bucket in sorted(campaigns.items())
        ]
        jobs_page = None
        if req.include_jobs:
            jobs_page = await self._jobs(req, match, now)
        return messaging_cmd.QueueStatus(
            totals=totals,
            paused=pauses.all,
            pauses=[pause_view(p) for p in pauses.docs],
            accounts=rows,
            campaigns=camp_rows,
            sends_last_minute=await self.stores.jobs.recent_sent(now - timedelta(minutes=1)),
            sends_last_hour=await self.stores.jobs.recent_sent(now - timedelta(hours=1)),
            generated_at=now,
            jobs=jobs_page,
        )

    async def _jobs(
        self, req: messaging_cmd.GetQueueStatusRequest, match: Mapping[str, Any], now: datetime
    ) -> Page:
        query: dict[str, Any] = dict(match)
        if req.job_id:
            query["_id"] = req.job_id
        if req.batch_id:
            query["batch_id"] = req.batch_id
        if req.lead_id:
            query["lead_id"] = req.lead_id
        if req.peer is not None:
            key = peer_key(req.peer)
            aliases = await self.stores.history.aliases([key])
            query["peer_keys"] = {"$in": aliases.get(key, [key])}
        if req.states:
            wanted = {s.value for s in req.states}
            ors: list[dict[str, Any]] = []
            plain = wanted - {JobState.PENDING.value, JobState.SCHEDULED.value}
            if plain:
                ors.append({"state": {"$in": sorted(plain)}})
            if JobState.PENDING.value in wanted:
                ors.append({"state": {"$in": list(WAITING)}, "not_before": {"$lte": now}})
            if JobState.SCHEDULED.value in wanted:
                ors.append({"state": JobState.SCHEDULED.value, "not_before": {"$gt": now}})
            query["$or"] = ors
        docs, nxt = await self.stores.jobs.page(query, req.limit, req.cursor)
        return Page(items=[job_view(doc, now) for doc in docs], next_cursor=nxt)

    async def summary(self) -> tuple[QueueCounts, bool]:
        """Queue totals and whether the whole queue is paused, from the database alone (no call to
        tg-session, unlike `status`): automation's get-system-status."""
        now = utc(self.clock())
        totals, _, _ = await self._counts({}, now)
        pauses = await self.stores.pauses.active(now)
        return totals, bool(pauses.all)

    async def publish_progress(self) -> None:
        """The `queue-progress` snapshot and the queue metrics (by the replica doing the chores)."""
        now = utc(self.clock())
        totals, _, _ = await self._counts({}, now)
        metrics = self.metrics
        for state in _STATES:
            metrics.jobs.labels(state).set(getattr(totals, state, 0))
        metrics.oldest.set(totals.oldest_pending_age_seconds or 0.0)
        work = totals.pending + totals.scheduled + totals.in_flight > 0
        snapshot = totals.model_dump(exclude={"oldest_pending_age_seconds"})
        if not work and not self._had_work and snapshot == self._last:
            return  # idle and nothing changed since the last snapshot
        self._had_work = work
        self._last = snapshot
        last_minute = await self.stores.jobs.recent_sent(now - timedelta(minutes=1))
        last_10s = await self.stores.jobs.recent_sent(now - timedelta(seconds=10))
        waiting = dict(self.scheduler.last_round.waiting_by_limit) if self.scheduler is not None else {}
        await self.emit(
            QueueProgress(
                totals=totals,
                sends_last_minute=last_minute,
                sends_per_second=round(last_10s / 10.0, 3),
                waiting_by_limit=waiting,
            )
        )

    def apply_progress(self, event: QueueProgress) -> None:
        """Another replica's snapshot: keep this replica's gauges in step."""
        for state in _STATES:
            self.metrics.jobs.labels(state).set(getattr(event.totals, state, 0))
        self.metrics.oldest.set(event.totals.oldest_pending_age_seconds or 0.0)
