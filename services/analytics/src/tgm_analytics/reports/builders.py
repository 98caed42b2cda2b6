"""Report kinds: where each one's figures come from, its flat table, and its headline.

Every report is computed from the use cases of the other domains (`ReportSources`: stats, alerts,
performance; see /work/notes/analytics.md), never from their collections.
CSV and XLSX hold the table below; JSON holds the whole response object.

Tables (one header row, then):
- dashboard: `section, metric, value` rows — the summary figures, then each bucket's figures with
  the bucket start as section;
- messages / users: one row per bucket, then a `total` row (which also carries the figures that only
  exist for the whole window, e.g. reply rate, opt-outs);
- groups: one row per group (most active first), then a `total` row;
- conversions: the funnel stages, then one row per campaign, then a `total` row;
- performance: per service a summary row (operation empty), then its operations;
- alerts: one row per alert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from tgm_contracts import Role, validation_details
from tgm_contracts.commands import analytics as analytics_cmd
from tgm_contracts.models.analytics import ExportFile
from tgm_runtime import Invalid, Unavailable
from tgm_runtime.exports import Exports, export_file

from .timing import zone

#: The response model of each report kind (also how a stored report's data is read back).
RESPONSES: dict[str, type[BaseModel]] = {
    "dashboard": analytics_cmd.DashboardStats,
    "messages": analytics_cmd.MessageStats,
    "users": analytics_cmd.UserStats,
    "groups": analytics_cmd.GroupStats,
    "conversions": analytics_cmd.ConversionStats,
    "performance": analytics_cmd.PerformanceReport,
    "alerts": analytics_cmd.AlertPage,
}

#: Scope filters each kind understands; anything else is refused rather than silently ignored.
FILTERS: dict[str, frozenset[str]] = {
    "dashboard": frozenset(),
    "messages": frozenset({"account_id", "campaign_id", "chat_id"}),
    "users": frozenset({"account_id", "campaign_id", "chat_id"}),
    "groups": frozenset({"account_id", "chat_id"}),
    "conversions": frozenset({"account_id", "campaign_id", "chat_id"}),
    "performance": frozenset(),
    "alerts": frozenset({"account_id"}),
}

#: At most this many alerts go into one alerts report.
MAX_ALERT_ROWS = 20_000


def check_filters(kind: str, filters: dict[str, Any]) -> None:
    given = {k for k, v in filters.items() if v is not None}
    extra = sorted(to_camel(k) for k in given - FILTERS[kind])
    if extra:
        allowed = ", ".join(sorted(to_camel(k) for k in FILTERS[kind])) or "none"
        raise Invalid(
            f"the {kind} report does not filter by {', '.join(extra)} (it takes: {allowed})",
            {"report": kind, "unsupported": extra},
        )


class StatsSource(Protocol):
    async def dashboard(self, req: analytics_cmd.DashboardRequest) -> analytics_cmd.DashboardStats: ...
    async def messages(self, req: analytics_cmd.MessageStatsRequest) -> analytics_cmd.MessageStats: ...
    async def users(self, req: analytics_cmd.UserStatsRequest) -> analytics_cmd.UserStats: ...
    async def groups(self, req: analytics_cmd.GroupStatsRequest) -> analytics_cmd.GroupStats: ...
    async def conversions(
        self, req: analytics_cmd.ConversionStatsRequest
    ) -> analytics_cmd.ConversionStats: ...


class AlertSource(Protocol):
    async def list(self, req: analytics_cmd.GetAlertsRequest) -> analytics_cmd.AlertPage: ...


class PerformanceSource(Protocol):
    async def report(self, req: analytics_cmd.PerformanceRequest) -> analytics_cmd.PerformanceReport: ...


@dataclass(frozen=True)
class ReportSources:
    """The use cases reports read; one left out makes its reports UNAVAILABLE (tests build a part)."""

    stats: StatsSource | None = None
    alerts: AlertSource | None = None
    performance: PerformanceSource | None = None


S = TypeVar("S")


def _source(source: S | None, name: str) -> S:
    if source is None:
        raise Unavailable(f"the {name} feature of analytics is not running; this report cannot be made")
    return source


def _build(model: type[BaseModel], **fields: Any) -> Any:
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise Invalid(
            f"this window does not fit the report: {exc.errors()[0]['msg']}", validation_details(exc)
        ) from None


def _as(model: type[BaseModel], value: Any) -> Any:
    return value if isinstance(value, model) else model.model_validate(value)


async def compute(
    kind: str,
    sources: ReportSources,
    *,
    since: datetime,
    until: datetime,
    bucket: str,
    timezone: str | None,
    filters: dict[str, Any],
) -> BaseModel:
    """The report's response object for `[since, until)`."""
    check_filters(kind, filters)
    window = {"since": since, "until": until, "bucket": bucket, "timezone": timezone}
    account, campaign, chat = filters.get("account_id"), filters.get("campaign_id"), filters.get("chat_id")
    scope = {"account_id": account, "campaign_id": campaign, "chat_id": chat}
    out: BaseModel
    if kind == "dashboard":
        out = await _source(sources.stats, "stats").dashboard(
            _build(analytics_cmd.DashboardRequest, **window)
        )
    elif kind == "messages":
        out = await _source(sources.stats, "stats").messages(
            _build(analytics_cmd.MessageStatsRequest, **window, **scope)
        )
    elif kind == "users":
        out = await _source(sources.stats, "stats").users(
            _build(analytics_cmd.UserStatsRequest, **window, **scope)
        )
    elif kind == "groups":
        req = _build(
            analytics_cmd.GroupStatsRequest,
            **window,
            account_id=account,
            chat_ids=[chat] if chat is not None else None,
        )
        out = await _source(sources.stats, "stats").groups(req)
    elif kind == "conversions":
        out = await _source(sources.stats, "stats").conversions(
            _build(analytics_cmd.ConversionStatsRequest, **window, **scope)
        )
    elif kind == "performance":
        out = await _source(sources.performance, "performance").report(
            _build(analytics_cmd.PerformanceRequest, since=since, until=until)
        )
    elif kind == "alerts":
        out = await _all_alerts(_source(sources.alerts, "alerts"), since, until, account)
    else:  # the contract's Literal makes this unreachable from the wire
        raise Invalid(f"unknown report kind {kind!r}")
    return _as(RESPONSES[kind], out)


