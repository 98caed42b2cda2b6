"""Reports through the real analytics runtime (in-memory broker, real database, the real stats, alerts
and telemetry features): exports computed from published events, schedules saved, run, stored, fetched,
delivered to a loopback webhook and a fake tg-session, claimed once by two schedulers, pruned."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from faststream.nats import JStream, NatsMessage
from tgm_analytics.reports.service import ReportService
from tgm_contracts import events_session as ts
from tgm_contracts.commands.analytics import ExportReport, GetAlerts, ScheduleReport
from tgm_contracts.rpc_session import Send
from tgm_runtime.testing import RuntimeClient, runtime_client

from .conftest import analytics, eventually

pytestmark = [pytest.mark.component, pytest.mark.timeout(90)]

PUBLISHED: list[tuple[str, dict[str, Any]]] = []
SENT: list[dict[str, Any]] = []


async def _collect(msg: NatsMessage) -> None:
    PUBLISHED.append((msg.raw_message.subject.split(".")[3], json.loads(msg.body)))


async def _fake_send(msg: NatsMessage) -> dict[str, Any]:
    """tg-session's holder of account a1, as far as reports need it."""
    body = json.loads(msg.body)
    SENT.append(body)
    return {
        "ok": True,
        "data": {
            "accountId": "a1",
            "jobId": body["jobId"],
            "messageId": len(SENT),
            "peerId": 42,
            "sentAt": datetime.now(UTC).isoformat(),
        },
    }


def ready(report_id: str | None = None) -> list[dict[str, Any]]:
    return [
        b for n, b in PUBLISHED if n == "report-ready" and (report_id is None or b["reportId"] == report_id)
    ]


class Hook:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    thread = threading.Thread(target=h.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield h
    finally:
        h.server.shutdown()
        h.server.server_close()


@pytest.fixture
async def client(mongo_server: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RuntimeClient]:
    monkeypatch.setenv("TGM_ANALYTICS_PROBE_SECONDS", "0")
    monkeypatch.setenv("TGM_ANALYTICS_SCHEDULER_SECONDS", "0")  # ticks are run by hand
    monkeypatch.setenv("TGM_ANALYTICS_REPORTS_KEEP", "2")
    PUBLISHED.clear()
    SENT.clear()
    runtime = analytics()
    runtime.broker.subscriber("tgm.analytics.evt.*.v1", stream=JStream("TGM_EVENTS", declare=False))(_collect)
    runtime.broker.subscriber(Send.subject("a1"))(_fake_send)
    async with runtime_client(runtime, mongo_server.uri) as c:
        yield c


NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
T0 = NOW - timedelta(hours=5)
WINDOW = {"since": T0.isoformat(), "until": NOW.isoformat(), "bucket": "hour", "timezone": "UTC"}


async def traffic(client: RuntimeClient) -> None:
    for i, minutes in enumerate((10, 20, 70)):
        at = T0 + timedelta(minutes=minutes)
        await client.runtime.publish(
            ts.MessageSent(
                account_id="a1",
                chat_kind="private",
                chat_id=100 + i,
                message_id=i + 1,
                sent_at=at,
                occurred_at=at,
            )
        )
    at = T0 + timedelta(minutes=80)
    await client.runtime.publish(
        ts.MessageReceived(
            account_id="a1",
            chat_kind="private",
            chat_id=100,
            message_id=9,
            sender_id=100,
            date=at,
            occurred_at=at,
        )
    )


def rows_of(file: dict[str, Any]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(base64.b64decode(file["contentBase64"]).decode("utf-8-sig"))))


async def test_export_now_from_the_real_features(client: RuntimeClient) -> None:
    await traffic(client)
    file = await client.data(ExportReport, {"report": "messages", **WINDOW})
    assert (
        file["format"] == "csv" and file["filename"].startswith("messages-report-") and not file["truncated"]
    )
    rows = rows_of(file)
    assert rows[0][:3] == ["bucket_start", "sent", "received"]
    assert len(rows) == 1 + 5 + 1  # header, five hour buckets, totals
    assert rows[1][:3] == [T0.isoformat(), "2", "0"] and rows[2][:3] == [
        (T0 + timedelta(hours=1)).isoformat(),
        "1",
        "1",
    ]
    assert rows[-1][:4] == ["total", "3", "1", "0"]

    as_json = await client.data(ExportReport, {"report": "messages", "format": "json", **WINDOW})
    body = json.loads(base64.b64decode(as_json["contentBase64"]))
    assert body["totals"]["sent"] == 3 and body["window"]["bucket"] == "hour" and len(body["buckets"]) == 5

    filtered = await client.data(ExportReport, {"report": "messages", "accountId": "nobody", **WINDOW})
    assert rows_of(filtered)[-1][:3] == ["total", "0", "0"]

    await client.runtime.publish(
        ts.AccountStatusChanged(account_id="a1", state="banned", previous_state="active")
    )
    alerts = rows_of(await client.data(ExportReport, {"report": "alerts"}))
    assert len(alerts) == 2 and alerts[1][1:3] == ["critical", "account.banned"]
    xlsx = await client.data(ExportReport, {"report": "dashboard", "format": "xlsx", **WINDOW})
    assert xlsx["mimeType"].startswith("application/vnd.openxmlformats") and xlsx["rows"] > 10
    perf = await client.data(ExportReport, {"report": "performance", "format": "json"})
    assert "services" in json.loads(base64.b64decode(perf["contentBase64"]))


