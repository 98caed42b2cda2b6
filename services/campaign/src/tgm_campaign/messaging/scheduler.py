"""The scheduler: hands due jobs to accounts when every limit allows, and records what came of it.

One loop per replica. A round reads the due jobs in queue order, works out for each the account
that may send it now (the fixed one, or the best of its pool) under every limit, and starts a
dispatch for it; jobs that must wait make the loop wait until the earliest moment a limit lifts, or
until something wakes it (a new job, a resumed queue). Nothing sleeps in a command handler.

A dispatch claims the job (conditional update: only one replica can), reserves the pacing windows
(conditional updates again, so replicas share them), calls the account's `send` with the job id,
and settles the job by the answer:

- sent (or `duplicate`: delivered before, answered from tg-session's record) -> `sent`;
- FLOOD_WAIT -> the account waits past it; the job goes back (to another account of its pool);
- PEER_FLOOD -> the account cools down; the job goes to another account of its pool;
- an error that will not heal (deactivated user, privacy, invalid peer…) -> `failed` with the reason;
- no answer in time or an internal error: we do not know whether it was sent, so the job stays
  pinned to that account and is retried there, where tg-session refuses to send a job id twice.

Periodic chores (expired claims back to the queue, expired jobs skipped, timed pauses lifted, the
queue-progress snapshot) run on whichever replica holds the `maintenance` lease.

The parts, one module each: `planning` (which job to which account, pure over the `Pacer`),
`dispatch` (claim, reserve, send), `outcomes` (the table of what an answer leads to) and `chores`.
This module reads what a round needs, hands it to the planner, and carries out its decisions; the
runtime drives it (`tick` on `runtime.every`, woken through `wake`; each dispatch a tracked task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from tgm_contracts.models.campaign import LimitKind

from .accounts import AccountDirectory
from .chores import Chores
from .clock import Clock, epoch, utc
from .dispatch import CLAIM_TTL, SEND_TIMEOUT, Dispatcher, DispatchSettings, SendCall
from .job_events import JobEvents
from .lookup_cache import LookupCache
from .metrics import Metrics
from .outcomes import Outcomes
from .pacing import AccountPace, Limits, Pacer, Target, earliest
from .pacing_store import GLOBAL, api_key, rcpt_key
from .planning import (
    LONG_WAIT,
    Fail,
    Plan,
    Reschedule,
    RoundPlanner,
    RoundView,
    Seen,
    Skip,
    Tracking,
    dominant,
    is_fixed,
    member_of,
    pool_key,
    rcpt_entries,
)
from .recipients import Call, RecipientFacts
from .replan import Replanner
from .rules import Rules
from .stores import MessagingStores

log = logging.getLogger("tgm.campaign.scheduler")

MAX_IDLE = 5.0
MIN_ROUND = 0.2  # rounds read the due set; more often than this only loads the database
BATCH = 1000
ALIAS_TTL = 30.0
DUE_TTL = 1.0
TALKERS_TTL = 10.0

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class Scheduler:
    """The rounds, dispatches and chores of one replica. The runtime drives it: `tick` is the
    scheduler loop's round (`runtime.every`, woken through `wake`), `chores_tick` the chores' round,
    and each dispatch runs as a tracked task (`spawn`)."""

    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        rules: Rules,
        directory: AccountDirectory,
        send_call: SendCall,
        metrics: Metrics,
        clock: Clock,
        *,
        call: Call,
        spawn: Spawn,
        replica: str,
        owner: str | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = 64,
        send_timeout: float = SEND_TIMEOUT,
        claim_ttl: float = CLAIM_TTL,
        replanner: Replanner | None = None,
    ) -> None:
        self.stores = stores
        #: Releases held jobs when the limits this replica reads change (`replan.py`).
        self.replanner = replanner
        self._limits_seen: Limits | None = None
        self.events = events
        self.rules = rules
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self._spawn = spawn
        # One claim owner per process: a restarted replica recognises its predecessor's claims.
        self.settings = DispatchSettings(
            replica=replica,
            owner=owner or f"{replica}:{uuid.uuid4().hex[:8]}",
            send_timeout=send_timeout,
            claim_ttl=claim_ttl,
        )
        self.tracking = Tracking()
        self.lookups = LookupCache()
        self.outcomes = Outcomes(stores, events, directory, metrics, clock, self.tracking, self.rng)
        self.dispatcher = Dispatcher(
            stores,
            events,
            rules,
            send_call,
            metrics,
            clock,
            self.tracking,
            self.settings,
            self.rng,
            self.outcomes,
            RecipientFacts(stores.history, call, clock, self.lookups),
        )
        self.chores = Chores(stores, events, clock, self.outcomes, self.settings)
        if replanner is not None:
            self.chores.replan_accounts = lambda: replanner.warmup_switched_off(directory.profiles)
        #: Runs the next round now (the loop's `Periodic.wake`, set by bootstrap).
        self.waker: Callable[[], None] = lambda: None
        self._due: tuple[float, Any, list[dict[str, Any]]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovered = False
        self._delay = MAX_IDLE
        #: When the loop's next round runs unless woken (epoch seconds); None in a round or before
        #: the first (`wake` then always wakes).
        self._round_at: float | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self.last_round = RoundView()
        self.rounds = 0

    @property
    def send_timeout(self) -> float:
        return self.settings.send_timeout

    @send_timeout.setter
    def send_timeout(self, seconds: float) -> None:
        self.settings.send_timeout = seconds

    @property
    def progress(self) -> Callable[[], Awaitable[None]] | None:
        return self.chores.progress

    @progress.setter
    def progress(self, publish: Callable[[], Awaitable[None]] | None) -> None:
        self.chores.progress = publish

    # --- lifecycle -------------------------------------------------------------------------------

    async def drain(self) -> None:
        """At stop: dispatches in progress finish (their outcome is recorded) or time out, and the
        chores' lease is given up for another replica."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.send_timeout + 5)
        with contextlib.suppress(Exception):
            await self.chores.release_lease()

    def wake(self, refresh: bool = True, due: float | None = None) -> None:
        """Run a round now. `refresh` (the default, for anything that changed jobs) makes it read the
        due jobs again instead of using the list read a moment ago. `due` (epoch seconds): the new
        jobs are due only then, so when the loop is waiting for a round that comes no later, no
        round is run for them now (that round reads the due set afresh and, when nothing is due,
        waits for the earliest due job it reads: the new ones among them). A round costs four
        reads of the database, two of them sorting the waiting jobs; a trigger rule's reply, queued
        with its delay, made one per matching message."""
        if refresh:
            self._due = None
        at = self._round_at
        if due is not None and at is not None and self.clock() < at <= due:
            return
        self.waker()

    def next_wait(self) -> float:
        """Seconds from the end of a round to the next one (unless woken): what the round asked for,
        kept between `MIN_ROUND` and `MAX_IDLE`. (The loop asks it after each round and then waits
        that long: when that next round runs is kept for `wake`.)"""
        wait = max(MIN_ROUND, min(self._delay, MAX_IDLE))
        self._round_at = self.clock() + wait
        return wait

    async def tick(self) -> None:
        """One round of the scheduler loop (the first one also takes back this replica's claims)."""
        self._round_at = None  # in a round: what it read may miss a job queued meanwhile, so wake
        if not self._recovered:
            self._recovered = True
            with contextlib.suppress(Exception):
                await self.recover_own_claims()
        self._delay = 1.0  # what a failed round waits (the runtime logs and counts the failure)
        with self.metrics.round_seconds.time():
            self._delay = await self.round()

    async def chores_tick(self) -> None:
        await self.chores.tick()

    async def recover_own_claims(self) -> int:
        return await self.chores.recover_own_claims()

    async def flood_recorded(self, account: str, until: datetime) -> None:
        """tg-session recorded a FLOOD_WAIT on a send of this account (not necessarily ours)."""
        await self.outcomes.flood_recorded(account, until, await self.rules.limits())

    # --- a round ---------------------------------------------------------------------------------

    async def round(self) -> float:
        """Start every dispatch the limits allow now; returns seconds until the next round."""
        self.rounds += 1
        self.metrics.rounds.inc()
        now_ts = self.clock()
        now = utc(now_ts)
        limits = await self.rules.limits()
        if self._limits_seen is not None and limits != self._limits_seen and self.replanner is not None:
            # This replica sees new limits (its settings cache moved on): jobs held by the old ones
            # are planned again, here or by another replica.
            await self.replanner.limits_changed(self._limits_seen, limits)
        self._limits_seen = limits
        pacer = Pacer(limits, self.rng)
        pauses = await self.stores.pauses.active(now)
        view = RoundView()
        if pauses.all:
            self.last_round = view
            end = pauses.next_end()
            return MAX_IDLE if end is None else max(MIN_ROUND, epoch(end) - now_ts)

        paces = {
            doc["_id"][5:]: AccountPace.from_doc(doc["_id"][5:], doc)
            for doc in await self.stores.pacing.all_accounts()
        }
        # Accounts that can send nothing at all now (except urgent sends in quiet hours): their fixed
        # jobs are left out of the due set so they cannot crowd out other accounts' jobs.
        generic = Target("private", "", urgent=True)
        held: dict[str, float] = {}
        for acct, pace in paces.items():
            holds = pacer.account_holds(pace, None, generic, now_ts)
            view.account_holds[acct] = holds
            if holds:
                held[acct] = earliest(holds, now_ts) or math.inf
                if held[acct] - now_ts >= LONG_WAIT:
                    await self.outcomes.reschedule_account(acct, dominant(holds), held[acct])
        jobs = await self._due_jobs(now_ts, now, paces, held, pauses)
        if not jobs:
            next_at = min(held.values(), default=math.inf)
            due = await self.stores.jobs.next_due(now)
            if due is not None:
                next_at = min(next_at, epoch(due))
            self.last_round = view
            self._set_waiting(view)
            return next_at - now_ts if next_at < math.inf else MAX_IDLE

        seen = await self._read(jobs, now_ts, now, limits, pauses, paces, held)
        planned = RoundPlanner(seen, view, self.tracking.busy, self.rng, self.clock()).plan(jobs)
        for kind in planned.held_by:
            self.metrics.holds.labels(kind).inc()
        for decision in planned.decisions:
            if isinstance(decision, Skip):
                await self.outcomes.skip_waiting(decision.job, decision.reason, decision.error)
            elif isinstance(decision, Fail):
                await self.outcomes.fail_waiting(decision.job, decision.reason, decision.error)
            elif isinstance(decision, Reschedule):
                await self.outcomes.reschedule(decision.job, decision.until, decision.reason, decision.hold)
        plans = planned.plans
        next_at = planned.next_at
        if plans and self._due is not None:
            planned_ids = {p.job["_id"] for p in plans}
            self._due = (self._due[0], self._due[1], [j for j in self._due[2] if j["_id"] not in planned_ids])
        for plan in plans:
            self._start_dispatch(plan, limits)
        self.last_round = view
        self._set_waiting(view)
        if plans:
            # Dispatches in flight change the windows; look again soon (they also wake us).
            next_at = min(next_at, now_ts + 0.25)
        if next_at == math.inf:
            due = await self.stores.jobs.next_due(now)
            return MAX_IDLE if due is None else epoch(due) - now_ts
        return next_at - now_ts

    async def _due_jobs(
        self,
        now_ts: float,
        now: datetime,
        paces: dict[str, AccountPace],
        held: dict[str, float],
        pauses: Any,
    ) -> list[dict[str, Any]]:
        """The due jobs worth planning: in queue order, not already being sent here, and not fixed to
        an account that can send nothing now."""
        # Accounts held for long (and paused ones) are left out of the read; short holds (spacing, a
        # send in flight) change every moment and are filtered here, so the read can be reused.
        long_held = {a for a, t in held.items() if t - now_ts >= LONG_WAIT}
        skip_accounts = sorted(long_held | pauses.accounts)
        # Enough due jobs to give every account several to choose from, not the whole queue: the
        # round's reads grow with it and each account takes at most one job per round anyway.
        batch = min(BATCH, max(50, 5 * len(paces)))
        key = (tuple(skip_accounts), tuple(sorted(pauses.campaigns)), batch)
        gone = self.tracking.gone
        if self._due is not None and self._due[1] == key and now_ts - self._due[0] < DUE_TTL:
            jobs = [j for j in self._due[2] if j["not_before"] <= now and j["_id"] not in gone]
        else:
            # Reading the due set sorts every waiting job: on the embedded database server that is
            # the costliest read of a round, so it is reused for a moment (claims are conditional,
            # so a job changed meanwhile is simply not claimed).
            jobs = await self.stores.jobs.candidates(
                now, batch, skip_accounts=skip_accounts, skip_campaigns=sorted(pauses.campaigns)
            )
            self._due = (now_ts, key, jobs)
            gone.clear()
        return [
            j
            for j in jobs
            if j["_id"] not in self.tracking.active and not (is_fixed(j) and j.get("account_id") in held)
        ]

    async def _read(
        self,
        jobs: list[dict[str, Any]],
        now_ts: float,
        now: datetime,
        limits: Limits,
        pauses: Any,
        paces: dict[str, AccountPace],
        held: dict[str, float],
    ) -> Seen:
        """What planning needs to know about these jobs: who may send them and every limit's state."""
        # Who may send what: fixed accounts, and the usable members of each pool.
        pools: dict[str, list[str]] = {}
        for job in jobs:
            if not is_fixed(job):
                pk = pool_key(job)
                if pk not in pools:
                    pools[pk] = await self.directory.pool(job.get("pool"), member_of(job))
        accounts = {j["account_id"] for j in jobs if is_fixed(j)}
        for members in pools.values():
            accounts.update(members)
        accounts -= pauses.accounts
        profiles = await self.directory.profiles(accounts)
        for acct in accounts:
            paces.setdefault(acct, AccountPace(acct))

        peer_keys = sorted({k for j in jobs for k in j.get("peer_keys") or [j["peer_key"]]})
        aliases = await self.lookups.get("aliases", peer_keys, self.stores.history.aliases, ALIAS_TTL, now_ts)
        all_keys = sorted({k for ks in aliases.values() for k in ks})
        blocked = await self.stores.compliance.blocked(all_keys)  # never cached: a ban applies at once
        talking = await self.lookups.get(
            "talking", all_keys, self.stores.history.talking_to, TALKERS_TTL, now_ts
        )
        private_keys = [j["peer_key"] for j in jobs if j.get("kind", "private") == "private"]
        creds = sorted({p.api_credential for p in profiles.values() if p.api_credential})
        shared = await self.stores.pacing.load(
            [GLOBAL, *[api_key(c) for c in creds], *[rcpt_key(k) for k in private_keys]]
        )
        return Seen(
            now_ts=now_ts,
            now=now,
            limits=limits,
            pauses=pauses,
            paces=paces,
            held=held,
            pools=pools,
            accounts=accounts,
            profiles=profiles,
            aliases=aliases,
            blocked=blocked,
            talking=talking,
            windows={k: list(v.get("times") or []) for k, v in shared.items()},
            entries={k: rcpt_entries(v) for k, v in shared.items() if k.startswith("rcpt:")},
            totals={k: int(v.get("total") or 0) for k, v in shared.items()},
        )

    def _set_waiting(self, view: RoundView) -> None:
        gauge = self.metrics.waiting
        for kind in [*[k.value for k in LimitKind], "no_account"]:
            gauge.labels(kind).set(view.waiting_by_limit.get(kind, 0))

    # --- one dispatch ----------------------------------------------------------------------------

    def _start_dispatch(self, plan: Plan, limits: Limits) -> None:
        self.tracking.active.add(plan.job["_id"])
        self.tracking.busy[plan.account] += 1
        task = self._spawn(self._dispatch_guarded(plan, limits), f"campaign-dispatch-{plan.job['_id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch_guarded(self, plan: Plan, limits: Limits) -> None:
        try:
            async with self._slots:
                await self.dispatcher.dispatch(plan, limits)
        except Exception:
            log.exception("dispatch of job %s failed", plan.job["_id"])
        finally:
            busy = self.tracking.busy
            self.tracking.active.discard(plan.job["_id"])
            busy[plan.account] -= 1
            if busy[plan.account] <= 0:
                del busy[plan.account]
            self.wake(refresh=False)  # the account may send again
