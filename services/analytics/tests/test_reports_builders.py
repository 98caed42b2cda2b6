"""Report builders on small fakes of the stats, alerts and performance query objects: the requests they
make, the row layout of each kind, JSON holding the whole response, refused filters, headlines."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_analytics.reports.builders import ReportSources, compute, headline, render, summary_text, table
from tgm_contracts import Service
from tgm_contracts.commands import analytics as A
from tgm_contracts.models.analytics import AlertView, WindowView
from tgm_runtime import DomainError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

UNTIL = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=2)
WIN = WindowView(since=SINCE, until=UNTIL, bucket="day", timezone="UTC")
STARTS = [SINCE, SINCE + timedelta(days=1)]


class FakeStats:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def dashboard(self, req: A.DashboardRequest) -> A.DashboardStats:
        self.calls.append(("dashboard", req))
        return A.DashboardStats(
            window=WIN,
            accounts=A.AccountFigures(total=3, by_state={"active": 2, "banned": 1}, connected=2),
            messages=A.MessageTotals(sent=10, received=4, failed=1, replies_received=2, reply_rate=0.2),
            leads=A.LeadFigures(new=2, total=9, converted=1),
            ai=A.AiFigures(replies=5),
            unresolved_alerts=2,
            critical_alerts=1,
            buckets=[A.DashboardBucket(start=s, sent=5, received=2) for s in STARTS],
            generated_at=UNTIL,
        )

    async def messages(self, req: A.MessageStatsRequest) -> A.MessageStats:
        self.calls.append(("messages", req))
        return A.MessageStats(
            window=WIN,
            totals=A.MessageTotals(
                sent=7, received=3, failed=2, flood_waits=1, replies_received=1, reply_rate=1 / 7
            ),
            buckets=[
                A.MessageBucket(start=STARTS[0], sent=4, received=1, failed=2, flood_waits=1),
                A.MessageBucket(start=STARTS[1], sent=3, received=2),
            ],
            by_account=[A.AccountMessageFigures(account_id="a1", sent=7)],
            failures_by_error={"PEER_FLOOD": 2},
        )

    async def users(self, req: A.UserStatsRequest) -> A.UserStats:
        self.calls.append(("users", req))
        return A.UserStats(
            window=WIN,
            totals=A.UserTotals(new_users=4, active_users=3, replied_users=1, opted_out=1),
            buckets=[A.UserBucket(start=s, new_users=2) for s in STARTS],
        )

    async def groups(self, req: A.GroupStatsRequest) -> A.GroupStats:
        self.calls.append(("groups", req))
        return A.GroupStats(
            window=WIN,
            totals=A.GroupTotals(groups_watched=2, messages=30, keyword_matches=4, leads=1),
            buckets=[],
            groups=[
                A.GroupActivity(chat_id=-1001, title="Alpha", messages=20, keyword_matches=3),
                A.GroupActivity(chat_id=-1002, title="Beta", messages=10, keyword_matches=1, leads=1),
            ],
        )

    async def conversions(self, req: A.ConversionStatsRequest) -> A.ConversionStats:
        self.calls.append(("conversions", req))
        return A.ConversionStats(
            window=WIN,
            stages=[
                A.StageCount(stage="new", count=10),
                A.StageCount(stage="converted", count=2, rate_from_previous=0.2),
            ],
            leads=10,
            converted=2,
            conversion_rate=0.2,
            buckets=[],
            by_campaign=[A.CampaignConversion(campaign_id="c1", leads=6, converted=2, conversion_rate=1 / 3)],
        )


class FakeAlerts:
    def __init__(self, n: int) -> None:
        self.items = [
            AlertView(
                id=f"al{i:04d}",
                level="critical" if i % 2 else "warning",
                code="account.banned",
                title="t",
                message=f"m{i}",
                service=Service.TG_SESSION,
                account_id="a1",
                count=1,
                first_seen_at=UNTIL - timedelta(minutes=i),
                last_seen_at=UNTIL - timedelta(minutes=i),
            )
            for i in range(n)
        ]
        self.requests: list[A.GetAlertsRequest] = []

    async def list(self, req: A.GetAlertsRequest) -> A.AlertPage:
        self.requests.append(req)
        start = int(req.cursor or 0)
        chunk = self.items[start : start + req.limit]
        nxt = start + req.limit
        return A.AlertPage(
            items=chunk,
            next_cursor=str(nxt) if nxt < len(self.items) else None,
            total=len(self.items),
            unresolved_by_level={"critical": 1},
        )


class FakePerformance:
    async def report(self, req: A.PerformanceRequest) -> A.PerformanceReport:
        op = A.OperationStats(
            name="send-message",
            kind="command",
            service=Service.CAMPAIGN,
            count=10,
            errors=1,
            error_rate=0.1,
            latency=A.LatencySummary(p95_ms=30.0),
        )
        return A.PerformanceReport(
            since=req.since or SINCE,
            until=req.until or UNTIL,
            services=[
                A.ServicePerformance(
                    service=Service.CAMPAIGN, requests=10, errors=1, error_rate=0.1, operations=[op],
                    latency=A.LatencySummary(p95_ms=25.0),
                )
            ],
            generated_at=UNTIL,
        )  # fmt: skip


def state(alerts: int = 3) -> ReportSources:
    return ReportSources(stats=FakeStats(), alerts=FakeAlerts(alerts), performance=FakePerformance())


async def make(kind: str, st: ReportSources, **filters: Any) -> Any:
    return await compute(
        kind, st, since=SINCE, until=UNTIL, bucket="day", timezone="Asia/Taipei", filters=filters
    )


def csv_rows(file: Any) -> list[list[str]]:
    text = base64.b64decode(file.content_base64).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


async def test_messages_rows_are_buckets_then_totals_and_filters_pass_through() -> None:
    st = state()
    resp = await make("messages", st, account_id="a1", campaign_id="c1")
    [(name, req)] = st.stats.calls
    assert name == "messages" and req.account_id == "a1" and req.campaign_id == "c1"
    assert (req.since, req.until, req.bucket, req.timezone) == (SINCE, UNTIL, "day", "Asia/Taipei")
    rows = csv_rows(render("messages", resp, "csv", "messages-report"))
    assert rows[0] == [
        "bucket_start",
        "sent",
        "received",
        "failed",
        "flood_waits",
        "replies_received",
        "reply_rate",
    ]
    assert rows[1][:5] == [STARTS[0].isoformat(), "4", "1", "2", "1"]
    assert rows[2][:3] == [STARTS[1].isoformat(), "3", "2"]
    assert rows[3][:6] == ["total", "7", "3", "2", "1", "1"] and float(rows[3][6]) == pytest.approx(1 / 7)
    assert len(rows) == 4


async def test_json_export_holds_the_whole_response() -> None:
    resp = await make("messages", state())
    file = render("messages", resp, "json", "messages-report")
    body = json.loads(base64.b64decode(file.content_base64))
    assert body["totals"]["sent"] == 7 and body["byAccount"][0]["accountId"] == "a1"
    assert body["failuresByError"] == {"PEER_FLOOD": 2} and len(body["buckets"]) == 2
    assert file.mime_type == "application/json" and file.filename.endswith(".json")


async def test_xlsx_export_has_the_same_table() -> None:
    from openpyxl import load_workbook

    resp = await make("groups", state())
    file = render("groups", resp, "xlsx", "groups-report")
    wb = load_workbook(io.BytesIO(base64.b64decode(file.content_base64)))
    rows = [list(r) for r in wb.active.iter_rows(values_only=True)]
    assert rows[0][:3] == ["chat_id", "title", "messages"]
    assert rows[1][:3] == [-1001, "Alpha", 20] and rows[3][0] == "total" and file.rows == 3


async def test_every_kind_has_a_flat_table() -> None:
    st = state()
    cols, rows = table("dashboard", await make("dashboard", st))
    assert cols == ["section", "metric", "value"]
    assert ["accounts", "state:banned", 1] in rows and ["messages", "reply_rate", 0.2] in rows
    assert [STARTS[1].isoformat(), "sent", 5] in rows
    cols, rows = table("users", await make("users", st, chat_id=5))
    assert rows[-1][:5] == ["total", 4, 3, 1, 1] and len(rows) == 3
    cols, rows = table("conversions", await make("conversions", st))
    assert [r[0] for r in rows] == ["stage", "stage", "campaign", "total"]
    assert rows[2][:4] == ["campaign", "c1", 6, 2]
    cols, rows = table("performance", await make("performance", st))
    assert rows[0][:4] == ["campaign", "", "service", 10] and rows[1][:3] == [
        "campaign",
        "send-message",
        "command",
    ]
    assert rows[1][cols.index("p95_ms")] == 30.0
    await make("groups", st, chat_id=-1001, account_id="a2")
    req = st.stats.calls[-1][1]
    assert req.chat_ids == [-1001] and req.account_id == "a2"


async def test_alerts_report_reads_every_page_one_row_per_alert() -> None:
    st = state(alerts=1203)
    resp = await make("alerts", st, account_id="a1")
    assert len(st.alerts.requests) == 3 and all(r.account_id == "a1" for r in st.alerts.requests)
    assert st.alerts.requests[0].since == SINCE and st.alerts.requests[0].until == UNTIL
    cols, rows = table("alerts", resp)
    assert len(rows) == 1203 and cols[:3] == ["id", "level", "code"]
    assert rows[0][0] == "al0000" and rows[0][cols.index("service")] == "tg-session"
    assert headline("alerts", resp) == ["Alerts: 1203 (601 critical, 602 warning)"]


async def test_refused_filters_missing_features_and_bad_windows() -> None:
    st = state()
    for kind, filters in (
        ("dashboard", {"campaign_id": "c1"}),
        ("performance", {"account_id": "a"}),
        ("groups", {"campaign_id": "c"}),
    ):
        with pytest.raises(DomainError) as exc:
            await make(kind, st, **filters)
        assert exc.value.code.value == "VALIDATION_ERROR" and "does not filter by" in exc.value.message
    with pytest.raises(DomainError) as exc:
        await compute(
            "messages", ReportSources(), since=SINCE, until=UNTIL, bucket="day", timezone=None, filters={}
        )
    assert exc.value.code.value == "UNAVAILABLE"
    with pytest.raises(DomainError) as exc:
        await compute(
            "performance",
            st,
            since=UNTIL - timedelta(days=40),
            until=UNTIL,
            bucket="day",
            timezone=None,
            filters={},
        )
    assert exc.value.code.value == "VALIDATION_ERROR"


async def test_summary_text_names_the_report_window_and_figures() -> None:
    resp = await make("messages", state())
    text = summary_text(
        name="Daily sends",
        kind="messages",
        since=SINCE,
        until=UNTIL,
        timezone="Asia/Taipei",
        response=resp,
        report_id="rp_1",
    )
    lines = text.splitlines()
    assert lines[0] == "Report: Daily sends (messages)"
    assert lines[1] == "Window: 2026-05-02 08:00 – 2026-05-04 08:00 Asia/Taipei"
    assert "Sent 7, received 3, failed 2, flood waits 1" in text and "14.3%" in text
    assert lines[-1] == "File: export-report reportId=rp_1"
    dash = headline("dashboard", await make("dashboard", state()))
    assert dash[0] == "Accounts: 3 (2 connected)" and "2 unresolved (1 critical)" in dash[-1]