async def test_export_bad_input(client: RuntimeClient) -> None:
    for bad in (
        {},
        {"report": "messages", "reportId": "rp_x"},
        {"report": "pdfs"},
        {"report": "messages", "format": "pdf"},
        {"report": "messages", "since": NOW.isoformat(), "until": T0.isoformat()},
        {"report": "dashboard", "campaignId": "c1"},
        {"report": "performance", "since": (NOW - timedelta(days=40)).isoformat(), "until": NOW.isoformat()},
        {"reportId": "rp_x", "since": T0.isoformat()},
    ):
        reply = await client.call(ExportReport, bad)
        assert reply["error"]["code"] == "VALIDATION_ERROR", (bad, reply)
    missing = await client.call(ExportReport, {"reportId": "rp_missing"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_schedule_save_validate_update_list(client: RuntimeClient) -> None:
    base = {"name": "Daily", "report": "messages", "cron": "0 8 * * *"}
    for bad, words in (
        ({**base, "recipients": [{"kind": "tailchat", "target": "c1"}]}, "appId"),
        ({**base, "cron": "61 * * * *"}, None),
        ({**base, "cron": "0 0 30 2 *"}, None),
        ({**base, "intervalSeconds": 3600}, None),
        ({"name": "x", "report": "messages"}, None),
        ({**base, "timezone": "Mars/Olympus"}, None),
        ({**base, "intervalSeconds": 10, "cron": None}, None),
        ({**base, "report": "dashboard", "filters": {"accountId": "a1"}}, "does not filter"),
        ({**base, "recipients": [{"kind": "webhook", "target": "ftp://x"}]}, None),
        ({**base, "recipients": [{"kind": "telegram", "target": "@boss"}]}, None),
        ({"action": "run"}, None),
    ):
        reply = await client.call(ScheduleReport, bad)
        assert reply["error"]["code"] == "VALIDATION_ERROR", (bad, reply)
        if words:
            assert words in json.dumps(reply["error"]), reply

    saved = await client.data(
        ScheduleReport,
        {
            **base,
            "timezone": "Europe/Berlin",
            "window": "previous_day",
            "format": "xlsx",
            "filters": {"accountId": "a1"},
            "recipients": [{"kind": "telegram", "target": "@boss", "accountId": "a1"}],
        },
    )
    s = saved["schedule"]
    assert s["id"].startswith("rs_") and s["bucket"] == "hour" and s["filters"] == {"accountId": "a1"}
    nxt = datetime.fromisoformat(s["nextRunAt"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (nxt.hour, nxt.minute) == (8, 0) and nxt > datetime.now(UTC)
    assert s["recipients"] == [{"kind": "telegram", "target": "@boss", "accountId": "a1"}]

    changed = await client.data(
        ScheduleReport, {"scheduleId": s["id"], "intervalSeconds": 3600, "window": "last_7d"}
    )
    c = changed["schedule"]
    assert (
        c["cron"] is None and c["intervalSeconds"] == 3600 and c["bucket"] == "day" and c["name"] == "Daily"
    )
    due = datetime.fromisoformat(c["nextRunAt"]) - datetime.now(UTC)
    assert timedelta(minutes=59) < due <= timedelta(hours=1)
    off = (await client.data(ScheduleReport, {"scheduleId": s["id"], "enabled": False}))["schedule"]
    assert off["enabled"] is False and off["nextRunAt"] is None
    on = (await client.data(ScheduleReport, {"scheduleId": s["id"], "enabled": True}))["schedule"]
    assert on["nextRunAt"] is not None
    listed = await client.data(ScheduleReport, {"action": "list"})
    assert [x["id"] for x in listed["schedules"]] == [s["id"]]
    gone = await client.call(ScheduleReport, {"scheduleId": "rs_nope", "name": "x"})
    assert gone["error"]["code"] == "NOT_FOUND"


async def test_run_stores_delivers_and_fetches(client: RuntimeClient, hook: Hook) -> None:
    await traffic(client)
    saved = await client.data(
        ScheduleReport,
        {
            "name": "Ops hourly",
            "report": "messages",
            "intervalSeconds": 3600,
            "window": "last_24h",
            "recipients": [
                {"kind": "webhook", "target": f"{hook.url}/reports?key=k1"},
                {"kind": "telegram", "target": "@boss", "accountId": "a1"},
            ],
        },
    )
    sid = saved["schedule"]["id"]
    run = await client.data(ScheduleReport, {"action": "run", "scheduleId": sid})
    rid = run["reportId"]
    [evt] = await eventually(lambda: _ready(rid))
    assert evt["scheduleId"] == sid and evt["report"] == "messages" and evt["format"] == "csv"
    assert evt["delivered"] == [f"webhook:{hook.url}/reports", "telegram:@boss"] and evt["failed"] == []

    stored = await client.data(ExportReport, {"reportId": rid})
    assert (
        stored["filename"].startswith("ops-hourly-")
        and stored["sha256"] == hook.received[0]["headers"]["X-TGM-Sha256"]
    )
    assert base64.b64decode(stored["contentBase64"]) == hook.received[0]["body"]
    assert rows_of(stored)[-1][:3] == ["total", "3", "1"]
    again = await client.data(ExportReport, {"reportId": rid, "format": "json"})
    assert json.loads(base64.b64decode(again["contentBase64"]))["totals"]["sent"] == 3

    [text] = [m["text"] for m in SENT]
    assert text.startswith("Report: Ops hourly (messages)\nWindow: ") and "Sent 3, received 1" in text
    assert SENT[0]["peer"] == "@boss" and SENT[0]["jobId"] == f"report-{rid}-1"
    s = (await client.data(ScheduleReport, {"action": "list"}))["schedules"][0]
    assert s["lastReportId"] == rid and s["lastError"] is None and s["lastRunAt"]


async def test_failed_delivery_is_recorded_and_alerted(client: RuntimeClient, hook: Hook) -> None:
    sid = (
        await client.data(
            ScheduleReport,
            {
                "name": "Broken hook",
                "report": "alerts",
                "intervalSeconds": 3600,
                "recipients": [{"kind": "webhook", "target": f"{hook.url}/fail"}],
            },
        )
    )["schedule"]["id"]
    rid = (await client.data(ScheduleReport, {"action": "run", "scheduleId": sid}))["reportId"]
    [evt] = await eventually(lambda: _ready(rid))
    assert evt["delivered"] == [] and evt["failed"] == [f"webhook:{hook.url}/fail"]
    s = (await client.data(ScheduleReport, {"action": "list"}))["schedules"][0]
    assert s["lastError"] == f"webhook:{hook.url}/fail: HTTP 500" and s["lastReportId"] == rid

    async def alerted() -> list[dict[str, Any]] | None:  # the alert is raised from the event, after it
        items = (await client.data(GetAlerts, {"code": "report.delivery_failed"}))["items"]
        return items or None

    [alert] = await eventually(alerted)
    assert alert["subject"] == sid and alert["level"] == "warning" and alert["service"] == "analytics"


async def test_due_schedule_runs_once_across_two_schedulers_and_old_reports_are_pruned(
    client: RuntimeClient,
) -> None:
    mine: ReportService = client.runtime.app.reports
    other = ReportService(
        mine.sources, mine.schedules, mine.reports, mine.deliverer, client.runtime.publish, mine.spawn, keep=2
    )
    sid = (await client.data(ScheduleReport, {"name": "Tick", "report": "users", "cron": "*/5 * * * *"}))[
        "schedule"
    ]["id"]
    ids = []
    for round_ in range(3):
        now = datetime.now(UTC) + timedelta(minutes=10 * (round_ + 1))
        ran = await asyncio.gather(mine.tick(now), other.tick(now))
        assert sorted(ran) == [0, 1], ran  # exactly one scheduler ran it
        doc = await mine.schedules.get(sid)
        assert doc is not None and doc["next_run_at"] > now and doc["last_run_at"] is not None
        ids.append(doc["last_report_id"])
    assert len(set(ids)) == 3 and len(ready()) == 3
    assert await client.runtime.db["reports"].count_documents({"schedule_id": sid}) == 2  # keep = 2
    oldest = await client.call(ExportReport, {"reportId": ids[0]})
    assert oldest["error"]["code"] == "NOT_FOUND"
    assert (await client.data(ExportReport, {"reportId": ids[2]}))["rows"] >= 1

    deleted = await client.data(ScheduleReport, {"action": "delete", "scheduleId": sid})
    assert deleted["schedule"]["id"] == sid
    assert (await client.call(ExportReport, {"reportId": ids[2]}))["error"]["code"] == "NOT_FOUND"
    again = await client.call(ScheduleReport, {"action": "delete", "scheduleId": sid})
    assert again["error"]["code"] == "NOT_FOUND"


async def _ready(report_id: str) -> list[dict[str, Any]]:
    return ready(report_id)
