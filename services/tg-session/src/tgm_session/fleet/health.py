"""The account health state machine (ARCHITECTURE.md section 6), evented on every change.

FLOOD_WAIT is data: the wait is recorded per method category (`flood_waits.<category>`), the
account moves to `flood_wait` until the latest wait ends, an event is published and the caller gets a
`FLOOD_WAIT` error with `retry_after`. Nothing sleeps. `SLOWMODE_WAIT_X` is the chat's wait, not
the account's: nothing is recorded, the caller gets TELEGRAM_ERROR with the name and `retry_after`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta

from tgm_contracts import ErrorCode
from tgm_contracts.base import utcnow
from tgm_contracts.events_session import AccountStatusChanged, FloodWaitRecorded
from tgm_contracts.models.session import AccountState
from tgm_runtime import DomainError

from ..capabilities import Emit
from ..metrics import SessionMetrics
from ..ports import PeerNotFound, TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos

log = logging.getLogger("tgm.session.health")

#: States whose accounts a replica keeps connected (and so holds a lease for).
HOLDABLE = [
    AccountState.ACTIVE,
    AccountState.FLOOD_WAIT,
    AccountState.PEER_FLOOD,
    AccountState.FROZEN,
    AccountState.DISCONNECTED,
    AccountState.PROXY_ERROR,
]
#: States that end the connection: the session cannot (or may not) be used any more.
TERMINAL = {AccountState.UNAUTHORIZED, AccountState.BANNED}

#: Telegram method -> flood-wait category (what campaign's pacing keys on).
CATEGORIES = {
    "messages.sendMessage": "send",
    "messages.sendMedia": "send",
    "messages.forwardMessages": "send",
    "channels.joinChannel": "join",
    "messages.importChatInvite": "join",
    "messages.checkChatInvite": "join",
    "contacts.resolveUsername": "resolve",
    "resolve": "resolve",
    "contacts.search": "search",
    "channels.getParticipants": "members",
    "messages.getFullChat": "members",
    "messages.getHistory": "history",
    "auth.sendCode": "login",
    "auth.signIn": "login",
    "auth.checkPassword": "login",
    "auth.resendCode": "login",
    "auth.exportLoginToken": "login",
    "channels.createChannel": "create",
    "messages.createChat": "create",
    "channels.inviteToChannel": "invite",
    "account.updateProfile": "profile",
    "account.updateUsername": "profile",
}


def category_of(method: str, default: str = "other") -> str:
    return CATEGORIES.get(method, default)


def telegram_error(failure: TelegramFailure, what: str = "") -> DomainError:
    return DomainError(
        ErrorCode.TELEGRAM_ERROR,
        f"Telegram refused {what or failure.method or 'the call'}: {failure.full}",
        {"telegramError": failure.full, "method": failure.method or None},
    )


@dataclass(eq=False)
class Health:
    repos: Repos
    emit: Emit
    metrics: SessionMetrics
    replica_id: str
    _: KW_ONLY
    peer_flood_cooldown: timedelta = timedelta(hours=24)
    on_terminal: Callable[[str], Awaitable[None]] | None = None
    clock: Callable[[], datetime] = utcnow

    async def transition(
        self,
        account: Doc | str,
        state: AccountState,
        reason: str | None = None,
        *,
        flood_until: datetime | None = None,
        cooldown_until: datetime | None = None,
        extra: Doc | None = None,
    ) -> Doc | None:
        doc = account if isinstance(account, dict) else await self.repos.accounts.get(account)
        if doc is None:
            return None
        previous = AccountState(doc["state"])
        fields: Doc = dict(extra or {})
        changed = (
            previous is not state
            or (state is AccountState.FLOOD_WAIT and flood_until != doc.get("flood_wait_until"))
            or (state is AccountState.PEER_FLOOD and cooldown_until != doc.get("cooldown_until"))
        )
        if changed:
            fields.update(
                state=state.value,
                state_reason=reason,
                state_changed_at=self.clock(),
                flood_wait_until=flood_until if state is AccountState.FLOOD_WAIT else None,
                cooldown_until=cooldown_until if state is AccountState.PEER_FLOOD else None,
            )
        if not fields:
            return doc
        updated = await self.repos.accounts.set(doc["_id"], fields)
        if changed and updated is not None:
            self.metrics.state_changes.labels(state.value).inc()
            await self.emit(
                AccountStatusChanged(
                    account_id=doc["_id"],
                    phone=doc.get("phone"),
                    state=state,
                    previous_state=previous,
                    reason=reason,
                    flood_wait_until=fields.get("flood_wait_until"),
                    cooldown_until=fields.get("cooldown_until"),
                    holder=self.replica_id,
                    state_at=fields["state_changed_at"],
                )
            )
            if state in TERMINAL and self.on_terminal is not None:
                await self.on_terminal(doc["_id"])
        return updated

    async def flood(
        self,
        account_id: str,
        seconds: int,
        category: str,
        method: str | None = None,
        job_id: str | None = None,
        premium: bool = False,
    ) -> datetime:
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        doc = await self.repos.accounts.get(account_id)
        if doc is None:
            return until
        waits = {k: v for k, v in (doc.get("flood_waits") or {}).items() if v and v > now}
        waits[category] = max(until, waits.get(category, until))
        latest = max(waits.values())
        self.metrics.flood_waits.labels(category).inc()
        self.metrics.flood_wait_seconds.labels(category).inc(seconds)
        await self.emit(
            FloodWaitRecorded(
                account_id=account_id,
                seconds=seconds,
                until=until,
                category=category,
                method=method,
                job_id=job_id,
                premium_wait=premium,
            )
        )
        await self.repos.accounts.set(account_id, {"flood_waits": waits})
        doc["flood_waits"] = waits
        if AccountState(doc["state"]) not in TERMINAL:
            await self.transition(
                doc,
                AccountState.FLOOD_WAIT,
                f"FLOOD_WAIT_{seconds} on {method or category}",
                flood_until=latest,
            )
        return until

    def flood_remaining(self, doc: Doc, category: str) -> float:
        until = (doc.get("flood_waits") or {}).get(category)
        if not until:
            return 0.0
        return max(0.0, (until - self.clock()).total_seconds())

    async def failure(
        self, account_id: str, exc: BaseException, *, method: str = "", job_id: str | None = None
    ) -> DomainError:
        """Settle the health state after a failed Telegram call; the error to answer the caller with."""
        if isinstance(exc, DomainError):
            return exc
        if isinstance(exc, PeerNotFound):
            return DomainError(ErrorCode.NOT_FOUND, str(exc))
        if isinstance(exc, TelegramUnreachable):
            state = AccountState.PROXY_ERROR if exc.kind == "proxy" else AccountState.DISCONNECTED
            await self.transition(account_id, state, str(exc))
            return DomainError(ErrorCode.UNAVAILABLE, f"Telegram is unreachable for this account: {exc}")
        if not isinstance(exc, TelegramFailure):
            raise exc
        method = exc.method or method
        if exc.name == "SLOWMODE_WAIT":
            # The chat's slow mode, not a wait of the account: nothing is recorded against the
            # account (it sends elsewhere at once). Telegram's name keeps the chat's wait, which
            # campaign waits before posting there again (`SLOWMODE_WAIT_X` in messaging/outcomes.py).
            return DomainError(
                ErrorCode.TELEGRAM_ERROR,
                f"slow mode: this account may post in that chat again in {exc.seconds or 1}s ({exc.full})",
                {"telegramError": exc.full, "method": method or None},
                retry_after=exc.seconds or 1,
            )
        if exc.is_flood:
            seconds = exc.seconds or 1
            category = category_of(method)
            await self.flood(
                account_id, seconds, category, method, job_id, premium=exc.name == "FLOOD_PREMIUM_WAIT"
            )
            return DomainError(
                ErrorCode.FLOOD_WAIT,
                f"Telegram asks this account to wait {seconds}s before {category} ({exc.full})",
                {"telegramError": exc.full, "category": category, "method": method or None},
                retry_after=seconds,
            )
        if exc.name == "PEER_FLOOD":
            until = self.clock() + self.peer_flood_cooldown
            await self.transition(account_id, AccountState.PEER_FLOOD, "PEER_FLOOD", cooldown_until=until)
        elif exc.banned:
            await self.transition(account_id, AccountState.BANNED, exc.name)
        elif exc.session_dead:
            await self.transition(account_id, AccountState.UNAUTHORIZED, exc.name)
        elif exc.name == "FROZEN_METHOD_INVALID":
            await self.transition(account_id, AccountState.FROZEN, exc.name)
        return telegram_error(exc, method)

    async def recover(self, doc: Doc) -> Doc | None:
        """Waits that have passed end: flood_wait and peer_flood go back to active."""
        now = self.clock()
        state = AccountState(doc["state"])
        if state is AccountState.FLOOD_WAIT and (
            doc.get("flood_wait_until") is None or doc["flood_wait_until"] <= now
        ):
            return await self.transition(doc, AccountState.ACTIVE, "flood wait over")
        if state is AccountState.PEER_FLOOD and doc.get("cooldown_until") and doc["cooldown_until"] <= now:
            return await self.transition(doc, AccountState.ACTIVE, "peer flood cool-down over")
        return doc
