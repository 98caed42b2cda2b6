"""The 15 analytics commands: statistics over time windows cut into hour or day buckets, reports
exported (CSV, XLSX, JSON) or scheduled, and the admin chores of alerts, logs and performance.

Analytics computes everything from the events on TGM_EVENTS and the logs services ship to it; it never
reads another service's database.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from ..base import Ack, Confirmed, Page, PageRequest, Request, Response, TimeRange
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.analytics import (
    AlertLevel,
    AlertView,
    Bucket,
    ExportFile,
    ExportFormat,
    LogEntryView,
    LogLevel,
    MetricSeries,
    RelativeWindow,
    ReportKind,
    ReportRecipientInput,
    ReportScheduleView,
    StatsWindow,
    WindowView,
    _aware,
)

AN = Service.ANALYTICS
ANALYTICS = Domain.ANALYTICS
SYSTEM = Domain.SYSTEM

OptId = Annotated[str, Field(min_length=1, max_length=128)]


class ScopeFilters(Request):
    """Narrow a statistic to one account, campaign or chat."""

    account_id: OptId | None = None
    campaign_id: OptId | None = None
    chat_id: int | None = None


# --- dashboard and generic series ----------------------------------------------------------------


class DashboardRequest(StatsWindow):
    bucket: Bucket = "hour"


class AccountFigures(Response):
    total: int
    by_state: dict[str, int] = Field(default_factory=dict)
    connected: int = 0


class SentByOrigin(Response):
    """`sent` split by where the message came from; the three add up to `sent`."""

    queue: int = Field(0, description="Sent through the queue: operator sends, campaigns, ads, scripts.")
    automation: int = Field(0, description="Reply jobs a trigger rule queued (`trigger-fired` jobIds).")
    external: int = Field(0, description="Typed by one of our accounts on another device (origin external).")


class ReceivedByOrigin(Response):
    """`received` split by who wrote it; the two add up to `received`."""

    people: int = Field(0, description="Written by anyone outside the fleet.")
    fleet: int = Field(0, description="Written by another of the fleet's own accounts.")


class MessageTotals(Response):
    sent: int = 0
    received: int = 0
    failed: int = Field(
        0,
        description=(
            "Jobs that failed permanently (campaign `job-state-changed` to `failed`, every reason), each "
            "job once: what get-queue-status counts as failed."
        ),
    )
    flood_waits: int = 0
    replies_received: int = Field(0, description="Inbound private messages answering one of our sends.")
    reply_rate: float | None = Field(None, description="repliesReceived / sent, null when nothing was sent.")
    failed_attempts: int = Field(
        0, description="Send attempts Telegram refused (a job retried and then delivered has some)."
    )
    sent_by_origin: SentByOrigin = Field(default_factory=SentByOrigin)
    received_by_origin: ReceivedByOrigin = Field(default_factory=ReceivedByOrigin)


class LeadFigures(Response):
    new: int = 0
    total: int = 0
    converted: int = 0


class AiFigures(Response):
    replies: int = 0
    tokens: int = 0
    handoffs: int = 0


class DashboardBucket(Response):
    start: datetime
    sent: int = 0
    received: int = 0
    failed: int = 0
    new_leads: int = 0


class TriggerFigures(Response):
    """Trigger rules in the window (campaign `trigger-fired`, `reply-suggested`)."""

    fired: int = 0
    skipped: dict[str, int] = Field(
        default_factory=dict, description="Rule decisions that did not fire, by outcome (cooldown, ...)."
    )
    errors: int = Field(0, description="Firings whose actions failed (outcome `error`).")
    leads: int = Field(0, description="Distinct leads captured or updated by a firing.")
    suggestions: int = Field(0, description="AI replies drafted for an operator (`semi` mode).")


class CampaignRunFigures(Response):
    campaign_id: str
    name: str | None = None
    status: str | None = None
    targets: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    replied: int = 0
    percent: int = 0


class CampaignFigures(Response):
    """Automation campaigns: starts/completions in the window; the rest is their latest progress."""

    started: int = 0
    completed: int = 0
    running: int = 0
    targets: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    replied: int = 0
    items: list[CampaignRunFigures] = Field(
        default_factory=list, description="Campaigns running or active in the window, latest first."
    )


class AutomationFigures(Response):
    keyword_matches: int = 0
    triggers: TriggerFigures = Field(default_factory=TriggerFigures)
    campaigns: CampaignFigures = Field(default_factory=CampaignFigures)


class DashboardStats(Response):
    window: WindowView
    accounts: AccountFigures
    messages: MessageTotals
    leads: LeadFigures
    ai: AiFigures
    groups_joined: int = 0
    members_extracted: int = 0
    unresolved_alerts: int = 0
    critical_alerts: int = 0
    automation: AutomationFigures = Field(default_factory=AutomationFigures)
    buckets: list[DashboardBucket] = Field(default_factory=list)
    generated_at: datetime


class GetDashboardStats(
    Command,
    name="get-dashboard-stats",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=DashboardRequest,
    response=DashboardStats,
):
    """The console's front page: accounts by state, messages, leads, AI, alerts, and their trend."""