async def _all_alerts(
    source: AlertSource, since: datetime, until: datetime, account: str | None
) -> analytics_cmd.AlertPage:
    """Every alert last seen in the window, newest first (all pages of get-alerts)."""
    items: list[Any] = []
    cursor: str | None = None
    by_level: dict[str, int] = {}
    while True:
        page = _as(
            analytics_cmd.AlertPage,
            await source.list(
                _build(
                    analytics_cmd.GetAlertsRequest,
                    since=since,
                    until=until,
                    account_id=account,
                    cursor=cursor,
                    limit=500,
                )
            ),
        )
        items.extend(page.items)
        by_level = page.unresolved_by_level
        cursor = page.next_cursor
        if cursor is None or len(items) >= MAX_ALERT_ROWS:
            break
    return analytics_cmd.AlertPage(
        items=items[:MAX_ALERT_ROWS], total=len(items), unresolved_by_level=by_level
    )


# --- tables ----------------------------------------------------------------------------------------

Table = tuple[list[str], list[list[Any]]]


def _dashboard(r: analytics_cmd.DashboardStats) -> Table:
    rows: list[list[Any]] = [
        ["accounts", "total", r.accounts.total],
        ["accounts", "connected", r.accounts.connected],
        *[["accounts", f"state:{k}", v] for k, v in sorted(r.accounts.by_state.items())],
        ["messages", "sent", r.messages.sent],
        ["messages", "received", r.messages.received],
        ["messages", "failed", r.messages.failed],
        ["messages", "flood_waits", r.messages.flood_waits],
        ["messages", "replies_received", r.messages.replies_received],
        ["messages", "reply_rate", r.messages.reply_rate],
        ["leads", "new", r.leads.new],
        ["leads", "total", r.leads.total],
        ["leads", "converted", r.leads.converted],
        ["ai", "replies", r.ai.replies],
        ["ai", "tokens", r.ai.tokens],
        ["ai", "handoffs", r.ai.handoffs],
        ["groups", "joined", r.groups_joined],
        ["groups", "members_extracted", r.members_extracted],
        ["alerts", "unresolved", r.unresolved_alerts],
        ["alerts", "critical", r.critical_alerts],
    ]
    for b in r.buckets:
        start = b.start.isoformat()
        rows += [[start, m, getattr(b, m)] for m in ("sent", "received", "failed", "new_leads")]
    return ["section", "metric", "value"], rows


