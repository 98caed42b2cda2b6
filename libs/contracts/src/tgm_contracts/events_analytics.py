"""Events analytics publishes on TGM_EVENTS (`tgm.analytics.evt.<name>.v1`): alerts and finished reports.

Analytics raises alerts from what other services publish (an account going `unauthorized` or `banned`,
a burst of flood waits, a service that stops answering) and from its own schedules.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from .enums import Service
from .events import Event
from .models.analytics import AlertLevel, ExportFormat, ReportKind

AN = Service.ANALYTICS


class AlertRaised(Event):
    """A new alert, or a repeat of an undismissed one (`count` grew)."""

    OWNER: ClassVar[Service] = AN
    NAME: ClassVar[str] = "alert-raised"

    alert_id: str
    level: AlertLevel
    code: str
    title: str
    message: str
    service: Service | None = None
    account_id: str | None = None
    subject: str | None = None
    count: int = 1
    repeat: bool = Field(False, description="True when an existing alert's count grew.")
    first_seen_at: datetime
    last_seen_at: datetime


class AlertDismissed(Event):
    OWNER: ClassVar[Service] = AN
    NAME: ClassVar[str] = "alert-dismissed"

    alert_id: str
    dismissed_by: str | None = None


class AlertsCleared(Event):
    OWNER: ClassVar[Service] = AN
    NAME: ClassVar[str] = "alerts-cleared"

    affected: int
    cleared_by: str | None = None


class ReportReady(Event):
    """A report was generated (scheduled or exported); fetch it with export-report `reportId`."""

    OWNER: ClassVar[Service] = AN
    NAME: ClassVar[str] = "report-ready"

    report_id: str
    schedule_id: str | None = None
    report: ReportKind
    format: ExportFormat
    filename: str
    rows: int
    size_bytes: int
    since: datetime
    until: datetime
    delivered: list[str] = Field(default_factory=list, description="Recipients (`kind:target`) that got it.")
    failed: list[str] = Field(default_factory=list, description="Recipients that could not be reached.")


__all__ = ["AlertDismissed", "AlertRaised", "AlertsCleared", "ReportReady"]
