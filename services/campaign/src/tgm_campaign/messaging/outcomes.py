"""Outcomes: what becomes of a job once its send was answered (or not), and of a job that leaves the
due set without a send (expired, blocked, held for long).

A refused or unanswered send is classified by one table (`RULES`, first match wins) into a
`Verdict`: back to the queue (now, after a wait, to another account of the pool or pinned to the same
one) or failed, with the reason recorded. The one question that decides the most is whether the
message may have gone out: only a timeout or an internal error leaves that open, and only then does
the job stay pinned to its account (where tg-session refuses to send a job id twice) and keep the
recipient's count; every other answer says it was not sent.

Every write goes through `JobStore`, conditional on the claim token (a settled claim is never settled
twice), and every transition is published as `job-state-changed`.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.events_campaign import AccountPacingChanged, LeadStageChanged, MessageSent
from tgm_contracts.models.campaign import JobReason, JobState, LeadStage, is_chat_peer
from tgm_contracts.rpc_session import SendResult
from tgm_runtime import DomainError

from .accounts import AccountDirectory
from .clock import Clock, epoch, utc
from .job_events import JobEvents
from .metrics import Metrics
from .pacing import AccountPace, Hold, Limits, Pacer
from .pacing_store import Contention, acct_key, rcpt_key
from .planning import Tracking, rcpt_entries, wait_reason
from .store import attempt
from .stores import MessagingStores

log = logging.getLogger("tgm.campaign.scheduler")

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


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One refused or unanswered send, as the table reads it."""

    code: ErrorCode
    telegram: str  # Telegram's error name ("" when tg-session gave none)
    fixed: bool  # the job names its account (no pool to move to)
    peer: Any
    attempts: int
    max_attempts: int

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.max_attempts


class Retry(enum.Enum):
    """When a job that goes back is due again."""

    NOW = "now"
    HOLD = "hold"  # a pool job at once (another account); a fixed one when its account's hold lifts
    SLOWMODE = "slowmode"  # the chat's slow mode (Telegram's number in the error) plus margin
    UNAVAILABLE = "unavailable"  # 2 s doubling per attempt, at most 60 s
    BACKOFF = "backoff"  # the pacing backoff of the attempt
    BACKOFF_SHORT = "backoff_short"  # the same, at most 30 s (the retry must reach the same account)


class Pace(enum.Enum):
    """What a refusal changes in the account's own pacing state."""

    FLOOD_WAIT = "flood_wait"
    PEER_FLOOD = "peer_flood"


@dataclass(frozen=True)
class Verdict:
    """What a failure leads to. `fail` settles the job `failed`; otherwise it goes back to the queue
    with `history` as the attempt's outcome. `not_sent` (everything but an unknown outcome) gives the
    recipient's count back."""

    reason: JobReason
    fail: bool = False
    history: str = "failed"
    retry: Retry = Retry.NOW
    unpin: bool = True
    counted: bool = False  # the attempt counts against `max_attempts`
    exclude: bool = False  # a pool job leaves this account out from now on
    exclude_reason: bool = False  # ... and fails with `reason` once every account refused it
    not_sent: bool = True
    forget_pools: bool = False  # the account's standing changed: read the pools again
    metric: str | None = None
    pace: Pace | None = None


def _fail(reason: JobReason) -> Verdict:
    return Verdict(reason, fail=True)


def _retry_or_exhausted(verdict: Verdict) -> Callable[[Failure], Verdict]:
    def decide(f: Failure) -> Verdict:
        if f.exhausted:
            return Verdict(
                JobReason.ATTEMPTS_EXHAUSTED, fail=True, not_sent=verdict.not_sent, metric=verdict.metric
            )
        return verdict

    return decide


def _is_flood_wait(f: Failure) -> bool:
    return (
        f.code is ErrorCode.FLOOD_WAIT
        or f.telegram.startswith("FLOOD_WAIT")
        or f.telegram.startswith("FLOOD_PREMIUM_WAIT")
    )


def _peer_not_found(f: Failure) -> Verdict:
    if not f.fixed and isinstance(f.peer, int):
        # A numeric id is only reachable by accounts that met the user: try the others.
        return Verdict(JobReason.PEER_INVALID, exclude=True, exclude_reason=True)
    return _fail(JobReason.PEER_INVALID)