def _messages(r: analytics_cmd.MessageStats) -> Table:
    cols = ["bucket_start", "sent", "received", "failed", "flood_waits", "replies_received", "reply_rate"]
    rows: list[list[Any]] = [
        [b.start, b.sent, b.received, b.failed, b.flood_waits, None, None] for b in r.buckets
    ]
    t = r.totals
    rows.append(["total", t.sent, t.received, t.failed, t.flood_waits, t.replies_received, t.reply_rate])
    return cols, rows


def _users(r: analytics_cmd.UserStats) -> Table:
    cols = [
        "bucket_start",
        "new_users",
        "active_users",
        "replied_users",
        "opted_out",
        "blacklisted",
        "collected",
    ]
    rows: list[list[Any]] = [
        [b.start, b.new_users, b.active_users, b.replied_users, None, None, None] for b in r.buckets
    ]
    t = r.totals
    rows.append(
        ["total", t.new_users, t.active_users, t.replied_users, t.opted_out, t.blacklisted, t.collected]
    )
    return cols, rows


def _groups(r: analytics_cmd.GroupStats) -> Table:
    cols = ["chat_id", "title", "messages", "active_users", "keyword_matches", "leads", "members_joined"]
    rows: list[list[Any]] = [
        [g.chat_id, g.title, g.messages, g.active_users, g.keyword_matches, g.leads, g.members_joined]
        for g in r.groups
    ]
    t = r.totals
    rows.append(
        [
            "total",
            f"{t.groups_watched} watched",
            t.messages,
            None,
            t.keyword_matches,
            t.leads,
            t.members_joined,
        ]
    )
    return cols, rows


def _conversions(r: analytics_cmd.ConversionStats) -> Table:
    cols = ["section", "name", "count", "converted", "rate"]
    rows: list[list[Any]] = [["stage", s.stage, s.count, None, s.rate_from_previous] for s in r.stages]
    rows += [["campaign", c.campaign_id, c.leads, c.converted, c.conversion_rate] for c in r.by_campaign]
    rows.append(["total", "leads", r.leads, r.converted, r.conversion_rate])
    return cols, rows


