"""Planning a round: which due job goes to which account now, and why the others wait.

Pure code over what the round read (the accounts' pacing state, the pools, the shared windows, who
talks to whom, who is blocked) and the `Pacer`: no database, no clock, no randomness of its own. It
returns the round's decisions in queue order — sends (`Plan`) and the jobs that leave the due set
(skipped, failed, rescheduled) — which the scheduler then carries out. Slots a planned send will use
are spent on the round's copy of the state at once, so the next jobs of the same round see them.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tgm_contracts.models.campaign import JobReason, LimitKind

from .compliance import reason_of
from .pacing import (
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
from .pacing_store import GLOBAL, api_key, rcpt_key
from .pause_store import Pauses

#: A fixed job held longer than this is rescheduled, with the reason (it leaves the due set).
LONG_WAIT = 60.0
#: The fleet-wide and per-credential ceilings are our own per-second rates, not Telegram's windows:
#: the safety margin (meant for clock skew against Telegram's minute and day windows) would halve them.
SHARED_MARGIN = 0.0

_WAIT_REASON = {
    LimitKind.FLOOD_WAIT: JobReason.FLOOD_WAIT,
    LimitKind.PEER_FLOOD: JobReason.PEER_FLOOD,
    LimitKind.QUIET_HOURS: JobReason.QUIET_HOURS,
    LimitKind.RECIPIENT_CAP: JobReason.RECIPIENT_CAP,
}


def wait_reason(kind: LimitKind) -> JobReason:
    return _WAIT_REASON.get(kind, JobReason.RATE_LIMIT)


def dominant(holds: list[Hold]) -> Hold:
    """The hold that lifts last (None counts as never) — the one worth reporting."""
    return max(holds, key=lambda h: math.inf if h.until is None else h.until)


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


def is_fixed(job: Mapping[str, Any]) -> bool:
    """The job names its account (given, or pinned after an attempt whose outcome is unknown)."""
    return bool(job.get("fixed") or job.get("pinned"))


def member_of(job: Mapping[str, Any]) -> int | None:
    peer = job.get("peer")
    return peer if job.get("kind") == "group" and isinstance(peer, int) else None


def pool_key(job: Mapping[str, Any]) -> str:
    return repr((sorted((job.get("pool") or {}).items(), key=lambda kv: kv[0]), member_of(job)))


@dataclass
class Tracking:
    """What this replica is doing with jobs right now (shared by the scheduler's parts)."""

    #: Jobs being dispatched here.
    active: set[str] = field(default_factory=set)
    #: Sends of this replica in flight, per account.
    busy: Counter[str] = field(default_factory=Counter)
    #: Due jobs this replica moved since the due set was read.
    gone: set[str] = field(default_factory=set)


@dataclass
class Plan:
    job: dict[str, Any]
    account: str
    target: Target
    profile: AccountProfile | None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    reserved_at: float | None = None  # when the account's windows counted this send, once they did


@dataclass
class RoundView:
    """What a round saw, for status and metrics."""

    waiting_by_limit: Counter[str] = field(default_factory=Counter)
    account_holds: dict[str, list[Hold]] = field(default_factory=dict)


@dataclass
class Seen:
    """What a round read, in the shapes planning needs."""

    now_ts: float
    now: datetime
    limits: Limits
    pauses: Pauses
    paces: dict[str, AccountPace]
    held: dict[str, float]  # accounts that can send nothing now -> when that lifts
    pools: dict[str, list[str]]  # pool key -> usable accounts, in tg-session's order
    accounts: set[str]  # every account a job of the round may use
    profiles: Mapping[str, AccountProfile]
    aliases: Mapping[str, list[str]]
    blocked: Mapping[str, Mapping[str, Any]]
    talking: Mapping[str, set[str]]
    windows: dict[str, list[float]]  # shared windows: GLOBAL, per API credential
    entries: dict[str, list[list[Any]]]  # per recipient: [time, job id]
    totals: dict[str, int]  # per recipient: messages ever


@dataclass(frozen=True)
class Skip:
    job: dict[str, Any]
    reason: JobReason
    error: str | None


@dataclass(frozen=True)
class Fail:
    job: dict[str, Any]
    reason: JobReason
    error: str


@dataclass(frozen=True)
class Reschedule:
    job: dict[str, Any]
    until: float | None
    reason: JobReason
    hold: Hold | None = None


Decision = Plan | Skip | Fail | Reschedule


@dataclass
class RoundPlan:
    decisions: list[Decision] = field(default_factory=list)
    view: RoundView = field(default_factory=RoundView)
    #: Limits that held a job back this round (one per job, the dominant one).
    held_by: list[str] = field(default_factory=list)
    next_at: float = math.inf

    @property
    def plans(self) -> list[Plan]:
        return [d for d in self.decisions if isinstance(d, Plan)]


def order_accounts(
    candidates: list[str],
    talkers: set[str],
    job: Mapping[str, Any],
    paces: Mapping[str, AccountPace],
    now: float,
    rng: random.Random,
) -> list[str]:
    """Pool accounts in the order to try: those the user talks to first, then by the strategy."""
    strategy = (job.get("pool") or {}).get("strategy") or "health_first"
    if strategy == "random":
        rest = list(candidates)
        rng.shuffle(rest)
    elif strategy == "round_robin":  # least recently used first
        rest = sorted(candidates, key=lambda a: max(paces[a].sends, default=0.0))
    else:  # least used in the last hour (health_first, least_used); tg-session's order breaks ties
        rank = {a: i for i, a in enumerate(candidates)}
        rest = sorted(candidates, key=lambda a: (len(prune(paces[a].sends, now, 3600)), rank[a]))
    return [a for a in rest if a in talkers] + [a for a in rest if a not in talkers]


class RoundPlanner:
    """Plans one round over `seen` (whose windows it spends as it plans)."""

    def __init__(
        self, seen: Seen, view: RoundView, busy: Mapping[str, int], rng: random.Random, clock_now: float
    ) -> None:
        self.seen = seen
        self.busy = busy
        self.rng = rng
        self.pacer = Pacer(seen.limits, rng)
        self.result = RoundPlan(view=view, next_at=min(seen.held.values(), default=math.inf))
        self.planned: Counter[str] = Counter()
        self._clock_now = clock_now  # for the pool order's "last hour"
        self._g = rate_window(seen.limits.global_per_second)
        self._a = rate_window(seen.limits.per_api_per_second)

    def plan(self, jobs: list[dict[str, Any]]) -> RoundPlan:
        for job in jobs:
            decision = self._decide(job)
            if decision is not None:
                self.result.decisions.append(decision)
                if isinstance(decision, Plan):
                    self._spend(decision)
        return self.result

    def _decide(self, job: dict[str, Any]) -> Decision | None:
        seen, view = self.seen, self.result.view
        keys = [k for pk in job.get("peer_keys") or [job["peer_key"]] for k in seen.aliases.get(pk, [pk])]
        expires = job.get("expires_at")
        if expires is not None and expires <= seen.now:
            return Skip(job, JobReason.EXPIRED, "not sent before expiresAt")
        if seen.pauses.covers(job):
            return None
        bad = next((seen.blocked[k] for k in keys if k in seen.blocked), None)
        if bad is not None:
            return Skip(job, JobReason(reason_of(bad)), None)
        private = job.get("kind", "private") == "private"
        if private:
            rkey = rcpt_key(job["peer_key"])
            times, total = others(seen.entries.get(rkey, []), seen.totals.get(rkey, 0), job["_id"])
            rh = recipient_hold(times, total, seen.limits, seen.now_ts)
            if rh is not None:
                view.waiting_by_limit[rh.kind.value] += 1
                if rh.until is None:
                    return Skip(
                        job, JobReason.RECIPIENT_CAP, f"{rh.used} messages sent to this user (cap {rh.cap})"
                    )
                return Reschedule(job, rh.until, JobReason.RECIPIENT_CAP, rh)
        fixed = is_fixed(job)
        if fixed:
            candidates = [job["account_id"]] if job["account_id"] not in seen.pauses.accounts else []
        else:
            excluded = set(job.get("exclude") or [])
            members = seen.pools.get(pool_key(job), [])
            candidates = [a for a in members if a not in excluded and a in seen.accounts]
            if members and excluded and not candidates and job.get("exclude_reason"):
                # Every usable account of the pool was refused in this chat: it cannot be sent.
                return Fail(job, JobReason(job["exclude_reason"]), job.get("last_error") or "")
        if not candidates:  # no usable account (pool empty, or the fixed one is paused)
            view.waiting_by_limit["no_account"] += 1
            return None
        talkers = set().union(*(seen.talking.get(k, set()) for k in keys)) if keys else set()
        # Accounts the recipient wrote to since the job was held (`replan.py`): known at once,
        # whatever this replica's cached view of the conversations says.
        talkers |= set(job.get("wrote_to") or [])
        best, soonest, soonest_holds = self._choose(job, candidates, talkers, private)
        if best is not None:
            return best
        if not soonest_holds:
            return None
        top = dominant(soonest_holds)
        view.waiting_by_limit[top.kind.value] += 1
        self.result.held_by.append(top.kind.value)
        self.result.next_at = min(self.result.next_at, soonest)
        if fixed and soonest - seen.now_ts >= LONG_WAIT:
            return Reschedule(job, None if soonest == math.inf else soonest, wait_reason(top.kind), top)
        return None

    def _choose(
        self, job: dict[str, Any], candidates: list[str], talkers: set[str], private: bool
    ) -> tuple[Plan | None, float, list[Hold]]:
        """The first account every limit allows now; else when the soonest one will, and why not now."""
        now_ts, limits = self.seen.now_ts, self.seen.limits
        soonest = math.inf
        soonest_holds: list[Hold] = []
        # The accounts the user talks to come first, and while one of them will be free soon the
        # job waits for it: another account would be a stranger writing cold (the non-contact cap)
        # and may not even know how to reach the user.
        talking_here = [a for a in candidates if a in talkers] if private else []
        tiers = (
            [talking_here, [a for a in candidates if a not in talking_here]] if talking_here else [candidates]
        )
        for tier, tier_accounts in enumerate(tiers):
            for acct in order_accounts(
                tier_accounts, talkers, job, self.seen.paces, self._clock_now, self.rng
            ):
                # One send at a time per account: the others wait for its outcome (a FLOOD_WAIT
                # then holds them all, as it should).
                if self.busy.get(acct, 0) + self.planned[acct] >= limits.max_in_flight:
                    if now_ts + 1.0 < soonest:
                        soonest, soonest_holds = (
                            now_ts + 1.0,
                            [Hold(LimitKind.JITTER, now_ts + 1.0, detail="busy")],
                        )
                    continue
                holds, target, profile = self._evaluate(job, acct, private, talkers)
                if not holds:
                    return Plan(job, acct, target, profile), soonest, soonest_holds
                at = earliest(holds, now_ts)
                at = math.inf if at is None else at
                if at < soonest or not soonest_holds:
                    soonest, soonest_holds = at, holds
            if tier == 0 and len(tiers) > 1 and soonest - now_ts < LONG_WAIT:
                break
        return None, soonest, soonest_holds

    def _evaluate(
        self, job: Mapping[str, Any], acct: str, private: bool, talkers: set[str]
    ) -> tuple[list[Hold], Target, AccountProfile | None]:
        seen, now_ts = self.seen, self.seen.now_ts
        target = Target(
            "private" if private else "group",
            job["peer_key"],
            # A direct message counts as a first contact unless the user has written to the account
            # since it was queued.
            non_contact=private
            and acct not in (job.get("wrote_to") or ())
            and (bool(job.get("direct")) or acct not in talkers),
            urgent=job.get("priority") == "urgent",
        )
        profile = seen.profiles.get(acct)
        holds = self.pacer.account_holds(seen.paces[acct], profile, target, now_ts)
        if profile is not None and profile.api_credential:
            a_cap, a_win = self._a
            h = window_hold(
                LimitKind.API_CREDENTIAL,
                seen.windows.get(api_key(profile.api_credential), []),
                a_cap,
                a_win,
                now_ts,
                SHARED_MARGIN,
            )
            if h is not None:
                holds.append(h)
        g_cap, g_win = self._g
        h = window_hold(LimitKind.GLOBAL, seen.windows.get(GLOBAL, []), g_cap, g_win, now_ts, SHARED_MARGIN)
        if h is not None:
            holds.append(h)
        return holds, target, profile

    def _spend(self, best: Plan) -> None:
        """Spend the slots locally so the next jobs of this round see them."""
        seen, now_ts, margin = self.seen, self.seen.now_ts, self.seen.limits.margin
        job = best.job
        seen.paces[best.account] = self.pacer.reserve(seen.paces[best.account], best.target, now_ts)
        seen.windows[GLOBAL] = reserve_window(seen.windows.get(GLOBAL, []), now_ts, self._g[1] + margin)
        if best.profile is not None and best.profile.api_credential:
            k = api_key(best.profile.api_credential)
            seen.windows[k] = reserve_window(seen.windows.get(k, []), now_ts, self._a[1] + margin)
        rkey = rcpt_key(job["peer_key"])
        if best.target.kind == "private" and not any(e[1] == job["_id"] for e in seen.entries.get(rkey, [])):
            seen.entries.setdefault(rkey, []).append([now_ts, job["_id"]])
            seen.totals[rkey] = seen.totals.get(rkey, 0) + 1
        self.planned[best.account] += 1
