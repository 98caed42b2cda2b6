"""Inbound events are not lost while NATS is briefly unreachable: what `emit` could not publish is
kept in the database (`outbox_store.py`) and re-published in order once NATS takes events again.

Decisions:
- Kept in the database directly, not in memory first: tg-session already depends on its database,
  the write only happens during an outage (the hot path with NATS up is one publish, as before), and
  a replica killed during the outage loses nothing (its successor, or itself after a restart,
  re-publishes). Only when the database refuses too is an event held in memory (bounded by
  `memory_max`, the oldest given up and counted in `tgm_session_outbox_dropped_total{reason="memory"}`);
  that memory is written to the database first thing when it answers again (and at stop).
- Order: while anything is kept (`depth` > 0) a new event is kept behind it instead of being published,
  so the stream sees the outage's events in the order they were kept. Events whose publishes were in
  flight together are not ordered between them (nor are they without the outbox: Telethon runs each
  update in its own task); consumers key by event id and message id, not by arrival.
- Exactly once on the stream: an event keeps its event id, which is its `Nats-Msg-Id`; JetStream drops a
  second publish of it within the stream's duplicate window (2 min), and consumers are idempotent by
  event id beyond that. So "published, then killed before the delete" re-publishes harmlessly.
- When NATS drops, the publish in flight waits for its JetStream ack (nats-py's 5 s timeout) before it
  is refused and kept; the events after it go straight to the outbox (no wait). nats-py may still
  deliver that timed-out publish on reconnect: the re-publish is then the duplicate JetStream drops.
- `drain` runs every second (`bootstrap.py`, `runtime.every`); it stops at the first refused publish.
  A replica's kept events are its own (`replica`); events another replica kept more than
  `adopt_after_seconds` ago are adopted (that replica died or lost NATS for good).
- Metrics: `tgm_session_outbox_depth`, `tgm_session_outbox_republished_total`,
  `tgm_session_outbox_dropped_total{reason}` (`memory`, `corrupt`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts import Event
from tgm_contracts.events import EVENTS

from ..capabilities import Emit
from ..metrics import SessionMetrics
from .outbox_store import OutboxRepo

log = logging.getLogger("tgm.session.outbox")


@dataclass(eq=False)
class Outbox:
    store: OutboxRepo
    #: The runtime's best-effort publish (`runtime.emit`): False when NATS did not take the event.
    emit: Emit
    metrics: SessionMetrics
    replica_id: str
    batch: int = 200
    memory_max: int = 10_000
    adopt_after_seconds: float = 60.0
    #: Kept documents of this replica in the database, as far as this process knows (recounted when
    #: a page comes back empty).
    stored: int = field(default=0, init=False)
    _memory: deque[dict[str, Any]] = field(default_factory=deque, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _last_seq: int = field(default=0, init=False)
    _next_adopt: float = field(default=0.0, init=False)

    @property
    def depth(self) -> int:
        return self.stored + len(self._memory)

    def _gauge(self) -> None:
        self.metrics.outbox_depth.set(self.depth)

    async def start(self) -> None:
        """At start: the index, and what this replica kept before it stopped or was killed."""
        await self.store.ensure_indexes()
        self.stored = await self.store.depth(self.replica_id)
        if self.stored:
            log.info("%d inbound events kept from before the start; re-publishing them", self.stored)
        self._gauge()

    async def publish(self, event: Event) -> bool:
        """The inbound path's publish: straight to NATS unless events are kept; kept if refused.
        True when it is on the stream now."""
        if self.depth == 0 and await self.emit(event):
            return True
        await self.keep(event)
        return False

    def _doc(self, event: Event) -> dict[str, Any]:
        seq = max(time.time_ns(), self._last_seq + 1)
        self._last_seq = seq
        return {
            "_id": event.event_id,
            "replica": self.replica_id,
            "seq": seq,
            "subject": event.SUBJECT,
            "body": event.model_dump(mode="json", by_alias=True),
            "at": datetime.now(UTC),
        }

    async def keep(self, event: Event) -> None:
        doc = self._doc(event)
        if not self._memory:  # memory only ever holds what is older than the next database write
            try:
                if await self.store.keep(doc):
                    self.stored += 1
                self._gauge()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("inbound event %s kept in memory (database refused it: %s)", event.event_id, exc)
        self._memory.append(doc)
        if len(self._memory) > self.memory_max:
            lost = self._memory.popleft()
            self.metrics.outbox_dropped.labels("memory").inc()
            log.error("inbound outbox full in memory: event %s given up", lost["_id"])
        self._gauge()

    async def _flush_memory(self) -> bool:
        """Write what memory holds to the database; False if the database still refuses."""
        if not self._memory:
            return True
        docs = list(self._memory)
        try:
            await self.store.keep_many(docs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("inbound outbox: %d events still in memory (database: %s)", len(docs), exc)
            return False
        for _ in docs:
            self._memory.popleft()
        self.stored += len(docs)
        return True

    def _decode(self, doc: dict[str, Any]) -> Event | None:
        cls = EVENTS.get(str(doc.get("subject")))
        try:
            return cls.model_validate(doc["body"]) if cls is not None else None
        except Exception:
            return None

    async def drain(self) -> int:
        """Re-publish what is kept, oldest first, until done or NATS refuses; the number published."""
        async with self._lock:
            try:
                return await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down too: the next round tries again
                log.warning("inbound outbox not drained (%d kept): %s", self.depth, exc)
                return 0
            finally:
                self._gauge()

    async def _drain(self) -> int:
        published = 0
        if not await self._flush_memory():
            if self.stored:
                return 0  # older events are in the database: they go first, when it answers
            while self._memory:  # nothing older anywhere: memory in order, straight to NATS
                event = self._decode(self._memory[0])
                if event is not None and not await self.emit(event):
                    return published
                self._memory.popleft()
                if event is not None:
                    published += 1
                    self.metrics.outbox_republished.inc()
            return published
        await self._adopt()
        while self.stored > 0:
            page = await self.store.page(self.replica_id, self.batch)
            if not page:
                self.stored = await self.store.depth(self.replica_id)
                break
            done: list[str] = []
            refused = False
            for doc in page:
                event = self._decode(doc)
                if event is None:
                    log.error("inbound outbox: event %s unreadable; given up", doc.get("_id"))
                    self.metrics.outbox_dropped.labels("corrupt").inc()
                elif not await self.emit(event):
                    refused = True
                    break
                else:
                    published += 1
                    self.metrics.outbox_republished.inc()
                done.append(doc["_id"])
            await self.store.remove(done)
            self.stored = max(0, self.stored - len(done))
            if refused:
                break
            if len(page) < self.batch:
                self.stored = await self.store.depth(self.replica_id)
        if published:
            log.info("inbound outbox: %d kept events re-published (%d left)", published, self.depth)
        return published

    async def _adopt(self) -> None:
        now = time.monotonic()
        if now < self._next_adopt:
            return
        self._next_adopt = now + self.adopt_after_seconds / 2
        before = datetime.now(UTC) - timedelta(seconds=self.adopt_after_seconds)
        adopted = await self.store.adopt(self.replica_id, before)
        if adopted:
            log.warning("inbound outbox: adopted %d events other replicas kept", adopted)
            self.stored += adopted

    async def close(self) -> None:
        """At stop: what only memory holds goes to the database if it can."""
        async with self._lock:
            if self._memory and not await self._flush_memory():
                log.error("inbound outbox: %d events only in memory are lost at stop", len(self._memory))