#: (does it apply, what it leads to), first match wins.
RULES: list[tuple[Callable[[Failure], bool], Callable[[Failure], Verdict]]] = [
    (
        _is_flood_wait,
        lambda f: Verdict(
            JobReason.FLOOD_WAIT,
            history="flood_wait",
            retry=Retry.HOLD,
            metric="flood_wait",
            pace=Pace.FLOOD_WAIT,
        ),
    ),
    (
        lambda f: f.telegram == "PEER_FLOOD",
        lambda f: Verdict(
            JobReason.PEER_FLOOD,
            history="peer_flood",
            retry=Retry.HOLD,
            exclude=True,
            forget_pools=True,
            metric="peer_flood",
            pace=Pace.PEER_FLOOD,
        ),
    ),
    (
        lambda f: f.telegram.startswith("SLOWMODE_WAIT"),
        lambda f: Verdict(JobReason.RATE_LIMIT, history="requeued", retry=Retry.SLOWMODE),
    ),
    (
        lambda f: f.telegram in ACCOUNT_SPECIFIC and not f.fixed,
        lambda f: Verdict(PERMANENT[f.telegram], exclude=True, exclude_reason=True),
    ),
    (lambda f: f.telegram in PERMANENT, lambda f: _fail(PERMANENT[f.telegram])),
    (lambda f: f.code is ErrorCode.NOT_FOUND, _peer_not_found),
    (lambda f: f.code is ErrorCode.VALIDATION_ERROR, lambda f: _fail(JobReason.INVALID_MESSAGE)),
    (
        # Nobody holds the account, or it is not active: certainly not sent.
        lambda f: f.code in (ErrorCode.UNAVAILABLE, ErrorCode.CONFLICT),
        lambda f: Verdict(
            JobReason.ACCOUNT_UNAVAILABLE,
            history="requeued",
            retry=Retry.UNAVAILABLE,
            forget_pools=True,
            metric="unavailable",
        ),
    ),
    (
        # Telegram refused it (so it was not sent) for a reason that may pass.
        lambda f: f.code is ErrorCode.TELEGRAM_ERROR,
        _retry_or_exhausted(
            Verdict(JobReason.RETRY_BACKOFF, retry=Retry.BACKOFF, counted=True, metric="retry")
        ),
    ),
    (
        # TIMEOUT, INTERNAL, anything else: it may have been sent. Retry on the same account only.
        lambda f: True,
        _retry_or_exhausted(
            Verdict(
                JobReason.RETRY_BACKOFF,
                retry=Retry.BACKOFF_SHORT,
                unpin=False,
                counted=True,
                not_sent=False,
                metric="unknown",
            )
        ),
    ),
]


def held_text(hold: Hold, at: datetime) -> str:
    """What holds a rescheduled job, in words (`lastError` of a waiting job): the limit, its use and
    cap where known, and when it lifts."""
    used = f" ({hold.used}/{hold.cap})" if hold.used is not None and hold.cap is not None else ""
    detail = f": {hold.detail}" if hold.detail else ""
    return f"held by {hold.kind.value}{used}{detail}; next try at {at.isoformat()}"


def verdict_of(failure: Failure) -> Verdict:
    return next(decide(failure) for applies, decide in RULES if applies(failure))


def tail_number(name: str, default: float) -> float:
    tail = name.rsplit("_", 1)[-1]
    return float(tail) if tail.isdigit() else default


# --- applying outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One claimed send: the job as read, the account, the claim token, the attempt's number."""

    job: Mapping[str, Any]
    account: str
    token: str
    attempts: int
    rcpt_reserved: float | None  # the time counted in the recipient's window, if it was
    text: str


