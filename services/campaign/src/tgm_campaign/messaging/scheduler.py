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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.events_campaign import AccountPacingChanged, MessageSent, QueuePauseChanged
from tgm_contracts.models.campaign import JobReason, JobState, LimitKind, is_chat_peer
from tgm_contracts.rpc_session import SendRequest, SendResult
from tgm_runtime import DomainError

from .accounts import AccountDirectory
from .clock import Clock, epoch, utc
from .compliance import reason_of
from .job_events import JobEvents
from .metrics import Metrics
from .pacing import (
    DAY,
    AccountPace,
    AccountProfile,
    Hold,
    Limits,
    Pacer,
    Target,
    earliest,
    prune,
    rate_window,
    recipient_hold,
    reserve_window,
    window_hold,
)
from .pacing_store import GLOBAL, Contention, Denied, acct_key, api_key, rcpt_key
from .rules import Rules
from .store import attempt
from .stores import MessagingStores
from .templates import (
    MAX_MESSAGE,
    MissingVariables,
    TemplateError,
    merge_values,
    parse,
    recipient_values,
    seeded,
)
from .templates import render as render_template

log = logging.getLogger("tgm.campaign.scheduler")

SEND_TIMEOUT = 30.0
CLAIM_TTL = 90.0
MAX_IDLE = 5.0
MIN_ROUND = 0.2  # rounds read the due set; more often than this only loads the database
LONG_WAIT = 60.0  # a fixed job held longer than this is rescheduled, with the reason (it leaves the due set)
BATCH = 1000
ALIAS_TTL = 30.0
DUE_TTL = 1.0
#: The fleet-wide and per-credential ceilings are our own per-second rates, not Telegram's windows:
#: the safety margin (meant for clock skew against Telegram's minute and day windows) would halve them.
SHARED_MARGIN = 0.0
TALKERS_TTL = 10.0

#: Telegram errors after which the job cannot succeed, and the reason recorded.
PERMANENT: dict[str, JobReason] = {
    "USER_DEACTIVATED": JobReason.USER_DEACTIVATED,
    "USER_DEACTIVATED_BAN": JobReason.USER_DEACTIVATED,
    "INPUT_USER_DEACTIVATED": JobReason.USER_DEACTIVATED,
    "USER_IS_BLOCKED": JobReason.PRIVACY_RESTRICTED,
    "USER_PRIVACY_RESTRICTED": JobReason.PRIVACY_RESTRICTED,
    "PRIVACY_PREMIUM_REQUIRED": JobReason.PRIVACY_RESTRICTED,
    "YOU_BLOCKED_USER": JobReason.PRIVACY_RESTRICTED,
    "PEER_ID_INVALID": JobReason.PEER_INVALID,
    "USER_ID_INVALID": JobReason.PEER_INVALID,
    "USERNAME_INVALID": JobReason.PEER_INVALID,
    "USERNAME_NOT_OCCUPIED": JobReason.PEER_INVALID,
    "CHAT_ID_INVALID": JobReason.PEER_INVALID,
    "CHANNEL_INVALID": JobReason.PEER_INVALID,
    "CHANNEL_PRIVATE": JobReason.CHAT_WRITE_FORBIDDEN,
    "CHAT_WRITE_FORBIDDEN": JobReason.CHAT_WRITE_FORBIDDEN,
    "CHAT_ADMIN_REQUIRED": JobReason.CHAT_WRITE_FORBIDDEN,
    "CHAT_RESTRICTED": JobReason.CHAT_WRITE_FORBIDDEN,
    "USER_BANNED_IN_CHANNEL": JobReason.CHAT_WRITE_FORBIDDEN,
    "CHAT_SEND_PLAIN_FORBIDDEN": JobReason.CHAT_WRITE_FORBIDDEN,
    "MESSAGE_TOO_LONG": JobReason.INVALID_MESSAGE,
    "MESSAGE_EMPTY": JobReason.INVALID_MESSAGE,
    "ENTITY_BOUNDS_INVALID": JobReason.INVALID_MESSAGE,
}

#: Errors about this account's standing in a chat (not a member, banned there): another account of
#: the pool may still post, so a pool job tries the others before it fails.
ACCOUNT_SPECIFIC = frozenset(
    {
        "CHAT_WRITE_FORBIDDEN",
        "CHANNEL_PRIVATE",
        "USER_BANNED_IN_CHANNEL",
        "CHAT_RESTRICTED",
        "CHAT_ADMIN_REQUIRED",
        "CHAT_SEND_PLAIN_FORBIDDEN",
    }
)

_WAIT_REASON = {
    LimitKind.FLOOD_WAIT: JobReason.FLOOD_WAIT,
    LimitKind.PEER_FLOOD: JobReason.PEER_FLOOD,
    LimitKind.QUIET_HOURS: JobReason.QUIET_HOURS,
    LimitKind.RECIPIENT_CAP: JobReason.RECIPIENT_CAP,
}

_PARSE_MODE = {"plain": "none", "markdown": "md", "html": "html"}

#: tg-session's `send` of one account: `(account id, request, timeout) -> result`.
SendCall = Callable[[str, SendRequest, float], Awaitable[SendResult]]


def wait_reason(kind: LimitKind) -> JobReason:
    return _WAIT_REASON.get(kind, JobReason.RATE_LIMIT)


def dominant(holds: list[Hold]) -> Hold:
    """The hold that lifts last (None counts as never) — the one worth reporting."""
    return max(holds, key=lambda h: math.inf if h.until is None else h.until)


@dataclass
class Plan:
    job: dict[str, Any]
    account: str
    target: Target
    profile: AccountProfile | None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    account_reserved: bool = False


