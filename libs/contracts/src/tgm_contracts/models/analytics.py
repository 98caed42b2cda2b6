"""Shared models of analytics: time windows with buckets, series, alerts, log entries, report
schedules and exported files (also used by tg-session's `export-collected-users`)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..base import Request, Response, TimeRange, check_http_url
from ..enums import Service

# --- time windows --------------------------------------------------------------------------------

Bucket = Literal["hour", "day"]

#: How far back a window reaches when `since` is omitted, and how long it may be, per bucket.
DEFAULT_SPAN: dict[str, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
MAX_SPAN: dict[str, timedelta] = {"hour": timedelta(days=92), "day": timedelta(days=3 * 366)}

Timezone = str


def _aware(value: datetime | None) -> datetime | None:
    # A naive time from a client is read as UTC rather than as the server's local time.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class StatsWindow(TimeRange):
    """A closed-open window `[since, until)` cut into `bucket`s. `until` defaults to now and `since` to
    24 hours (hour buckets) or 30 days (day buckets) before it."""

    bucket: Bucket = "day"
    timezone: Timezone | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$",
        description="IANA zone that day buckets follow; the `general.timezone` setting when omitted.",
    )

    @field_validator("since", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _window(self) -> StatsWindow:
        if self.since is not None and self.until is not None:
            if self.since >= self.until:
                raise ValueError("since must be before until")
            if self.until - self.since > MAX_SPAN[self.bucket]:
                raise ValueError(
                    f"a window of {self.bucket} buckets may span at most {MAX_SPAN[self.bucket].days} days"
                )
        return self

    def resolved(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The concrete `(since, until)` with defaults applied."""
        until = self.until or now or datetime.now(UTC)
        since = self.since or until - DEFAULT_SPAN[self.bucket]
        return since, until


class WindowView(Response):
    """The window a statistic was computed over, with defaults resolved."""

    since: datetime
    until: datetime
    bucket: Bucket
    timezone: str = "UTC"


class SeriesPoint(Response):
    start: datetime = Field(description="Start of the bucket.")
    value: float


class MetricSeries(Response):
    metric: str
    key: str | None = Field(None, description="The group-by value (an account id, campaign id…), if grouped.")
    total: float
    points: list[SeriesPoint]


# --- alerts --------------------------------------------------------------------------------------

AlertLevel = Literal["info", "warning", "error", "critical"]
ALERT_LEVELS: tuple[str, ...] = ("info", "warning", "error", "critical")


class AlertView(Response):
    """A condition an operator should look at. Repeats of the same `code` and subject fold into one
    alert whose `count` grows, until it is dismissed."""

    id: str
    level: AlertLevel
    code: str = Field(
        description="Stable kind, e.g. `account.unauthorized`, `flood_wait.rate`, `service.down`."
    )
    title: str
    message: str
    service: Service | None = None
    account_id: str | None = None
    subject: str | None = Field(
        None, description="What it is about when not an account: a campaign id, a proxy…"
    )
    count: int = 1
    first_seen_at: datetime
    last_seen_at: datetime
    dismissed: bool = False
    dismissed_at: datetime | None = None
    dismissed_by: str | None = None
    note: str | None = None
    source_event_id: str | None = Field(None, description="The event that raised it last.")


# --- logs ----------------------------------------------------------------------------------------

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")


class LogEntryView(Response):
    """One structured log line of a service, secrets already redacted at the source."""

    id: str
    timestamp: datetime
    level: LogLevel
    service: Service
    replica_id: str | None = None
    logger: str | None = None
    message: str
    account_id: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="Further structured fields.")


# --- exported files, reports ---------------------------------------------------------------------

ExportFormat = Literal["csv", "xlsx", "json"]

MIME_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


class ExportFile(Response):
    """A generated file. Small files travel inline as base64; a file too large for one NATS message is
    put in an object store and named by `objectName` (the gateway serves it)."""

    format: ExportFormat
    filename: str
    mime_type: str
    rows: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    sha256: str | None = None
    content_base64: str | None = None
    object_name: str | None = None
    truncated: bool = Field(False, description="True when `maxRows` cut the data short.")
    generated_at: datetime

    @model_validator(mode="after")
    def _one_location(self) -> ExportFile:
        if (self.content_base64 is None) == (self.object_name is None):
            raise ValueError("exactly one of contentBase64 and objectName is set")
        return self

    def content(self) -> bytes:
        """The inline bytes; raises for a file kept in the object store."""
        if self.content_base64 is None:
            raise ValueError(f"{self.filename} is stored as {self.object_name}, not inline")
        return base64.b64decode(self.content_base64)


ReportKind = Literal["dashboard", "messages", "users", "groups", "conversions", "performance", "alerts"]

RelativeWindow = Literal["last_24h", "last_7d", "last_30d", "previous_day", "previous_week", "previous_month"]


RecipientKind = Literal["webhook", "telegram", "tailchat"]


class ReportRecipientInput(Request):
    """Where a scheduled report is delivered besides being stored: a webhook (POST of the file),
    a Telegram peer through one of the fleet's accounts, or a Tailchat converse."""

    kind: RecipientKind
    target: str = Field(min_length=1, max_length=512, description="URL, `@peer` or converse id.")
    account_id: str | None = Field(
        None, min_length=1, max_length=64, description="For `telegram`: the sender."
    )

    @model_validator(mode="after")
    def _target(self) -> ReportRecipientInput:
        if self.kind == "webhook":
            check_http_url(self.target)
        if self.kind == "telegram" and not self.account_id:
            raise ValueError("a telegram recipient needs the accountId that sends the report")
        if self.kind != "telegram" and self.account_id:
            raise ValueError("accountId is only for telegram recipients")
        return self


class ReportRecipient(Response):
    kind: RecipientKind
    target: str
    account_id: str | None = None


class ReportScheduleView(Response):
    id: str
    name: str
    report: ReportKind
    format: ExportFormat
    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str = "UTC"
    window: RelativeWindow
    bucket: Bucket
    filters: dict[str, Any] = Field(default_factory=dict)
    recipients: list[ReportRecipient] = Field(default_factory=list)
    enabled: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_report_id: str | None = None
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


__all__ = [
    "ALERT_LEVELS",
    "LOG_LEVELS",
    "MIME_TYPES",
    "AlertLevel",
    "AlertView",
    "Bucket",
    "ExportFile",
    "ExportFormat",
    "LogEntryView",
    "LogLevel",
    "MetricSeries",
    "ReportKind",
    "ReportRecipient",
    "ReportRecipientInput",
    "ReportScheduleView",
    "SeriesPoint",
    "StatsWindow",
    "WindowView",
]