def _performance(r: analytics_cmd.PerformanceReport) -> Table:
    cols = [
        "service", "operation", "kind", "count", "errors", "error_rate", "throughput",
        "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    ]  # fmt: skip

    def lat(x: analytics_cmd.LatencySummary) -> list[Any]:
        return [x.avg_ms, x.p50_ms, x.p95_ms, x.p99_ms, x.max_ms]

    rows: list[list[Any]] = []
    for s in r.services:
        rows.append(
            [
                s.service.value,
                "",
                "service",
                s.requests,
                s.errors,
                s.error_rate,
                s.throughput_per_second,
                *lat(s.latency),
            ]
        )
        rows += [
            [
                s.service.value,
                o.name,
                o.kind,
                o.count,
                o.errors,
                o.error_rate,
                o.throughput_per_minute,
                *lat(o.latency),
            ]
            for o in s.operations
        ]
    return cols, rows


ALERT_COLUMNS = [
    "id", "level", "code", "title", "message", "service", "account_id", "subject", "count",
    "first_seen_at", "last_seen_at", "dismissed", "dismissed_at", "dismissed_by", "note",
]  # fmt: skip


def _alert_row(a: Any) -> list[Any]:
    service = a.service.value if a.service else None
    return [
        a.id, a.level, a.code, a.title, a.message, service, a.account_id, a.subject, a.count,
        a.first_seen_at, a.last_seen_at, a.dismissed, a.dismissed_at, a.dismissed_by, a.note,
    ]  # fmt: skip


def _alerts(r: analytics_cmd.AlertPage) -> Table:
    return list(ALERT_COLUMNS), [_alert_row(a) for a in r.items]


TABLES: dict[str, Callable[[Any], Table]] = {
    "dashboard": _dashboard,
    "messages": _messages,
    "users": _users,
    "groups": _groups,
    "conversions": _conversions,
    "performance": _performance,
    "alerts": _alerts,
}


def table(kind: str, response: BaseModel) -> Table:
    return TABLES[kind](response)


def render(kind: str, response: BaseModel, fmt: str, name: str) -> ExportFile:
    """The report as an inline file (a scheduled report's delivery carries the bytes): the table for
    CSV/XLSX, the whole response for JSON."""
    columns, rows = table(kind, response)
    payload = response.model_dump(mode="json", by_alias=True) if fmt == "json" else None
    return export_file(fmt, columns, rows, name=name, sheet=kind, payload=payload)  # type: ignore[arg-type]


async def render_to(
    exports: Exports, role: Role, kind: str, response: BaseModel, fmt: str, name: str
) -> ExportFile:
    """The report as a file for a caller: inline when small, else in the export store (gateway URL)."""
    columns, rows = table(kind, response)
    payload = response.model_dump(mode="json", by_alias=True) if fmt == "json" else None
    return await exports.file(fmt, columns, rows, name=name, sheet=kind, payload=payload, role=role)  # type: ignore[arg-type]


# --- headlines (the short text a Telegram recipient gets) ----------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


#: The headline of the kinds whose figures are one `totals` object, by its field names (rates as %).
_TOTALS_HEADLINES: dict[str, tuple[str, ...]] = {
    "messages": (
        "Sent {sent}, received {received}, failed {failed}, flood waits {flood_waits}",
        "Replies {replies_received} (reply rate {reply_rate})",
    ),
    "users": (
        "New users {new_users}, active {active_users}, replied {replied_users}",
        "Opted out {opted_out}, blacklisted {blacklisted}, collected {collected}",
    ),
    "groups": (
        "Groups watched {groups_watched}, joined {groups_joined}, left {groups_left}",
        "Messages {messages}, keyword matches {keyword_matches}, leads {leads}",
    ),
}


def headline(kind: str, r: Any) -> list[str]:
    """A few lines with the figures that matter most for this kind."""
    if kind == "dashboard":
        m = r.messages
        return [
            f"Accounts: {r.accounts.total} ({r.accounts.connected} connected)",
            f"Messages: {m.sent} sent, {m.received} received, {m.failed} failed, reply rate {_pct(m.reply_rate)}",
            f"Leads: {r.leads.new} new, {r.leads.converted} converted",
            f"Alerts: {r.unresolved_alerts} unresolved ({r.critical_alerts} critical)",
        ]
    if kind in _TOTALS_HEADLINES:
        figures = {k: _pct(v) if k.endswith("_rate") else v for k, v in dict(r.totals).items()}
        return [line.format(**figures) for line in _TOTALS_HEADLINES[kind]]
    if kind == "conversions":
        return [f"Leads {r.leads}, converted {r.converted} ({_pct(r.conversion_rate)})"]
    if kind == "performance":
        lines = []
        for s in r.services[:6]:
            p95 = "n/a" if s.latency.p95_ms is None else f"{s.latency.p95_ms:.0f} ms"
            state = "up" if s.up else "DOWN"
            lines.append(
                f"{s.service.value}: {state}, {s.requests} requests, errors {_pct(s.error_rate)}, p95 {p95}"
            )
        return lines or ["No samples in this window"]
    if kind == "alerts":
        levels: dict[str, int] = {}
        for a in r.items:
            levels[a.level] = levels.get(a.level, 0) + 1
        parts = [f"{levels[lv]} {lv}" for lv in ("critical", "error", "warning", "info") if lv in levels]
        return [f"Alerts: {len(r.items)}" + (f" ({', '.join(parts)})" if parts else "")]
    return []


def summary_text(
    *, name: str, kind: str, since: datetime, until: datetime, timezone: str, response: Any, report_id: str
) -> str:
    """The Telegram message of a scheduled report: name, window, headline figures, how to fetch it."""
    fmt = "%Y-%m-%d %H:%M"
    tz = zone(timezone)
    lines: Sequence[str] = [
        f"Report: {name} ({kind})",
        f"Window: {since.astimezone(tz).strftime(fmt)} – {until.astimezone(tz).strftime(fmt)} {timezone}",
        *headline(kind, response),
        f"File: export-report reportId={report_id}",
    ]
    return "\n".join(lines)[:4000]
