"""Catch-up of the Telegram updates an account missed while nobody held it (tg-session stopped or
killed, the connection lost, the lease moving to another replica): on every connect the holder asks
Telegram for the difference since the state stored in `update_states` (`update_state_store.py`) and
feeds every message of it through the same inbound path as live updates; then it stores the new
state. While connected, a sweep does the same shortly after live messages (and every
`catch_up_interval_seconds` anyway), so the stored state stays close to what was published and a
crash re-fetches only seconds of traffic.

Decisions:
- Telethon's own `catch_up=True` is not used: its state lives in the session object and is written
  at disconnect (never after a SIGKILL), and it dispatches concurrently, so its state runs ahead of
  what was handled. Ours is written only after the difference's messages were handed to `Inbound`
  (published, or kept by the outbox when NATS refuses), and only if none of them failed.
- Exactly once: a re-fetched message (overlap with the live stream, a sweep that repeats what was
  just pushed, a crash between publish and state write) yields the same event id (`inbound.py`
  `stable_id`), so JetStream's duplicate window drops it, and consumers keyed by event id
  (analytics) or by message (chat history) keep one. Our own sends seen again in a difference are
  recognised from the `sends` records, not only from the in-memory echo list.
- Channels and supergroups have their own pts: the account difference names those with messages
  after our date (`updateChannelTooLong`); each is caught up with getChannelDifference from its
  stored pts, or, the first time (no pts stored), from its recent history since our date.
- differenceTooLong (or channelDifferenceTooLong): the recent history of the dialogs active since
  our date is fed instead, bounded to `TOO_LONG_DIALOGS` dialogs x `TOO_LONG_MESSAGES` messages
  each (older messages of a very long outage are not recovered), then the server's state is stored.
- First connect ever (no stored state): the server's current state is stored; nothing older is
  fetched (the account was not ours before).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .update_state_store import UpdateStateStore

log = logging.getLogger("tgm.session.catchup")

#: differenceTooLong: at most this many recently active dialogs, this many messages each.
TOO_LONG_DIALOGS = 100
TOO_LONG_MESSAGES = 50
#: A sweep follows live messages after this many seconds of quiet.
SWEEP_AFTER_LIVE_SECONDS = 1.0
#: After a failed run, no sweep for this long (a reconnect still catches up at once).
RETRY_AFTER_FAILURE_SECONDS = 15.0


@dataclass
class UpdateState:
    pts: int
    qts: int
    date: int  # unix seconds
    seq: int
    channels: dict[int, int] = field(default_factory=dict)  # channel id (bare) -> pts
    #: Set by the client when the difference was too long and history was fed instead.
    too_long: bool = False
    #: Messages fed through the inbound path by this catch-up.
    fed: int = 0


@runtime_checkable
class CatchingUp(Protocol):
    """What a client offers for catch-up (the Telethon adapter; fakes without it are skipped)."""

    async def update_state(self) -> UpdateState: ...

    async def catch_up(self, state: UpdateState) -> UpdateState: ...


class CatchUp:
    def __init__(self, store: UpdateStateStore, *, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}
        self._live_at: dict[str, float] = {}
        self._failed_at: dict[str, float] = {}
        #: Runs by outcome (tests and metrics read it): ok, first, too_long, failed.
        self.runs: dict[str, int] = {}

    def saw_live(self, account_id: str) -> None:
        """A live message was handled: sweep soon, so the stored state follows it."""
        self._live_at.setdefault(account_id, time.monotonic())

    def due(self, account_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if account_id in self._locks and self._locks[account_id].locked():
            return False
        if now - self._failed_at.get(account_id, -1e9) < RETRY_AFTER_FAILURE_SECONDS:
            return False
        live_at = self._live_at.get(account_id)
        if live_at is not None and now - live_at >= SWEEP_AFTER_LIVE_SECONDS:
            return True
        return now - self._last.get(account_id, now) >= self.interval

    def forget(self, account_id: str) -> None:
        """The account is not held here any more (its state stays stored for the next holder)."""
        self._last.pop(account_id, None)
        self._live_at.pop(account_id, None)
        self._failed_at.pop(account_id, None)
        self._locks.pop(account_id, None)

    async def run(self, account_id: str, client: object) -> UpdateState | None:
        """Catch the account up (on connect, and as a sweep); never raises: a failure leaves the
        stored state where it was, so the next run fetches the same difference again."""
        if not isinstance(client, CatchingUp):
            return None
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            self._last[account_id] = time.monotonic()
            self._live_at.pop(account_id, None)
            try:
                return await self._run(account_id, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.runs["failed"] = self.runs.get("failed", 0) + 1
                self._failed_at[account_id] = time.monotonic()
                log.warning("catch-up of %s failed (retried at the next sweep): %s", account_id, exc)
                return None
            finally:
                self._last[account_id] = time.monotonic()

    async def _run(self, account_id: str, client: CatchingUp) -> UpdateState:
        doc = await self.store.load(account_id)
        if doc is None or "pts" not in doc:
            state = await client.update_state()
            await self.store.reset(account_id, pts=state.pts, qts=state.qts, date=state.date, seq=state.seq)
            self.runs["first"] = self.runs.get("first", 0) + 1
            return state
        stored = UpdateState(
            pts=int(doc["pts"]),
            qts=int(doc.get("qts") or 0),
            date=int(doc.get("date") or 0),
            seq=int(doc.get("seq") or 0),
            channels={int(k): int(v) for k, v in (doc.get("channels") or {}).items()},
        )
        state = await client.catch_up(stored)
        if state.too_long:
            await self.store.reset(account_id, pts=state.pts, qts=state.qts, date=state.date, seq=state.seq)
            self.runs["too_long"] = self.runs.get("too_long", 0) + 1
        await self.store.save(
            account_id,
            pts=state.pts,
            qts=state.qts,
            date=state.date,
            seq=state.seq,
            channels=state.channels,
        )
        self.runs["ok"] = self.runs.get("ok", 0) + 1
        if state.fed:
            log.info("account %s caught up %d missed message(s)", account_id, state.fed)
        return state
