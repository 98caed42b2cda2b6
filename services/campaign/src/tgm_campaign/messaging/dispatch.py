"""Dispatch: one planned send, from the claim to the answer.

The job is rendered (once, with a generator fixed by its id, so a retry sends the same text), claimed
(a conditional update: only one replica can), the pacing windows are reserved (conditional updates
on shared documents, the fleet-wide ones before the account's, so a full fleet-wide window costs the
account nothing), and the account's `send` is called with the job id. The answer goes to `Outcomes`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.models.campaign import JobReason, JobState, LimitKind, TemplateVariable
from tgm_contracts.rpc_session import SendRequest, SendResult
from tgm_runtime import DomainError

from .clock import Clock, utc
from .job_events import JobEvents
from .metrics import Metrics
from .outcomes import Attempt, Outcomes
from .pacing import DAY, AccountPace, Limits, Pacer, rate_window, recipient_hold, reserve_window, window_hold
from .pacing_store import GLOBAL, Contention, Denied, acct_key, api_key, rcpt_key
from .planning import SHARED_MARGIN, Plan, Tracking, others, rcpt_entries
from .recipients import FactsUnknown, RecipientFacts, fill, missing_facts
from .rules import Rules
from .stores import MessagingStores
from .templates import (
    MAX_MESSAGE,
    MissingVariables,
    TemplateError,
    merge_values,
    parse,
    seeded,
)
from .templates import render as render_template

log = logging.getLogger("tgm.campaign.scheduler")

SEND_TIMEOUT = 30.0
CLAIM_TTL = 90.0

_PARSE_MODE = {"plain": "none", "markdown": "md", "html": "html"}

#: tg-session's `send` of one account: `(account id, request, timeout) -> result`.
SendCall = Callable[[str, SendRequest, float], Awaitable[SendResult]]


@dataclass
class DispatchSettings:
    """How this replica dispatches (from `CampaignSettings`; tests shorten `send_timeout`)."""

    replica: str
    #: One claim owner per process: a restarted replica recognises its predecessor's claims.
    owner: str
    send_timeout: float = SEND_TIMEOUT
    claim_ttl: float = CLAIM_TTL


class Dispatcher:
    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        rules: Rules,
        send_call: SendCall,
        metrics: Metrics,
        clock: Clock,
        tracking: Tracking,
        settings: DispatchSettings,
        rng: random.Random,
        outcomes: Outcomes,
        facts: RecipientFacts,
    ) -> None:
        self.stores = stores
        self.events = events
        self.rules = rules
        self.send_call = send_call
        self.metrics = metrics
        self.clock = clock
        self.tracking = tracking
        self.settings = settings
        self.rng = rng
        self.outcomes = outcomes
        self.facts = facts

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
            declared = [TemplateVariable.model_validate(v) for v in tpl.get("variables") or []]
        if source is None:
            return ""
        seq = parse(source)
        keys = job.get("peer_keys") or [job["peer_key"]]
        recipient = await self.facts.known(keys)
        limits = await self.rules.limits()
        local = utc(self.clock()).astimezone(Pacer(limits).zone(account))
        context = {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M")}
        variables = job.get("variables") or {}
        try:
            return render_template(
                seq, merge_values(declared, variables, recipient, context), seeded(job["_id"])
            )
        except MissingVariables as exc:
            if not missing_facts(exc.names):
                raise  # a value only the job can give: permanent
            needed = exc.names
        # A recipient fact the cached directory lacks: ask what else the product knows (`recipients.py`).
        more, asked = await self.facts.fresh(keys, needed)
        values = merge_values(declared, variables, fill(recipient, more), context)
        try:
            return render_template(seq, values, seeded(job["_id"]))
        except MissingVariables as exc:
            if missing_facts(exc.names):
                raise FactsUnknown(exc.names, asked=asked) from None
            raise

    async def dispatch(self, plan: Plan, limits: Limits) -> None:
        job, account = plan.job, plan.account
        text = job.get("text")
        if text is None:
            try:
                text = await self.render(job, account)
            except FactsUnknown as exc:
                await self.outcomes.wait_for_facts(job, str(exc), limits)
                return
            except (TemplateError, MissingVariables) as exc:
                await self.outcomes.fail_waiting(job, JobReason.TEMPLATE_ERROR, str(exc))
                return
            if len(text) > MAX_MESSAGE:
                await self.outcomes.fail_waiting(
                    job,
                    JobReason.INVALID_MESSAGE,
                    f"rendered text is {len(text)} characters (max {MAX_MESSAGE})",
                )
                return
            media = (job.get("body") or {}).get("attachment")
            if not text.strip() and not media:
                await self.outcomes.fail_waiting(job, JobReason.INVALID_MESSAGE, "rendered text is empty")
                return
        now_ts = self.clock()
        if not await self.stores.jobs.claim(
            job,
            owner=self.settings.owner,
            replica=self.settings.replica,
            token=plan.token,
            until=utc(now_ts + self.settings.claim_ttl),
            account_id=account,
            text=text,
            now=utc(now_ts),
        ):
            return  # another replica took it, or it changed (cancelled, paused…) since we read it
        try:
            await self._send_claimed(plan, limits, text)
        finally:
            if plan.reserved_at is not None:  # the outcome is known (or we gave up): the account is free
                await self._settle_pace(plan, limits)

    async def _send_claimed(self, plan: Plan, limits: Limits, text: str) -> None:
        job, account, token = plan.job, plan.account, plan.token
        rcpt_reserved: float | None = None
        try:
            rcpt_reserved = await self._reserve(plan, limits)
        except (Denied, Contention) as exc:
            log.debug("job %s: limits no longer allow it (%s)", job["_id"], exc)
            await self.stores.jobs.unclaim(job, token, text, utc(self.clock()))
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
        send = Attempt(job, account, token, attempts, rcpt_reserved, text)
        started = self.clock()
        try:
            result = await self.send_call(account, request, self.settings.send_timeout)
        except DomainError as exc:
            self.metrics.latency.observe(self.clock() - started)
            await self.outcomes.refused(send, exc, limits)
            return
        except Exception as exc:  # the transport broke: the outcome is unknown
            log.warning("send of job %s via %s raised %s", job["_id"], account, exc)
            err = DomainError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            await self.outcomes.refused(send, err, limits)
            return
        self.metrics.latency.observe(self.clock() - started)
        await self.outcomes.sent(send, result)

    async def _settle_pace(self, plan: Plan, limits: Limits) -> None:
        """The account's windows count the send from now, when its outcome is known (`Pacer.settled`),
        and the account is free again. One conditional write, like the marker's release it replaces
        when the document is contended."""
        at, done, pacer = plan.reserved_at or 0.0, self.clock(), Pacer(limits, self.rng)

        def settle(doc: dict[str, Any] | None) -> dict[str, Any]:
            pace = AccountPace.from_doc(plan.account, doc)
            return pacer.settled(pace, plan.target, at, done, plan.token).to_doc()

        try:
            await self.stores.pacing.mutate(acct_key(plan.account), settle)
        except Contention:
            log.warning("account %s: send counted from its reservation, not its outcome", plan.account)
            await self.stores.pacing.release_busy(acct_key(plan.account), plan.token)

    async def _reserve(self, plan: Plan, limits: Limits) -> float | None:
        """Spend the slots of every limit for this send, re-checking them against the stored state.
        Returns the time recorded in the recipient's window (to give it back if nothing is sent)."""
        now_ts = self.clock()
        pacer = Pacer(limits, self.rng)
        busy_for = self.settings.send_timeout + limits.margin

        def account(doc: dict[str, Any] | None) -> dict[str, Any]:
            pace = AccountPace.from_doc(plan.account, doc)
            holds = pacer.account_holds(pace, plan.profile, plan.target, now_ts)
            if holds:
                raise Denied(holds)
            return pacer.reserve(pace, plan.target, now_ts, busy_for=busy_for, token=plan.token).to_doc()

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
                    api_key(plan.profile.api_credential), _window(cap, win, limits, now_ts)
                )
            cap, win = rate_window(limits.global_per_second)
            await self.stores.pacing.mutate(GLOBAL, _window(cap, win, limits, now_ts))
            await self.stores.pacing.mutate(acct_key(plan.account), account)
            plan.reserved_at = now_ts
        except (Denied, Contention):
            if added:  # only what this attempt counted (an earlier attempt may have delivered)
                await self.outcomes.release_recipient(plan.target.chat, plan.job["_id"])
            raise
        return reserved


def _window(
    cap: int, win: float, limits: Limits, now_ts: float
) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
        times = list((doc or {}).get("times") or [])
        if window_hold(LimitKind.GLOBAL, times, cap, win, now_ts, SHARED_MARGIN) is not None:
            raise Denied("window full")
        return {"times": reserve_window(times, now_ts, win + limits.margin)}

    return fn