MetricName = Literal[
    "messages_sent",
    "messages_received",
    "messages_failed",
    "replies_received",
    "flood_waits",
    "flood_wait_seconds",
    "logins",
    "login_failures",
    "account_state_changes",
    "group_joins",
    "group_leaves",
    "members_joined",
    "members_extracted",
    "keyword_matches",
    "leads_created",
    "leads_converted",
    "new_users",
    "active_users",
    "ai_replies",
    "ai_tokens",
    "alerts_raised",
    "triggers_fired",
    "triggers_skipped",
    "trigger_errors",
    "trigger_leads",
    "ai_suggestions",
    "campaigns_started",
    "campaigns_completed",
]
GroupBy = Literal["none", "account", "campaign", "chat", "service"]


class GetAnalyticsRequest(StatsWindow, ScopeFilters):
    metrics: list[MetricName] = Field(min_length=1, max_length=10)
    group_by: GroupBy = "none"
    top: int = Field(10, ge=1, le=100, description="When grouped: the largest this many keys per metric.")

    @field_validator("metrics")
    @classmethod
    def _unique(cls, metrics: list[str]) -> list[str]:
        return list(dict.fromkeys(metrics))


class AnalyticsResult(Response):
    window: WindowView
    group_by: GroupBy
    series: list[MetricSeries] = Field(description="One series per metric (and per key when grouped).")


class GetAnalytics(
    Command,
    name="get-analytics",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=GetAnalyticsRequest,
    response=AnalyticsResult,
):
    """Any of the counted metrics as bucketed series, optionally grouped by account, campaign, chat or service."""


# --- messages, users, groups, conversions --------------------------------------------------------


class MessageStatsRequest(StatsWindow, ScopeFilters):
    chat_kind: Literal["private", "group"] | None = None


class MessageBucket(Response):
    start: datetime
    sent: int = 0
    received: int = 0
    failed: int = 0
    flood_waits: int = 0


class AccountMessageFigures(Response):
    account_id: str
    sent: int = 0
    received: int = 0
    failed: int = 0
    flood_waits: int = 0


class MessageStats(Response):
    window: WindowView
    totals: MessageTotals
    buckets: list[MessageBucket]
    by_account: list[AccountMessageFigures] = Field(
        default_factory=list, description="Busiest accounts first."
    )
    failures_by_error: dict[str, int] = Field(
        default_factory=dict, description="Failed jobs by reason, e.g. template_error -> 1."
    )
    attempt_failures_by_error: dict[str, int] = Field(
        default_factory=dict, description="Refused send attempts by Telegram error, e.g. PEER_FLOOD -> 3."
    )


class GetMessageStats(
    Command,
    name="get-message-stats",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=MessageStatsRequest,
    response=MessageStats,
):
    """Messages sent, received and failed, flood waits and reply rate, per bucket and per account."""


class UserStatsRequest(StatsWindow, ScopeFilters):
    pass


class UserTotals(Response):
    new_users: int = Field(0, description="Users in contact with the fleet for the first time.")
    active_users: int = Field(0, description="Distinct users who wrote to an account.")
    replied_users: int = Field(0, description="Distinct users who answered one of our sends.")
    opted_out: int = 0
    blacklisted: int = 0
    collected: int = Field(0, description="Users gathered by member extraction.")


class UserBucket(Response):
    start: datetime
    new_users: int = 0
    active_users: int = 0
    replied_users: int = 0


class UserStats(Response):
    window: WindowView
    totals: UserTotals
    buckets: list[UserBucket]
    by_source: dict[str, int] = Field(
        default_factory=dict, description="New users per source (group, campaign…)."
    )


class GetUserStats(
    Command,
    name="get-user-stats",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=UserStatsRequest,
    response=UserStats,
):
    """New, active and replying users, opt-outs and blacklistings, per bucket."""


