"""Retention: the shape of every sweep that deletes what is older than an operator setting.

Stats (facts, leads, job links after `analytics.eventRetentionDays`) and telemetry (logs and samples
after `analytics.logRetentionDays`) differ only in which setting they read, what they delete and what
follows; each runs as one `runtime.every(SWEEP_SECONDS, retention.round)` job (bootstrap.py), at start
and then hourly. The setting is read every round, so a change applies at the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tgm.analytics.retention")

#: How often each retention sweep runs.
SWEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Retention:
    """One sweep: `days()` to keep (read each round), `sweep(days)` -> removed counts, then `after()`."""

    name: str
    days: Callable[[], Awaitable[int]]
    sweep: Callable[[int], Awaitable[dict[str, int]]]
    after: Callable[[], Awaitable[Any]] | None = None

    async def round(self) -> dict[str, int]:
        removed = await self.sweep(await self.days())
        if any(removed.values()):
            log.info("%s retention sweep removed %s", self.name, removed)
        if self.after is not None:
            await self.after()
        return removed