@dataclass
class RoundView:
    """What a round saw, for status and metrics."""

    waiting_by_limit: Counter[str] = field(default_factory=Counter)
    account_holds: dict[str, list[Hold]] = field(default_factory=dict)


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
        spawn: Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]],
        replica: str,
        owner: str | None = None,
        rng: random.Random | None = None,
        max_in_flight: int = 64,
        send_timeout: float = SEND_TIMEOUT,
        claim_ttl: float = CLAIM_TTL,
    ) -> None:
        self.stores = stores
        self.events = events
        self.rules = rules
        self.directory = directory
        self.send_call = send_call
        self.metrics = metrics
        self.clock = clock
        self.replica = replica
        # One claim owner per process: a restarted replica recognises its predecessor's claims.
        self.owner = owner or f"{replica}:{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self._spawn = spawn
        #: Runs the next round now (the loop's `Periodic.wake`, set by bootstrap).
        self.waker: Callable[[], None] = lambda: None
        self._active: set[str] = set()
        self._busy: Counter[str] = Counter()  # sends of this replica in flight, per account
        self._caches: dict[str, dict[str, tuple[float, Any]]] = {}
        self._due: tuple[float, Any, list[dict[str, Any]]] | None = None
        self._gone: set[str] = set()  # due jobs this replica moved since the due set was read
        self._tasks: set[asyncio.Task[Any]] = set()
        self._recovered = False
        self._delay = MAX_IDLE
        self.max_in_flight = max_in_flight
        self.send_timeout = send_timeout
        self.claim_ttl = claim_ttl
        self._slots = asyncio.Semaphore(max_in_flight)
        self.last_round = RoundView()
        self.rounds = 0
        #: Called by the replica doing the chores: publishes the queue-progress snapshot.
        self.progress: Callable[[], Awaitable[None]] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def drain(self) -> None:
        """At stop: dispatches in progress finish (their outcome is recorded) or time out, and the
        chores' lease is given up for another replica."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.send_timeout + 5)
        with contextlib.suppress(Exception):
            await self.stores.leases.release("maintenance", self.owner)

    def wake(self, refresh: bool = True) -> None:
        """Run a round now. `refresh` (the default, for anything that changed jobs) makes it read the
        due jobs again instead of using the list read a moment ago."""
        if refresh:
            self._due = None
        self.waker()

    def next_wait(self) -> float:
        """Seconds from the end of a round to the next one (unless woken): what the round asked for,
        kept between `MIN_ROUND` and `MAX_IDLE`."""
        return max(MIN_ROUND, min(self._delay, MAX_IDLE))

    async def tick(self) -> None:
        """One round of the scheduler loop (the first one also takes back this replica's claims)."""
        if not self._recovered:
            self._recovered = True
            with contextlib.suppress(Exception):
                await self.recover_own_claims()
        self._delay = 1.0  # what a failed round waits (the runtime logs and counts the failure)
        with self.metrics.round_seconds.time():
            self._delay = await self.round()

    async def chores_tick(self) -> None:
        """The chores, on the one replica that holds the `maintenance` lease."""
        now = self.clock()
        if await self.stores.leases.acquire("maintenance", self.owner, utc(now), utc(now + 15)):
            await self.chores()

    # --- a round ---------------------------------------------------------------------------------

    async def round(self) -> float:
        """Start every dispatch the limits allow now; returns seconds until the next round."""
        self.rounds += 1
        self.metrics.rounds.inc()
        now_ts = self.clock()
        now = utc(now_ts)
        limits = await self.rules.limits()
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
                    await self._reschedule_account(acct, dominant(holds), held[acct])
        # Accounts held for long (and paused ones) are left out of the read; short holds (spacing, a
        # send in flight) change every moment and are filtered here, so the read can be reused.
        long_held = {a for a, t in held.items() if t - now_ts >= LONG_WAIT}
        skip_accounts = sorted(long_held | pauses.accounts)
        # Enough due jobs to give every account several to choose from, not the whole queue: the
        # round's reads grow with it and each account takes at most one job per round anyway.
        batch = min(BATCH, max(50, 5 * len(paces)))
        key = (tuple(skip_accounts), tuple(sorted(pauses.campaigns)), batch)
        if self._due is not None and self._due[1] == key and now_ts - self._due[0] < DUE_TTL:
            jobs = [j for j in self._due[2] if j["not_before"] <= now and j["_id"] not in self._gone]
        else:
            # Reading the due set sorts every waiting job: on the embedded database server that is
            # the costliest read of a round, so it is reused for a moment (claims are conditional,
            # so a job changed meanwhile is simply not claimed).
            jobs = await self.stores.jobs.candidates(
                now, batch, skip_accounts=skip_accounts, skip_campaigns=sorted(pauses.campaigns)
            )
            self._due = (now_ts, key, jobs)
            self._gone = set()
        jobs = [
            j
            for j in jobs
            if j["_id"] not in self._active
            and not ((j.get("fixed") or j.get("pinned")) and j.get("account_id") in held)
        ]
        next_at = min(held.values(), default=math.inf)
        if not jobs:
            due = await self.stores.jobs.next_due(now)
            if due is not None:
                next_at = min(next_at, epoch(due))
            self.last_round = view
            self._set_waiting(view)
            return next_at - now_ts if next_at < math.inf else MAX_IDLE

        # Who may send what: fixed accounts, and the usable members of each pool.
        pools: dict[str, list[str]] = {}
        for job in jobs:
            if not (job.get("fixed") or job.get("pinned")):
                pk = self._pool_key(job)
                if pk not in pools:
                    pools[pk] = await self.directory.pool(job.get("pool"), self._member_of(job))
        accounts = {j["account_id"] for j in jobs if j.get("fixed") or j.get("pinned")}
        for members in pools.values():
            accounts.update(members)
        accounts -= pauses.accounts
        profiles = await self.directory.profiles(accounts)
        for acct in accounts:
            paces.setdefault(acct, AccountPace(acct))

        peer_keys = sorted({k for j in jobs for k in j.get("peer_keys") or [j["peer_key"]]})
        aliases = await self._cached("aliases", peer_keys, self.stores.history.aliases, ALIAS_TTL, now_ts)
        all_keys = sorted({k for ks in aliases.values() for k in ks})
        blocked = await self.stores.compliance.blocked(all_keys)  # never cached: a ban applies at once
        talking = await self._cached("talking", all_keys, self.stores.history.talking_to, TALKERS_TTL, now_ts)
        private_keys = [j["peer_key"] for j in jobs if j.get("kind", "private") == "private"]
        creds = sorted({p.api_credential for p in profiles.values() if p.api_credential})
        shared = await self.stores.pacing.load(
            [GLOBAL, *[api_key(c) for c in creds], *[rcpt_key(k) for k in private_keys]]
        )
        windows: dict[str, list[float]] = {k: list(v.get("times") or []) for k, v in shared.items()}
        entries: dict[str, list[list[Any]]] = {
            k: rcpt_entries(v) for k, v in shared.items() if k.startswith("rcpt:")
        }
        totals: dict[str, int] = {k: int(v.get("total") or 0) for k, v in shared.items()}
        g_cap, g_win = rate_window(limits.global_per_second)
        a_cap, a_win = rate_window(limits.per_api_per_second)

        plans: list[Plan] = []
        planned: Counter[str] = Counter()
        for job in jobs:
            keys = [k for pk in job.get("peer_keys") or [job["peer_key"]] for k in aliases.get(pk, [pk])]
            expires = job.get("expires_at")
            if expires is not None and expires <= now:
                await self._skip_waiting(job, JobReason.EXPIRED, "not sent before expiresAt")
                continue
            if pauses.covers(job):
                continue
            bad = next((blocked[k] for k in keys if k in blocked), None)
            if bad is not None:
                await self._skip_waiting(job, JobReason(reason_of(bad)), None)
                continue
            private = job.get("kind", "private") == "private"
            rkey = rcpt_key(job["peer_key"])
            if private:
                times, total = others(entries.get(rkey, []), totals.get(rkey, 0), job["_id"])
                rh = recipient_hold(times, total, limits, now_ts)
                if rh is not None:
                    view.waiting_by_limit[rh.kind.value] += 1
                    if rh.until is None:
                        await self._skip_waiting(
                            job,
                            JobReason.RECIPIENT_CAP,
                            f"{rh.used} messages sent to this user (cap {rh.cap})",
                        )
                    else:
                        await self._reschedule(job, rh.until, JobReason.RECIPIENT_CAP)
                    continue
            fixed = bool(job.get("fixed") or job.get("pinned"))
            if fixed:
                candidates = [job["account_id"]] if job["account_id"] not in pauses.accounts else []
            else:
                excluded = set(job.get("exclude") or [])
                members = pools.get(self._pool_key(job), [])
                candidates = [a for a in members if a not in excluded and a in accounts]
                if members and excluded and not candidates and job.get("exclude_reason"):
                    # Every usable account of the pool was refused in this chat: it cannot be sent.
                    await self._fail_waiting(
                        job, JobReason(job["exclude_reason"]), job.get("last_error") or ""
                    )
                    continue
            if not candidates:  # no usable account (pool empty, or the fixed one is paused)
                view.waiting_by_limit["no_account"] += 1
                continue
            urgent = job.get("priority") == "urgent"
            talkers = set().union(*(talking.get(k, set()) for k in keys)) if keys else set()

            def evaluate(
                acct: str,
                job: dict[str, Any] = job,
                private: bool = private,
                talkers: set[str] = talkers,
                urgent: bool = urgent,
            ) -> tuple[list[Hold], Target, AccountProfile | None]:
                target = Target(
                    "private" if private else "group",
                    job["peer_key"],
                    non_contact=private and (bool(job.get("direct")) or acct not in talkers),
                    urgent=urgent,
                )
                profile = profiles.get(acct)
                holds = pacer.account_holds(paces[acct], profile, target, now_ts)
                if profile is not None and profile.api_credential:
                    h = window_hold(
                        LimitKind.API_CREDENTIAL,
                        windows.get(api_key(profile.api_credential), []),
                        a_cap,
                        a_win,
                        now_ts,
                        SHARED_MARGIN,
                    )
                    if h is not None:
                        holds.append(h)
                h = window_hold(
                    LimitKind.GLOBAL, windows.get(GLOBAL, []), g_cap, g_win, now_ts, SHARED_MARGIN
                )
                if h is not None:
                    holds.append(h)
                return holds, target, profile

            best: Plan | None = None
            soonest = math.inf
            soonest_holds: list[Hold] = []
            # The accounts the user talks to come first, and while one of them will be free soon the
            # job waits for it: another account would be a stranger writing cold (the non-contact cap)
            # and may not even know how to reach the user.
            talking_here = [a for a in candidates if a in talkers] if private else []
            groups_of = (
                [talking_here, [a for a in candidates if a not in talking_here]]
                if talking_here
                else [candidates]
            )
            for tier, tier_accounts in enumerate(groups_of):
                for acct in self._order(tier_accounts, talkers, job, paces):
                    # One send at a time per account: the others wait for its outcome (a FLOOD_WAIT
                    # then holds them all, as it should).
                    if self._busy[acct] + planned[acct] >= limits.max_in_flight:
                        if now_ts + 1.0 < soonest:
                            soonest, soonest_holds = (
                                now_ts + 1.0,
                                [Hold(LimitKind.JITTER, now_ts + 1.0, detail="busy")],
                            )
                        continue
                    holds, target, profile = evaluate(acct)
                    if not holds:
                        best = Plan(job, acct, target, profile)
                        break
                    at = earliest(holds, now_ts)
                    at = math.inf if at is None else at
                    if at < soonest or not soonest_holds:
                        soonest, soonest_holds = at, holds
                if best is not None or (tier == 0 and len(groups_of) > 1 and soonest - now_ts < LONG_WAIT):
                    break
            if best is None:
                if not soonest_holds:
                    continue
                top = dominant(soonest_holds)
                view.waiting_by_limit[top.kind.value] += 1
                self.metrics.holds.labels(top.kind.value).inc()
                next_at = min(next_at, soonest)
                if fixed and soonest - now_ts >= LONG_WAIT:
                    await self._reschedule(
                        job, None if soonest == math.inf else soonest, wait_reason(top.kind), top
                    )
                continue
            # Spend the slots locally so the next jobs of this round see them.
            paces[best.account] = pacer.reserve(paces[best.account], best.target, now_ts)
            windows[GLOBAL] = reserve_window(windows.get(GLOBAL, []), now_ts, g_win + limits.margin)
            if best.profile is not None and best.profile.api_credential:
                k = api_key(best.profile.api_credential)
                windows[k] = reserve_window(windows.get(k, []), now_ts, a_win + limits.margin)
            if private and not any(e[1] == job["_id"] for e in entries.get(rkey, [])):
                entries.setdefault(rkey, []).append([now_ts, job["_id"]])
                totals[rkey] = totals.get(rkey, 0) + 1
            plans.append(best)
            planned[best.account] += 1

        if plans and self._due is not None:
            planned_ids = {p.job["_id"] for p in plans}
            self._due = (self._due[0], self._due[1], [j for j in self._due[2] if j["_id"] not in planned_ids])
        for plan in plans:
            self._active.add(plan.job["_id"])
            self._busy[plan.account] += 1
            task = self._spawn(self._dispatch_guarded(plan, limits), f"campaign-dispatch-{plan.job['_id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.last_round = view
        self._set_waiting(view)
        if plans:
            # Dispatches in flight change the windows; look again soon (they also wake us).
            next_at = min(next_at, now_ts + 0.25)
        if next_at == math.inf:
            due = await self.stores.jobs.next_due(now)
            return MAX_IDLE if due is None else epoch(due) - now_ts
        return next_at - now_ts

    async def _cached(
        self,
        name: str,
        keys: list[str],
        load: Callable[[list[str]], Awaitable[dict[str, Any]]],
        ttl: float,
        now: float,
    ) -> dict[str, Any]:
        """Per-key results of a directory lookup, kept `ttl` seconds (aliases and conversations only
        grow, so a slightly old answer is at worst conservative)."""
        cache = self._caches.setdefault(name, {})
        out: dict[str, Any] = {}
        missing = []
        for k in keys:
            hit = cache.get(k)
            if hit is not None and now - hit[0] < ttl:
                out[k] = hit[1]
            else:
                missing.append(k)
        if missing:
            fresh = await load(missing)
            for k in missing:
                value = fresh.get(k)
                cache[k] = (now, value)
                out[k] = value
        if len(cache) > 50_000:
            self._caches[name] = {k: v for k, v in cache.items() if now - v[0] < ttl}
        return {k: v for k, v in out.items() if v is not None}

    def _set_waiting(self, view: RoundView) -> None:
        gauge = self.metrics.waiting
        for kind in [*[k.value for k in LimitKind], "no_account"]:
            gauge.labels(kind).set(view.waiting_by_limit.get(kind, 0))

    @staticmethod
    def _pool_key(job: Mapping[str, Any]) -> str:
        return repr(
            (sorted((job.get("pool") or {}).items(), key=lambda kv: kv[0]), Scheduler._member_of(job))
        )

    @staticmethod
    def _member_of(job: Mapping[str, Any]) -> int | None:
        peer = job.get("peer")
        return peer if job.get("kind") == "group" and isinstance(peer, int) else None

    def _order(
        self,
        candidates: list[str],
        talkers: set[str],
        job: Mapping[str, Any],
        paces: Mapping[str, AccountPace],
    ) -> list[str]:
        """Pool accounts in the order to try: those the user talks to first, then by the strategy."""
        strategy = (job.get("pool") or {}).get("strategy") or "health_first"
        now = self.clock()
        if strategy == "random":
            rest = list(candidates)
            self.rng.shuffle(rest)
        elif strategy == "round_robin":  # least recently used first
            rest = sorted(candidates, key=lambda a: max(paces[a].sends, default=0.0))
        else:  # least used in the last hour (health_first, least_used); tg-session's order breaks ties
            rank = {a: i for i, a in enumerate(candidates)}
            rest = sorted(candidates, key=lambda a: (len(prune(paces[a].sends, now, 3600)), rank[a]))
        return [a for a in rest if a in talkers] + [a for a in rest if a not in talkers]

    # --- waiting jobs ----------------------------------------------------------------------------

    async def _skip_waiting(self, job: Mapping[str, Any], reason: JobReason, error: str | None) -> None:
        self._gone.add(job["_id"])
        now = utc(self.clock())
        ok = await self.stores.jobs.update_waiting(
            job,
            {"state": JobState.SKIPPED.value, "reason": reason.value, "last_error": error, "updated_at": now},
            [attempt(now, "skipped", reason=reason, error=error)],
        )
        if ok:
            self.metrics.sends.labels("skipped").inc()
            await self.events.job_changed(job, JobState.SKIPPED, job["state"], reason=reason, error=error)

    async def _reschedule(
        self, job: Mapping[str, Any], until: float | None, reason: JobReason, hold: Hold | None = None
    ) -> None:
        """Move a job that must wait a while out of the due set (it comes back at `until`)."""
        self._gone.add(job["_id"])
        now_ts = self.clock()
        at = utc(until if until is not None else now_ts + 3600)
        if (
            job["state"] == JobState.SCHEDULED.value
            and job.get("reason") == reason.value
            and job["not_before"] >= at
        ):
            return
        ok = await self.stores.jobs.update_waiting(
            job,
            {
                "state": JobState.SCHEDULED.value,
                "reason": reason.value,
                "not_before": at,
                "updated_at": utc(now_ts),
            },
        )
        if ok and job["state"] != JobState.SCHEDULED.value:
            await self.events.job_changed(job, JobState.SCHEDULED, job["state"], reason=reason, retry_at=at)

    async def _reschedule_account(self, account: str, hold: Hold, until: float) -> None:
        """An account held for long (flood wait, cool-down, hourly cap): its fixed jobs say why and
        leave the due set until then."""
        now = utc(self.clock())
        at = utc(until if until < math.inf else self.clock() + 3600)
        reason = wait_reason(hold.kind)
        docs = await self.stores.jobs.c.find(
            {
                "account_id": account,
                "state": {"$in": ["pending", "scheduled"]},
                "not_before": {"$lt": at},
                "$or": [{"fixed": True}, {"pinned": True}],
            },
            {"history": 0},
        ).to_list()
        for job in docs:
            if job["_id"] in self._active:
                continue
            if await self.stores.jobs.update_waiting(
                job,
                {
                    "state": JobState.SCHEDULED.value,
                    "reason": reason.value,
                    "not_before": at,
                    "updated_at": now,
                },
            ):
                await self.events.job_changed(
                    job, JobState.SCHEDULED, job["state"], reason=reason, retry_at=at
                )

    # --- one dispatch ----------------------------------------------------------------------------

    async def _dispatch_guarded(self, plan: Plan, limits: Limits) -> None:
        try:
            async with self._slots:
                await self.dispatch(plan, limits)
        except Exception:
            log.exception("dispatch of job %s failed", plan.job["_id"])
        finally:
            self._active.discard(plan.job["_id"])
            self._busy[plan.account] -= 1
            if self._busy[plan.account] <= 0:
                del self._busy[plan.account]
            self.wake(refresh=False)  # the account may send again

    async def render(self, job: Mapping[str, Any], account: str) -> str:
        """The text of a job, rendered once (variables, spintax) with a generator fixed by its id."""
        body = job.get("body") or {}
        declared: list[Any] = []
        source = body.get("text")
        if body.get("template_id"):
            tpl = await self.stores.templates.get(body["template_id"])
            if tpl is None:
                raise TemplateError("the template was deleted", 0)
            if not tpl.get("is_active", True):
                raise TemplateError("the template is inactive", 0)
            source = tpl["content"]
            from tgm_contracts.models.campaign import TemplateVariable

            declared = [TemplateVariable.model_validate(v) for v in tpl.get("variables") or []]
        if source is None:
            return ""
        keys = job.get("peer_keys") or [job["peer_key"]]
        users = await self._cached("users", list(keys), self.stores.history.users, ALIAS_TTL, self.clock())
        user = next((users[k] for k in keys if k in users), None)
        recipient = recipient_values(
            *(user.get(f) for f in ("first_name", "last_name", "username")) if user else (None, None, None)
        )
        limits = await self.rules.limits()
        local = utc(self.clock()).astimezone(Pacer(limits).zone(account))
        context = {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M")}
        values = merge_values(declared, job.get("variables") or {}, recipient, context)
        return render_template(parse(source), values, seeded(job["_id"]))

    async def dispatch(self, plan: Plan, limits: Limits) -> None:
        job, account = plan.job, plan.account
        text = job.get("text")
        if text is None:
            try:
                text = await self.render(job, account)
            except (TemplateError, MissingVariables) as exc:
                await self._fail_waiting(job, JobReason.TEMPLATE_ERROR, str(exc))
                return
            if len(text) > MAX_MESSAGE:
                await self._fail_waiting(
                    job,
                    JobReason.INVALID_MESSAGE,
                    f"rendered text is {len(text)} characters (max {MAX_MESSAGE})",
                )
                return
            media = (job.get("body") or {}).get("attachment")
            if not text.strip() and not media:
                await self._fail_waiting(job, JobReason.INVALID_MESSAGE, "rendered text is empty")
                return
        token = plan.token
        now_ts = self.clock()
        if not await self.stores.jobs.claim(
            job,
            owner=self.owner,
            replica=self.replica,
            token=token,
            until=utc(now_ts + self.claim_ttl),
            account_id=account,
            text=text,
            now=utc(now_ts),
        ):
            return  # another replica took it, or it changed (cancelled, paused…) since we read it
        try:
            await self._send_claimed(plan, limits, text)
        finally:
            if plan.account_reserved:  # the outcome is known (or we gave up): the account is free
                await self.stores.pacing.release_busy(acct_key(account), token)

    async def _send_claimed(self, plan: Plan, limits: Limits, text: str) -> None:
        job, account, token = plan.job, plan.account, plan.token
        rcpt_reserved: float | None = None
        try:
            rcpt_reserved = await self._reserve(plan, limits)
        except (Denied, Contention) as exc:
            log.debug("job %s: limits no longer allow it (%s)", job["_id"], exc)
            await self.stores.jobs.settle(
                job["_id"],
                token,
                set_={
                    "state": job["state"],
                    "account_id": job.get("account_id"),
                    "pinned": bool(job.get("pinned")),
                    "text": text,
                    "updated_at": utc(self.clock()),
                },
                inc={"attempts": -1},
            )
            self.events.wake()
            return
        attempts = job.get("attempts", 0) + 1
        await self.events.job_changed(
            job, JobState.IN_FLIGHT, job["state"], account_id=account, attempts=attempts
        )
        body = job.get("body") or {}
        media = body.get("attachment") or {}
        request = SendRequest(
            job_id=job["_id"],
            peer=job["peer"],
            text=text,
            reply_to=body.get("reply_to"),
            parse_mode=_PARSE_MODE.get(body.get("parse_mode") or "plain", "none"),
            silent=bool(body.get("silent")),
            link_preview=body.get("link_preview", True),
            media_url=media.get("url"),
            media_kind=(media.get("kind") or "auto") if media else "auto",
        )
        started = self.clock()
        try:
            result = await self.send_call(account, request, self.send_timeout)
        except DomainError as exc:
            self.metrics.latency.observe(self.clock() - started)
            await self._on_error(job, account, token, attempts, exc, rcpt_reserved, limits, text)
            return
        except Exception as exc:  # the transport broke: the outcome is unknown
            log.warning("send of job %s via %s raised %s", job["_id"], account, exc)
            err = DomainError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            await self._on_error(job, account, token, attempts, err, rcpt_reserved, limits, text)
            return
        self.metrics.latency.observe(self.clock() - started)
        await self._on_sent(job, account, token, attempts, result, rcpt_reserved, text)

    async def _reserve(self, plan: Plan, limits: Limits) -> float | None:
        """Spend the slots of every limit for this send, re-checking them against the stored state.
        Returns the time recorded in the recipient's window (to give it back if nothing is sent)."""
        now_ts = self.clock()
        pacer = Pacer(limits, self.rng)

        def account(doc: dict[str, Any] | None) -> dict[str, Any]:
            pace = AccountPace.from_doc(plan.account, doc)
            holds = pacer.account_holds(pace, plan.profile, plan.target, now_ts)
            if holds:
                raise Denied(holds)
            return pacer.reserve(
                pace, plan.target, now_ts, busy_for=self.send_timeout + limits.margin, token=plan.token
            ).to_doc()

        # The shared windows first: when one of them is full (bursts of many accounts), nothing of
        # the account's own windows has been spent for a send that does not happen.
        reserved = None
        added = False
        if plan.target.kind == "private":
            job_id = plan.job["_id"]

            def recipient(doc: dict[str, Any] | None) -> dict[str, Any]:
                # Keyed by job: an attempt of a job already counted (a retry after a crash or a late
                # answer) is not counted again, so a recipient is charged once per message.
                nonlocal added
                kept = [e for e in rcpt_entries(doc) if e[0] > now_ts - DAY - limits.margin]
                total = int((doc or {}).get("total") or 0)
                if any(e[1] == job_id for e in kept):
                    added = False
                    return {"entries": kept, "total": total, "times": None}
                times, others_total = others(kept, total, job_id)
                if recipient_hold(times, others_total, limits, now_ts) is not None:
                    raise Denied("recipient cap")
                added = True
                return {"entries": [*kept, [now_ts, job_id]], "total": total + 1, "times": None}

            await self.stores.pacing.mutate(rcpt_key(plan.target.chat), recipient)
            reserved = now_ts
        try:
            if plan.profile is not None and plan.profile.api_credential:
                cap, win = rate_window(limits.per_api_per_second)
                await self.stores.pacing.mutate(
                    api_key(plan.profile.api_credential), self._window(cap, win, limits, now_ts)
                )
            cap, win = rate_window(limits.global_per_second)
            await self.stores.pacing.mutate(GLOBAL, self._window(cap, win, limits, now_ts))
            await self.stores.pacing.mutate(acct_key(plan.account), account)
            plan.account_reserved = True
        except (Denied, Contention):
            if added:  # only what this attempt counted (an earlier attempt may have delivered)
                await self._release_recipient(plan.target.chat, plan.job["_id"])
            raise
        return reserved

    @staticmethod
    def _window(cap: int, win: float, limits: Limits, now_ts: float) -> Any:
        def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
            times = list((doc or {}).get("times") or [])
            if window_hold(LimitKind.GLOBAL, times, cap, win, now_ts, SHARED_MARGIN) is not None:
                raise Denied("window full")
            return {"times": reserve_window(times, now_ts, win + limits.margin)}

        return fn

    async def _release_recipient(self, chat: str, job_id: str) -> None:
        """The job's message certainly did not reach the recipient: take its count back."""

        def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
            current = rcpt_entries(doc)
            kept = [e for e in current if e[1] != job_id]
            total = int((doc or {}).get("total") or 0) - (len(current) - len(kept))
            return {"entries": kept, "total": max(0, total), "times": None}

        try:
            await self.stores.pacing.mutate(rcpt_key(chat), fn)
        except Contention:
            log.warning("could not give back a recipient slot of %s", chat)

    # --- outcomes --------------------------------------------------------------------------------

    async def _fail_waiting(self, job: Mapping[str, Any], reason: JobReason, error: str) -> None:
        self._gone.add(job["_id"])
        now = utc(self.clock())
        ok = await self.stores.jobs.update_waiting(
            job,
            {"state": JobState.FAILED.value, "reason": reason.value, "last_error": error, "updated_at": now},
            [attempt(now, "failed", reason=reason, error=error)],
        )
        if ok:
            self.metrics.sends.labels("failed").inc()
            await self.events.job_changed(job, JobState.FAILED, job["state"], reason=reason, error=error)
            await self._template_outcome(job, sent=False)

    async def _on_sent(
        self,
        job: Mapping[str, Any],
        account: str,
        token: str,
        attempts: int,
        result: Any,
        rcpt_reserved: float | None,
        text: str,
    ) -> None:
        now = utc(self.clock())
        sent_at = result.sent_at if result.sent_at.tzinfo else result.sent_at.replace(tzinfo=now.tzinfo)
        ok = await self.stores.jobs.settle(
            job["_id"],
            token,
            set_={
                "state": JobState.SENT.value,
                "reason": None,
                "last_error": None,
                "message_id": result.message_id,
                "peer_id": result.peer_id,
                "sent_at": sent_at,
                "account_id": account,
                "pinned": False,
                "updated_at": now,
                "duplicate_delivery": bool(result.duplicate),
            },
            history=[
                attempt(
                    now,
                    "sent",
                    account_id=account,
                    error="already delivered (tg-session record)" if result.duplicate else None,
                )
            ],
        )
        if not ok:
            log.warning("job %s was sent but its claim had moved on; the new holder records it", job["_id"])
            return
        self.metrics.sends.labels("sent").inc()
        private = result.chat_kind in (None, "private") and result.peer_id > 0
        peer = job["peer"]
        if isinstance(peer, str) and peer.startswith("@") and private:
            await self.stores.history.remember_user(result.peer_id, username=peer[1:], at=now)
        elif isinstance(peer, str) and peer.startswith("+") and private:
            await self.stores.history.remember_user(result.peer_id, phone=peer, at=now)
        # The conversation gets this message from tg-session's `message-sent` event (with the job id),
        # consumed durably: recording it here as well would double the database work of every send.
        await self.events.job_changed(
            job,
            JobState.SENT,
            JobState.IN_FLIGHT.value,
            account_id=account,
            message_id=result.message_id,
            attempts=attempts,
        )
        await self.events.emit(
            MessageSent(
                job_id=job["_id"],
                account_id=account,
                peer=peer,
                kind="group" if job.get("kind") == "group" or is_chat_peer(peer) else "private",
                message_id=result.message_id,
                lead_id=job.get("lead_id"),
                campaign_id=job.get("campaign_id"),
                template_id=(job.get("body") or {}).get("template_id"),
                sent_at=sent_at,
                text_preview=text[:200] or None,
            )
        )
        if job.get("lead_id"):
            await self._lead_contacted(job["lead_id"])
        await self._template_outcome(job, sent=True)

    async def _lead_contacted(self, lead_id: str) -> None:
        from tgm_contracts.events_campaign import LeadStageChanged
        from tgm_contracts.models.campaign import LeadStage

        now = utc(self.clock())
        if await self.stores.leads.contacted(lead_id, now):
            lead = await self.stores.leads.get(lead_id)
            await self.events.emit(
                LeadStageChanged(
                    lead_id=lead_id,
                    user_id=(lead or {}).get("user_id"),
                    from_stage=LeadStage.NEW,
                    to_stage=LeadStage.CONTACTED,
                    reason="message delivered",
                    by="system",
                )
            )

    async def _template_outcome(self, job: Mapping[str, Any], *, sent: bool) -> None:
        tid = (job.get("body") or {}).get("template_id")
        if tid:
            await self.stores.templates.outcome(tid, sent)

    async def _on_error(
        self,
        job: Mapping[str, Any],
        account: str,
        token: str,
        attempts: int,
        exc: DomainError,
        rcpt_reserved: float | None,
        limits: Limits,
        text: str,
    ) -> None:
        now_ts = self.clock()
        now = utc(now_ts)
        pacer = Pacer(limits, self.rng)
        fixed = bool(job.get("fixed"))
        tg = str((exc.details or {}).get("telegramError") or "") if isinstance(exc.details, dict) else ""
        code = exc.code
        error = f"{code.value}{': ' + tg if tg else ''}: {exc.message}"[:500]

        async def give_back() -> None:
            if rcpt_reserved is not None:
                await self._release_recipient(job["peer_key"], job["_id"])

        async def back(
            outcome: str,
            reason: JobReason,
            retry_at: float,
            *,
            unpin: bool,
            counted: bool,
            exclude: str | None = None,
            exclude_reason: JobReason | None = None,
        ) -> None:
            """Back to the queue: to another account of the pool when `unpin` and not fixed."""
            move = unpin and not fixed
            at = utc(max(retry_at, now_ts))
            set_: dict[str, Any] = {
                "state": JobState.SCHEDULED.value if retry_at > now_ts else JobState.PENDING.value,
                "reason": reason.value,
                "last_error": error,
                "not_before": at,
                "updated_at": now,
                "pinned": not unpin,
            }
            if move:
                set_["account_id"] = None
            update_inc = {} if counted else {"attempts": -1}
            ok = await self.stores.jobs.settle(
                job["_id"],
                token,
                set_=set_,
                history=[attempt(now, outcome, account_id=account, reason=reason, error=error, retry_at=at)],
                inc=update_inc,
            )
            if ok and exclude and move:
                extra = {"$set": {"exclude_reason": exclude_reason.value}} if exclude_reason else {}
                await self.stores.jobs.c.update_one(
                    {"_id": job["_id"]}, {"$addToSet": {"exclude": exclude}, **extra}
                )
            if ok:
                await self.events.job_changed(
                    job,
                    JobState(set_["state"]),
                    JobState.IN_FLIGHT.value,
                    reason=reason,
                    account_id=account,
                    retry_at=at,
                    error=error,
                    attempts=attempts - (0 if counted else 1),
                )
            self.events.wake()

        async def fail(reason: JobReason) -> None:
            ok = await self.stores.jobs.settle(
                job["_id"],
                token,
                set_={
                    "state": JobState.FAILED.value,
                    "reason": reason.value,
                    "last_error": error,
                    "updated_at": now,
                    "pinned": False,
                },
                history=[attempt(now, "failed", account_id=account, reason=reason, error=error)],
            )
            if ok:
                self.metrics.sends.labels("failed").inc()
                await self.events.job_changed(
                    job,
                    JobState.FAILED,
                    JobState.IN_FLIGHT.value,
                    reason=reason,
                    account_id=account,
                    error=error,
                    attempts=attempts,
                )
                await self._template_outcome(job, sent=False)

        if code is ErrorCode.FLOOD_WAIT or tg.startswith("FLOOD_WAIT") or tg.startswith("FLOOD_PREMIUM_WAIT"):
            seconds = float(exc.retry_after if exc.retry_after is not None else _tail_number(tg, 30))
            pace = await self._update_pace(account, lambda p: pacer.flood_wait(p, now_ts, seconds))
            until = pace.flood_until if pace else now_ts + seconds + limits.margin
            self.metrics.sends.labels("flood_wait").inc()
            await give_back()
            await self.events.emit(
                AccountPacingChanged(account_id=account, limit="flood_wait", until=utc(until))
            )
            await back(
                "flood_wait", JobReason.FLOOD_WAIT, now_ts if not fixed else until, unpin=True, counted=False
            )
            return
        if tg == "PEER_FLOOD":
            await self._update_pace(account, lambda p: pacer.peer_flood(p, now_ts))
            until = now_ts + limits.peer_flood_cooldown
            self.metrics.sends.labels("peer_flood").inc()
            self.directory.forget_pools()
            await give_back()
            await back(
                "peer_flood",
                JobReason.PEER_FLOOD,
                now_ts if not fixed else until,
                unpin=True,
                counted=False,
                exclude=account,
            )
            await self.events.emit(
                AccountPacingChanged(
                    account_id=account, limit="peer_flood", until=utc(until), moved_jobs=0 if fixed else 1
                )
            )
            return
        if tg.startswith("SLOWMODE_WAIT"):
            await give_back()
            await back(
                "requeued",
                JobReason.RATE_LIMIT,
                now_ts + _tail_number(tg, 60) + limits.margin,
                unpin=True,
                counted=False,
            )
            return
        if tg in ACCOUNT_SPECIFIC and not fixed:
            await give_back()
            await back(
                "failed",
                PERMANENT[tg],
                now_ts,
                unpin=True,
                counted=False,
                exclude=account,
                exclude_reason=PERMANENT[tg],
            )
            return
        if tg in PERMANENT:
            await give_back()
            await fail(PERMANENT[tg])
            return
        if code is ErrorCode.NOT_FOUND:
            await give_back()
            if not fixed and isinstance(job["peer"], int):
                # A numeric id is only reachable by accounts that met the user: try the others.
                await back(
                    "failed",
                    JobReason.PEER_INVALID,
                    now_ts,
                    unpin=True,
                    counted=False,
                    exclude=account,
                    exclude_reason=JobReason.PEER_INVALID,
                )
                return
            await fail(JobReason.PEER_INVALID)
            return
        if code is ErrorCode.VALIDATION_ERROR:
            await give_back()
            await fail(JobReason.INVALID_MESSAGE)
            return
        if code in (ErrorCode.UNAVAILABLE, ErrorCode.CONFLICT):
            # Nobody holds the account, or it is not active: certainly not sent.
            await give_back()
            self.directory.forget_pools()
            self.metrics.sends.labels("unavailable").inc()
            wait = min(60.0, 2.0 * 2 ** min(6, max(0, attempts - 1)))
            await back(
                "requeued",
                JobReason.ACCOUNT_UNAVAILABLE,
                now_ts + wait,
                unpin=True,
                counted=False,
                exclude=None,
            )
            return
        if code is ErrorCode.TELEGRAM_ERROR:
            # Telegram refused it (so it was not sent) for a reason that may pass.
            await give_back()
            self.metrics.sends.labels("retry").inc()
            if attempts >= job.get("max_attempts", 3):
                await fail(JobReason.ATTEMPTS_EXHAUSTED)
            else:
                await back(
                    "failed",
                    JobReason.RETRY_BACKOFF,
                    now_ts + pacer.backoff(attempts),
                    unpin=True,
                    counted=True,
                )
            return
        # TIMEOUT, INTERNAL, anything else: it may have been sent. Retry on the same account only.
        self.metrics.sends.labels("unknown").inc()
        if attempts >= job.get("max_attempts", 3):
            await fail(JobReason.ATTEMPTS_EXHAUSTED)
        else:
            await back(
                "failed",
                JobReason.RETRY_BACKOFF,
                now_ts + min(pacer.backoff(attempts), 30.0),
                unpin=False,
                counted=True,
            )

    async def flood_recorded(self, account: str, until: datetime) -> None:
        """tg-session recorded a FLOOD_WAIT on a send of this account (not necessarily ours)."""
        limits = await self.rules.limits()
        pacer = Pacer(limits, self.rng)
        now_ts = self.clock()
        seconds = epoch(until) - now_ts
        if seconds > 0:
            await self._update_pace(account, lambda p: pacer.flood_wait(p, now_ts, seconds))

    async def _update_pace(self, account: str, change: Any) -> AccountPace | None:
        def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
            return change(AccountPace.from_doc(account, doc)).to_doc()

        try:
            doc = await self.stores.pacing.mutate(acct_key(account), fn)
        except Contention:
            log.error("could not record a wait for account %s", account)
            return None
        return AccountPace.from_doc(account, doc)

    # --- chores (one replica) --------------------------------------------------------------------

    async def recover_own_claims(self) -> int:
        """Claims left by an earlier incarnation of this replica go back to the queue at once."""
        docs = await self.stores.jobs.claims_of(self.replica, self.owner)
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
            self.wake()
        return int(ok)

    async def chores(self) -> None:
        await self.release_expired()
        now = utc(self.clock())
        for job in await self.stores.jobs.expired_waiting(now):
            await self._skip_waiting(job, JobReason.EXPIRED, "not sent before expiresAt")
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
            self.wake()
        if self.progress is not None:
            await self.progress()


def rcpt_entries(doc: Mapping[str, Any] | None) -> list[list[Any]]:
    """A recipient's counted messages: [time, job id] pairs (job id None for untagged ones)."""
    doc = doc or {}
    out = [list(e) for e in doc.get("entries") or []]
    out += [[t, None] for t in doc.get("times") or []]
    return out


def others(entries: list[list[Any]], total: int, job_id: str) -> tuple[list[float], int]:
    """The recipient's window and total without this job's own earlier count."""
    own = sum(1 for e in entries if e[1] == job_id)
    return [e[0] for e in entries if e[1] != job_id], max(0, total - own)


def _tail_number(name: str, default: float) -> float:
    tail = name.rsplit("_", 1)[-1]
    return float(tail) if tail.isdigit() else default