class GroupStatsRequest(StatsWindow):
    account_id: OptId | None = None
    chat_ids: list[int] | None = Field(None, max_length=200)
    top: int = Field(20, ge=1, le=200)


class GroupTotals(Response):
    groups_watched: int = 0
    groups_joined: int = 0
    groups_left: int = 0
    messages: int = 0
    keyword_matches: int = 0
    leads: int = 0
    members_joined: int = 0


class GroupBucket(Response):
    start: datetime
    messages: int = 0
    keyword_matches: int = 0
    leads: int = 0
    members_joined: int = 0


class GroupActivity(Response):
    chat_id: int
    title: str | None = None
    messages: int = 0
    active_users: int = 0
    keyword_matches: int = 0
    leads: int = 0
    members_joined: int = 0


class GroupStats(Response):
    window: WindowView
    totals: GroupTotals
    buckets: list[GroupBucket]
    groups: list[GroupActivity] = Field(default_factory=list, description="Most active first, at most `top`.")


class GetGroupStats(
    Command,
    name="get-group-stats",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=GroupStatsRequest,
    response=GroupStats,
):
    """Group activity: messages, keyword matches, leads and joins, overall and per group."""


class ConversionStatsRequest(StatsWindow, ScopeFilters):
    source: str | None = Field(None, min_length=1, max_length=64, description="Lead source, e.g. `keyword`.")


class StageCount(Response):
    stage: str
    count: int
    rate_from_previous: float | None = None


class ConversionBucket(Response):
    start: datetime
    leads: int = 0
    contacted: int = 0
    replied: int = 0
    converted: int = 0


class CampaignConversion(Response):
    campaign_id: str
    leads: int
    converted: int
    conversion_rate: float | None = None


class ConversionStats(Response):
    window: WindowView
    stages: list[StageCount] = Field(description="Funnel stages in order with the leads that reached each.")
    leads: int
    converted: int
    conversion_rate: float | None = None
    avg_hours_to_convert: float | None = None
    buckets: list[ConversionBucket]
    by_campaign: list[CampaignConversion] = Field(default_factory=list)


class GetConversionStats(
    Command,
    name="get-conversion-stats",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=ConversionStatsRequest,
    response=ConversionStats,
):
    """The lead funnel over a window: stage counts, conversion rate and time to convert."""


# --- reports -------------------------------------------------------------------------------------


class ExportReportRequest(StatsWindow, ScopeFilters):
    report: ReportKind | None = Field(None, description="Generate this report now…")
    report_id: str | None = Field(None, min_length=1, max_length=128, description="…or fetch a stored one.")
    format: ExportFormat = "csv"

    @model_validator(mode="after")
    def _one(self) -> ExportReportRequest:
        if (self.report is None) == (self.report_id is None):
            raise ValueError("give report (to generate one) or reportId (to fetch a stored one)")
        return self


class ExportReport(
    Command,
    name="export-report",
    owner=AN,
    domain=ANALYTICS,
    role=Role.VIEWER,
    request=ExportReportRequest,
    response=ExportFile,
    timeout=120,
):
    """Generate a report as CSV, XLSX or JSON, or fetch one a schedule produced."""


_CRON_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_NAMES = {
    3: {
        m: i + 1
        for i, m in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        )
    },
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_CRON_MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}