class Outcomes:
    """Settles jobs (through `JobStore`, conditional on the claim) and tells what happened."""

    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        directory: AccountDirectory,
        metrics: Metrics,
        clock: Clock,
        tracking: Tracking,
        rng: random.Random,
    ) -> None:
        self.stores = stores
        self.events = events
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.tracking = tracking
        self.rng = rng

    # --- jobs that leave the due set without a send ------------------------------------------------

    async def skip_waiting(self, job: Mapping[str, Any], reason: JobReason, error: str | None) -> None:
        self.tracking.gone.add(job["_id"])
        now = utc(self.clock())
        ok = await self.stores.jobs.update_waiting(
            job,
            {"state": JobState.SKIPPED.value, "reason": reason.value, "last_error": error, "updated_at": now},
            [attempt(now, "skipped", reason=reason, error=error)],
        )
        if ok:
            self.metrics.sends.labels("skipped").inc()
            await self.events.job_changed(job, JobState.SKIPPED, job["state"], reason=reason, error=error)

    async def fail_waiting(self, job: Mapping[str, Any], reason: JobReason, error: str) -> None:
        self.tracking.gone.add(job["_id"])
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

    async def wait_for_facts(self, job: Mapping[str, Any], error: str, limits: Limits) -> None:
        """A template needs a recipient fact nobody knows yet (`recipients.FactsUnknown`): the job
        waits (reason `missing_variable`) and is tried again after the pacing backoff of its try,
        or at once when the user writes (`replan.py`); it fails only by expiring or being cancelled."""
        self.tracking.gone.add(job["_id"])
        now_ts = self.clock()
        tries = int(job.get("fact_tries") or 0) + 1
        at = utc(now_ts + Pacer(limits, self.rng).backoff(tries))
        reason = JobReason.MISSING_VARIABLE
        text = f"{error}; next try at {at.isoformat()}"
        ok = await self.stores.jobs.update_waiting(
            job,
            {
                "state": JobState.SCHEDULED.value,
                "reason": reason.value,
                "not_before": at,
                "held_by": reason.value,
                "fact_tries": tries,
                "last_error": text,
                "updated_at": utc(now_ts),
            },
            [attempt(utc(now_ts), "requeued", reason=reason, error=error, retry_at=at)] if tries == 1 else [],
        )
        if ok:
            await self.events.job_changed(
                job, JobState.SCHEDULED, job["state"], reason=reason, retry_at=at, error=text
            )

    async def reschedule(
        self, job: Mapping[str, Any], until: float | None, reason: JobReason, hold: Hold | None = None
    ) -> None:
        """Move a job that must wait a while out of the due set (it comes back at `until`)."""
        self.tracking.gone.add(job["_id"])
        now_ts = self.clock()
        at = utc(until if until is not None else now_ts + 3600)
        if (
            job["state"] == JobState.SCHEDULED.value
            and job.get("reason") == reason.value
            and job["not_before"] >= at
        ):
            return
        fields: dict[str, Any] = {
            "state": JobState.SCHEDULED.value,
            "reason": reason.value,
            "not_before": at,
            "updated_at": utc(now_ts),
        }
        if hold is not None:
            fields["last_error"] = held_text(hold, at)
            # The limit that holds it, so a change of that limit plans it again (`replan.py`).
            fields["held_by"] = hold.kind.value
        ok = await self.stores.jobs.update_waiting(job, fields)
        if ok and job["state"] != JobState.SCHEDULED.value:
            await self.events.job_changed(job, JobState.SCHEDULED, job["state"], reason=reason, retry_at=at)

    async def reschedule_account(self, account: str, hold: Hold, until: float) -> None:
        """An account held for long (flood wait, cool-down, hourly cap): its fixed jobs say why and
        leave the due set until then."""
        now = utc(self.clock())
        at = utc(until if until < math.inf else self.clock() + 3600)
        reason = wait_reason(hold.kind)
        for job in await self.stores.jobs.fixed_waiting_before(account, at):
            if job["_id"] in self.tracking.active:
                continue
            if await self.stores.jobs.update_waiting(
                job,
                {
                    "state": JobState.SCHEDULED.value,
                    "reason": reason.value,
                    "not_before": at,
                    "updated_at": now,
                    "last_error": held_text(hold, at),
                    "held_by": hold.kind.value,
                },
            ):
                await self.events.job_changed(
                    job, JobState.SCHEDULED, job["state"], reason=reason, retry_at=at
                )

    # --- a send answered -----------------------------------------------------------------------------

    async def sent(self, send: Attempt, result: SendResult) -> None:
        job, account = send.job, send.account
        now = utc(self.clock())
        sent_at = result.sent_at if result.sent_at.tzinfo else result.sent_at.replace(tzinfo=now.tzinfo)
        ok = await self.stores.jobs.settle(
            job["_id"],
            send.token,
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
            attempts=send.attempts,
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
                text_preview=send.text[:200] or None,
            )
        )
        if job.get("lead_id"):
            await self._lead_contacted(job["lead_id"])
        await self._template_outcome(job, sent=True)

    async def _lead_contacted(self, lead_id: str) -> None:
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

    # --- a send refused, or not answered ------------------------------------------------------------

    async def refused(self, send: Attempt, exc: DomainError, limits: Limits) -> None:
        job, account = send.job, send.account
        now_ts = self.clock()
        fixed = bool(job.get("fixed"))
        tg = str((exc.details or {}).get("telegramError") or "") if isinstance(exc.details, dict) else ""
        error = f"{exc.code.value}{': ' + tg if tg else ''}: {exc.message}"[:500]
        failure = Failure(exc.code, tg, fixed, job["peer"], send.attempts, job.get("max_attempts", 3))
        verdict = verdict_of(failure)
        pacer = Pacer(limits, self.rng)
        until: float | None = None
        if verdict.pace is Pace.FLOOD_WAIT:
            seconds = float(exc.retry_after if exc.retry_after is not None else tail_number(tg, 30))
            pace = await self.update_pace(account, lambda p: pacer.flood_wait(p, now_ts, seconds))
            until = pace.flood_until if pace else now_ts + seconds + limits.margin
        elif verdict.pace is Pace.PEER_FLOOD:
            await self.update_pace(account, lambda p: pacer.peer_flood(p, now_ts))
            until = now_ts + limits.peer_flood_cooldown
        if verdict.metric is not None:
            self.metrics.sends.labels(verdict.metric).inc()
        if verdict.forget_pools:
            self.directory.forget_pools()
        if verdict.not_sent and send.rcpt_reserved is not None:
            await self.release_recipient(job["peer_key"], job["_id"])
        if verdict.pace is Pace.FLOOD_WAIT and until is not None:
            await self.events.emit(
                AccountPacingChanged(account_id=account, limit="flood_wait", until=utc(until))
            )
        if verdict.fail:
            await self._settle_failed(send, verdict.reason, error, now_ts)
            return
        retry_at = {
            Retry.NOW: now_ts,
            Retry.HOLD: now_ts if not fixed or until is None else until,
            Retry.SLOWMODE: now_ts + tail_number(tg, 60) + limits.margin,
            Retry.UNAVAILABLE: now_ts + min(60.0, 2.0 * 2 ** min(6, max(0, send.attempts - 1))),
            Retry.BACKOFF: now_ts + pacer.backoff(send.attempts),
            Retry.BACKOFF_SHORT: now_ts + min(pacer.backoff(send.attempts), 30.0),
        }[verdict.retry]
        await self._settle_back(send, verdict, retry_at, error, now_ts, fixed)
        if verdict.pace is Pace.PEER_FLOOD and until is not None:
            await self.events.emit(
                AccountPacingChanged(
                    account_id=account, limit="peer_flood", until=utc(until), moved_jobs=0 if fixed else 1
                )
            )

    async def _settle_back(
        self, send: Attempt, verdict: Verdict, retry_at: float, error: str, now_ts: float, fixed: bool
    ) -> None:
        """Back to the queue: to another account of the pool when `unpin` and not fixed."""
        job, account, reason = send.job, send.account, verdict.reason
        move = verdict.unpin and not fixed
        now = utc(now_ts)
        at = utc(max(retry_at, now_ts))
        set_: dict[str, Any] = {
            "state": JobState.SCHEDULED.value if retry_at > now_ts else JobState.PENDING.value,
            "reason": reason.value,
            "last_error": error,
            "not_before": at,
            "updated_at": now,
            "pinned": not verdict.unpin,
        }
        if move:
            set_["account_id"] = None
        ok = await self.stores.jobs.settle(
            job["_id"],
            send.token,
            set_=set_,
            history=[
                attempt(now, verdict.history, account_id=account, reason=reason, error=error, retry_at=at)
            ],
            inc={} if verdict.counted else {"attempts": -1},
        )
        if ok and verdict.exclude and move:
            await self.stores.jobs.exclude_account(
                job["_id"], account, reason if verdict.exclude_reason else None
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
                attempts=send.attempts - (0 if verdict.counted else 1),
            )
        self.events.wake()

    async def _settle_failed(self, send: Attempt, reason: JobReason, error: str, now_ts: float) -> None:
        job, account = send.job, send.account
        now = utc(now_ts)
        ok = await self.stores.jobs.settle(
            job["_id"],
            send.token,
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
                attempts=send.attempts,
            )
            await self._template_outcome(job, sent=False)

    async def release_recipient(self, chat: str, job_id: str) -> None:
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

    # --- the account's own pacing state ------------------------------------------------------------

    async def flood_recorded(self, account: str, until: datetime, limits: Limits) -> None:
        """tg-session recorded a FLOOD_WAIT on a send of this account (not necessarily ours)."""
        pacer = Pacer(limits, self.rng)
        now_ts = self.clock()
        seconds = epoch(until) - now_ts
        if seconds > 0:
            await self.update_pace(account, lambda p: pacer.flood_wait(p, now_ts, seconds))

    async def update_pace(
        self, account: str, change: Callable[[AccountPace], AccountPace]
    ) -> AccountPace | None:
        def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
            return change(AccountPace.from_doc(account, doc)).to_doc()

        try:
            doc = await self.stores.pacing.mutate(acct_key(account), fn)
        except Contention:
            log.error("could not record a wait for account %s", account)
            return None
        return AccountPace.from_doc(account, doc)
