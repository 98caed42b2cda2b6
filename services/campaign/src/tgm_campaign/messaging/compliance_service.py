"""Compliance, the use cases: `blacklist-user` (ban or lift, under every key known for the user)
and the opt-out a stop word in an inbound private message makes. Both skip the user's waiting jobs
at once; the scheduler checks every job again before its send (see `compliance.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from tgm_contracts.commands import crm as crm_cmd
from tgm_contracts.events_campaign import UserBlacklisted, UserOptedOut
from tgm_contracts.models.campaign import JobReason, JobState
from tgm_runtime.routes import answers

from .clock import Clock, utc
from .compliance import user_keys
from .job_events import JobEvents
from .store import attempt
from .stores import MessagingStores


class ComplianceService:
    def __init__(self, stores: MessagingStores, events: JobEvents, clock: Clock) -> None:
        self.stores, self.events, self.clock = stores, events, clock

    async def _cancel_to(self, keys: Sequence[str], reason: JobReason, why: str) -> int:
        now = utc(self.clock())
        moved = await self.stores.jobs.settle_many_waiting(
            {"peer_keys": {"$in": list(keys)}},
            {"state": JobState.SKIPPED.value, "reason": reason.value, "last_error": why, "updated_at": now},
            attempt(now, "skipped", reason=reason, error=why),
        )
        await self.events.each_changed(moved, JobState.SKIPPED, reason, why)
        return len(moved)

    @answers(crm_cmd.BlacklistUser, principal=True)
    async def blacklist(self, req: crm_cmd.BlacklistUserRequest, by: str | None) -> crm_cmd.BlacklistResult:
        now = utc(self.clock())
        base = user_keys(req.user_id, req.username)
        aliases = await self.stores.history.aliases(base)
        keys = list(dict.fromkeys(k for ks in aliases.values() for k in ks))
        user_id = req.user_id
        username = req.username
        if user_id is None or username is None:
            known = await self.stores.history.users(keys)
            for doc in known.values():
                user_id = user_id if user_id is not None else doc.get("user_id")
                username = username or doc.get("username")
        await self.stores.compliance.set_blacklisted(
            keys, req.blacklist, user_id=user_id, username=username, reason=req.reason, by=by, at=now
        )
        await self.stores.leads.mark_blacklisted(user_id, username, req.blacklist, now)
        cancelled = 0
        if req.blacklist:
            cancelled = await self._cancel_to(keys, JobReason.BLACKLISTED, req.reason or "user blacklisted")
        # The event tells what the answer tells (and who did it).
        outcome = {
            "user_id": user_id,
            "username": username,
            "blacklisted": req.blacklist,
            "reason": req.reason,
            "cancelled_jobs": cancelled,
        }
        await self.events.emit(UserBlacklisted(**outcome, by=by))
        return crm_cmd.BlacklistResult(**outcome, changed_at=now)

    async def opted_out(self, user_id: int, account_id: str, stop_word: str, keys: Sequence[str]) -> int:
        """A user wrote a stop word: no account will message them again."""
        now = utc(self.clock())
        new = await self.stores.compliance.opt_out(
            keys, user_id=user_id, account_id=account_id, stop_word=stop_word, at=now
        )
        if not new:
            return 0
        cancelled = await self._cancel_to(keys, JobReason.OPTED_OUT, f"the user wrote {stop_word!r}")
        await self.events.emit(
            UserOptedOut(
                user_id=user_id, account_id=account_id, stop_word=stop_word, cancelled_jobs=cancelled
            )
        )
        return cancelled
