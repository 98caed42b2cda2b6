"""Analytics that cannot drift after a restore: the rebuild (issue 12, finding 2).

A restore puts back analytics' database as it was at the backup: facts and projections of every event
consumed since are gone, and the durable consumer, whose position lives in NATS, will not deliver them
again. The rebuild recounts them from the sources' own records:

- **Facts and projections** are replayed from TGM_EVENTS (which keeps 7 days) through the same
  `Ingest` as the live consumer, by an ordered consumer of its own, from `since` up to the stream's last
  message when the rebuild began. Every write of `Ingest` is idempotent by event id and
  order-independent (`$setOnInsert`, `$min`/`$max`, newest `stateAt` wins), so events already counted
  change nothing, and events the live consumer folds during the replay (it keeps running) are counted
  once whichever path sees them first.
- *After a restore* `since` is the newest fact's time in the restored data minus `RESTORE_MARGIN`
  (consumer lag and clocks: an event consumed just before the dump may have been published a little
  earlier), or the whole stream when no fact was restored. *On demand* (`rebuild-analytics`) it is the
  request's `since`, else the whole stream. A backup older than the stream's 7 days cannot be recounted
  past the stream's start: what the stream no longer keeps stays as restored.
- **Account states** are then re-read from tg-session's own record (`get-accounts`, every page) and
  replace the projection's, stamped with the time of the question: tg-session owns the state, so the
  dashboard's `byState` equals `get-accounts` after a restore (tg-session is restored before analytics:
  the gateway restores services in `ALL_SERVICES` order). An `account-status-changed` with a later
  `stateAt` (a change after the question) still wins, in whichever order the two writes land; accounts
  the projection knows and tg-session does not are removed as of the question. When tg-session does not
  answer, the rebuild fails with that error after the replay and the operator runs `rebuild-analytics`
  again.

One rebuild runs at a time: a restore cancels a running one and starts again (the data under it was
replaced); `rebuild-analytics` while one runs is a conflict. Progress is in `get-analytics-rebuild`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tgm_contracts.base import Empty
from tgm_contracts.commands.analytics_rebuild import (
    AnalyticsRebuildStatus,
    GetAnalyticsRebuild,
    RebuildAnalytics,
    RebuildAnalyticsRequest,
)
from tgm_runtime import Conflict
from tgm_runtime.routes import answers

from ..stats.service import Ingest
from ..stats.store import FactStore
from .accounts import FleetRecord
from .store import RebuildStore
from .stream import EventReplay

log = logging.getLogger("tgm.analytics.rebuild")

#: How far before the newest restored fact a post-restore replay starts.
RESTORE_MARGIN = timedelta(minutes=15)
#: The status document is written every this many replayed events (and at the end).
PROGRESS_EVERY = 500

Trigger = Literal["command", "restore"]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


def _view(doc: dict[str, Any] | None) -> AnalyticsRebuildStatus:
    if doc is None:
        return AnalyticsRebuildStatus(state="idle")
    total, done = doc.get("events_total", 0), doc.get("events_replayed", 0)
    finished = doc.get("state") == "completed"
    progress = 1.0 if finished else (min(1.0, done / total) if total else 0.0)
    return AnalyticsRebuildStatus.model_validate(
        {k: v for k, v in doc.items() if k != "_id"} | {"progress": progress}
    )


class Rebuild:
    def __init__(
        self,
        facts: FactStore,
        ingest: Ingest,
        replay: EventReplay,
        fleet: FleetRecord,
        store: RebuildStore,
        spawn: Spawn,
        after: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.facts = facts
        self.ingest = ingest
        self.replay = replay
        self.fleet = fleet
        self.store = store
        self.spawn = spawn
        self.after = after  # the statistics' cached span is looked up again (queries.StatsQueries)
        self._task: asyncio.Task[None] | None = None

    @answers(RebuildAnalytics)
    async def start(self, req: RebuildAnalyticsRequest) -> AnalyticsRebuildStatus:
        if self._task is not None and not self._task.done():
            raise Conflict("a rebuild of analytics is running: see get-analytics-rebuild")
        task = await self._begin("command", req.since)
        if req.wait:
            await asyncio.shield(task)  # a caller that gives up does not stop the rebuild
        return _view(await self.store.last())

    @answers(GetAnalyticsRebuild)
    async def status(self, req: Empty) -> AnalyticsRebuildStatus:
        return _view(await self.store.last())

    async def after_restore(self) -> asyncio.Task[None]:
        """Start the post-restore rebuild (cancelling one that runs over the replaced data)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            # Wait for it to record its end, so it cannot overwrite the new run's status afterwards.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        newest = await self.facts.newest_fact_time()
        return await self._begin("restore", newest - RESTORE_MARGIN if newest else None)

    async def _begin(self, trigger: Trigger, since: datetime | None) -> asyncio.Task[None]:
        first, last = await self.replay.span()
        await self.store.start(
            {
                "state": "running",
                "trigger": trigger,
                "since": since,
                "started_at": datetime.now(UTC),
                "events_total": max(0, last - first + 1) if first else 0,
                "events_replayed": 0,
            }
        )
        self._task = self.spawn(self._run(since, last), f"analytics-rebuild-{trigger}")
        return self._task

    async def _run(self, since: datetime | None, last_seq: int) -> None:
        try:
            replayed, first_seen = 0, None
            async for seq, evt in self.replay.events(since, last_seq):
                if first_seen is None:
                    first_seen = seq
                    await self.store.update({"events_total": last_seq - seq + 1})
                await self.ingest.handle(evt)
                replayed += 1
                if replayed % PROGRESS_EVERY == 0:
                    await self.store.update({"events_replayed": replayed})
            await self.store.update({"events_replayed": replayed})
            asked_at = datetime.now(UTC)
            views = await self.fleet.accounts()
            for view in views:
                await self.facts.account_as_recorded(
                    view.id, view.state.value, view.profile.telegram_id, asked_at
                )
            await self.facts.accounts_gone([v.id for v in views], asked_at)
            await self.after()
            await self.store.update(
                {"state": "completed", "accounts": len(views), "finished_at": datetime.now(UTC)}
            )
            log.info("analytics rebuilt: %d events replayed, %d account states re-read", replayed, len(views))
        except asyncio.CancelledError:
            await self.store.update(
                {"state": "failed", "error": "cancelled", "finished_at": datetime.now(UTC)}
            )
            raise
        except Exception as exc:
            log.warning("analytics rebuild failed: %s", exc)
            await self.store.update({"state": "failed", "error": str(exc), "finished_at": datetime.now(UTC)})
