"""Recount analytics (not seed commands, `seed=False`): replay TGM_EVENTS into the statistics and
re-read every account's state from tg-session, so the figures equal what happened after a restore
rolled analytics back (issue 12). Analytics runs the same rebuild by itself after a restore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from ..base import Empty, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service

RebuildState = Literal["idle", "running", "completed", "failed"]


class RebuildAnalyticsRequest(Request):
    since: datetime | None = Field(
        None, description="Replay events published from this time; default: everything TGM_EVENTS keeps."
    )
    wait: bool = Field(False, description="Answer when the rebuild is over; false answers at once.")


class AnalyticsRebuildStatus(Response):
    state: RebuildState
    trigger: Literal["command", "restore"] | None = None
    since: datetime | None = Field(None, description="Events published from this time were replayed.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events_total: int = Field(0, description="Events in the stream to replay when the rebuild started.")
    events_replayed: int = 0
    progress: float = Field(0.0, ge=0, le=1)
    accounts: int = Field(0, description="Accounts whose state was re-read from tg-session.")
    error: str | None = None


class RebuildAnalytics(
    Command,
    name="rebuild-analytics",
    owner=Service.ANALYTICS,
    domain=Domain.ANALYTICS,
    role=Role.ADMIN,
    request=RebuildAnalyticsRequest,
    response=AnalyticsRebuildStatus,
    timeout=600,
    seed=False,
):
    """Recount the statistics from the events stream and the account states from tg-session."""


class GetAnalyticsRebuild(
    Command,
    name="get-analytics-rebuild",
    owner=Service.ANALYTICS,
    domain=Domain.ANALYTICS,
    role=Role.VIEWER,
    request=Empty,
    response=AnalyticsRebuildStatus,
    seed=False,
):
    """The last (or running) rebuild of analytics: trigger, progress, error."""