def validate_cron(expr: str) -> str:
    """A standard 5-field cron expression (numbers, `*`, ranges, steps, lists, month/day names) or a macro."""
    text = " ".join(expr.split())
    if text.lower() in _CRON_MACROS:
        return text.lower()
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError("cron needs 5 fields: minute hour day-of-month month day-of-week")
    for index, (field, (name, lo, hi)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        names = _CRON_NAMES.get(index, {})
        for part in field.split(","):
            m = re.fullmatch(r"(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?", part)
            if not m:
                raise ValueError(f"cron {name} field {field!r} is not valid")
            if m.group(2) is not None and int(m.group(2)) < 1:
                raise ValueError(f"cron {name} step must be at least 1")
            if m.group(1) == "*":
                continue
            for bound in m.group(1).split("-"):
                value = names.get(bound.lower()) if not bound.isdigit() else int(bound)
                if value is None or not lo <= value <= hi:
                    raise ValueError(f"cron {name} value {bound!r} is outside {lo}-{hi}")
    return text


class ScheduleReportRequest(Request):
    """`save` creates (no `scheduleId`) or updates a schedule; `delete` removes one; `run` generates a
    schedule's report now; `list` returns every schedule."""

    action: Literal["save", "delete", "run", "list"] = "save"
    schedule_id: str | None = Field(None, min_length=1, max_length=128)
    name: str | None = Field(None, min_length=1, max_length=100)
    report: ReportKind | None = None
    format: ExportFormat | None = None
    cron: str | None = Field(None, max_length=100, description="5-field cron or a macro such as `@daily`.")
    interval_seconds: int | None = Field(
        None, ge=300, le=31 * 86400, description="Every N seconds instead of cron."
    )
    timezone: str | None = Field(None, max_length=64, pattern=r"^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$")
    window: RelativeWindow | None = Field(
        None, description="The period each run covers; `last_24h` by default."
    )
    bucket: Bucket | None = None
    filters: ScopeFilters | None = None
    recipients: list[ReportRecipientInput] | None = Field(
        None, max_length=20, description="Optional deliveries."
    )
    enabled: bool | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return validate_cron(value) if value is not None else None

    @model_validator(mode="after")
    def _per_action(self) -> ScheduleReportRequest:
        if self.cron is not None and self.interval_seconds is not None:
            raise ValueError("give cron or intervalSeconds, not both")
        if self.action in ("delete", "run") and self.schedule_id is None:
            raise ValueError(f"{self.action} needs scheduleId")
        if self.action == "save" and self.schedule_id is None:
            missing = [n for n, v in (("name", self.name), ("report", self.report)) if v is None]
            if self.cron is None and self.interval_seconds is None:
                missing.append("cron or intervalSeconds")
            if missing:
                raise ValueError("a new schedule needs " + ", ".join(missing))
        return self


class ScheduleReportResult(Response):
    action: Literal["save", "delete", "run", "list"]
    schedule: ReportScheduleView | None = Field(None, description="The saved, deleted or run schedule.")
    schedules: list[ReportScheduleView] = Field(default_factory=list, description="For `list`.")
    report_id: str | None = Field(
        None, description="For `run`: the report being generated (see report-ready)."
    )


class ScheduleReport(
    Command,
    name="schedule-report",
    owner=AN,
    domain=ANALYTICS,
    role=Role.OPERATOR,
    request=ScheduleReportRequest,
    response=ScheduleReportResult,
):
    """Create, change, delete, list or run report schedules (cron or interval, optional recipients)."""


# --- alerts --------------------------------------------------------------------------------------


class GetAlertsRequest(PageRequest):
    level: list[AlertLevel] | None = Field(None, description="Any of these levels.")
    min_level: AlertLevel | None = None
    unresolved_only: bool = Field(False, description="Only alerts not dismissed.")
    service: Service | None = None
    account_id: OptId | None = None
    code: str | None = Field(None, min_length=1, max_length=100)
    since: datetime | None = None
    until: datetime | None = None


class AlertPage(Page[AlertView]):
    unresolved_by_level: dict[str, int] = Field(default_factory=dict)


class GetAlerts(
    Command,
    name="get-alerts",
    owner=AN,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=GetAlertsRequest,
    response=AlertPage,
):
    """Alerts, newest first, by level, service, account and whether they are dismissed."""


class DismissAlertRequest(Request):
    alert_id: str = Field(
        min_length=1,
        max_length=128,
        validation_alias=AliasChoices("alertId", "alert_id", "id"),
        serialization_alias="alertId",
    )
    note: str | None = Field(None, max_length=500)


class DismissAlert(
    Command,
    name="dismiss-alert",
    owner=AN,
    domain=SYSTEM,
    role=Role.OPERATOR,
    request=DismissAlertRequest,
    response=AlertView,
):
    """Mark one alert handled; a new occurrence raises a new alert."""


class ClearAlertsRequest(Confirmed):
    DESTROYS: ClassVar[str] = "deletes (or dismisses) every matching alert"

    mode: Literal["delete", "dismiss"] = Field(
        "delete", description="Delete matching alerts, or only dismiss them."
    )
    dismissed_only: bool = Field(False, description="Only alerts already dismissed.")
    level: list[AlertLevel] | None = None
    before: datetime | None = Field(None, description="Only alerts last seen before this time.")


class ClearAlerts(
    Command,
    name="clear-alerts",
    owner=AN,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=ClearAlertsRequest,
    response=Ack,
):
    """Delete (or dismiss) alerts in bulk; `affected` says how many."""


# --- logs ----------------------------------------------------------------------------------------


class LogFilters(Request):
    level: list[LogLevel] | None = Field(
        None, validation_alias=AliasChoices("level", "type"), serialization_alias="level"
    )
    min_level: LogLevel | None = None
    service: list[Service] | None = None
    account_id: OptId | None = None
    request_id: OptId | None = None
    trace_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    text: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("text", "search"),
        serialization_alias="text",
    )
    since: datetime | None = Field(
        None, validation_alias=AliasChoices("since", "startDate"), serialization_alias="since"
    )
    until: datetime | None = Field(
        None, validation_alias=AliasChoices("until", "endDate"), serialization_alias="until"
    )

    @field_validator("since", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @field_validator("level", mode="before")
    @classmethod
    def _one_level(cls, value: Any) -> Any:
        # The earlier client sent one `type`; accept a single level as a list of one.
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _order(self) -> LogFilters:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class GetLogsRequest(LogFilters, PageRequest):
    order: Literal["asc", "desc"] = "desc"


class GetLogs(
    Command,
    name="get-logs",
    owner=AN,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=GetLogsRequest,
    response=Page[LogEntryView],
):
    """Structured logs of every service, filtered by level, service, account, text and time."""


class ExportLogsRequest(LogFilters):
    format: ExportFormat = "csv"
    max_rows: int = Field(100_000, ge=1, le=1_000_000)


class ExportLogs(
    Command,
    name="export-logs",
    owner=AN,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=ExportLogsRequest,
    response=ExportFile,
    timeout=120,
):
    """Export filtered logs as CSV, XLSX or JSON."""


class ClearLogsRequest(Confirmed):
    """Say which logs go: older than `keepDays`, before a time, or `all`."""

    DESTROYS: ClassVar[str] = "deletes every matching log entry"

    keep_days: int | None = Field(None, ge=0, le=3650, description="Keep the last N days; 0 keeps nothing.")
    before: datetime | None = None
    all: bool = False
    service: list[Service] | None = None
    level: list[LogLevel] | None = None

    @model_validator(mode="after")
    def _one_cut(self) -> ClearLogsRequest:
        given = sum([self.keep_days is not None, self.before is not None, self.all])
        if given != 1:
            raise ValueError("give exactly one of keepDays, before, all")
        return self

    def cutoff(self, now: datetime) -> datetime | None:
        """Logs strictly older than this go; None means every log matching the filters."""
        if self.before is not None:
            return self.before
        if self.keep_days is not None:
            return now - timedelta(days=self.keep_days)
        return None


class ClearLogs(
    Command,
    name="clear-logs",
    owner=AN,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=ClearLogsRequest,
    response=Ack,
):
    """Delete logs past a retention, before a time, or all (optionally for some services or levels)."""


# --- performance ---------------------------------------------------------------------------------


class PerformanceRequest(TimeRange):
    """`until` defaults to now and `since` to one hour before it; at most 31 days."""

    services: list[Service] | None = None
    top: int = Field(10, ge=1, le=100, description="Slowest operations listed.")

    @field_validator("since", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _window(self) -> PerformanceRequest:
        if self.since and self.until:
            if self.since >= self.until:
                raise ValueError("since must be before until")
            if self.until - self.since > timedelta(days=31):
                raise ValueError("the window may span at most 31 days")
        return self


class LatencySummary(Response):
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class OperationStats(Response):
    name: str = Field(description="A command, internal call, event or Telegram method name.")
    kind: Literal["command", "rpc", "event", "telegram"]
    service: Service
    count: int
    errors: int = 0
    error_rate: float = 0.0
    throughput_per_minute: float = 0.0
    latency: LatencySummary = Field(default_factory=LatencySummary)


class ServicePerformance(Response):
    service: Service
    replicas: int = 0
    up: bool = True
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    throughput_per_second: float = 0.0
    latency: LatencySummary = Field(default_factory=LatencySummary)
    operations: list[OperationStats] = Field(default_factory=list)
    figures: dict[str, float] = Field(
        default_factory=dict,
        description="Service-specific gauges: accounts_connected, queue_depth, flood_wait_seconds, ai_tokens…",
    )


class PerformanceReport(Response):
    since: datetime
    until: datetime
    services: list[ServicePerformance]
    slowest: list[OperationStats] = Field(default_factory=list, description="By p95 latency.")
    generated_at: datetime


class GetPerformance(
    Command,
    name="get-performance",
    owner=AN,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=PerformanceRequest,
    response=PerformanceReport,
):
    """Per-service latency (p50/p95/p99), throughput and error rates over a window."""
