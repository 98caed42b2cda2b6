"""Analytics operations end to end: the whole stack as processes, driven only through the gateway.

What an operator does on a bad day: the services' logs and performance are visible in one place
(shipped over TGM_TELEMETRY), a crashed service raises a critical `service.down` alert that closes by
itself when the service is back, and a scheduled report of the alerts reaches a webhook and can be
fetched again by its id.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Webhook:
    """A loopback HTTP endpoint that records what is POSTed to it."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reports"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(start_stack: Callable[..., Stack]) -> Stack:
    """The whole system for one test (it kills a service), probing and sampling every second."""
    env = {
        "TGM_ANALYTICS_PROBE_SECONDS": "1",
        "TGM_ANALYTICS_PROBE_TIMEOUT_SECONDS": "1",
        "TGM_PERF_SAMPLE_SECONDS": "1",
    }
    return start_stack(env=env)


@pytest.mark.timeout(300)
def test_logs_performance_alerts_and_reports_through_the_gateway(stack: Stack, gw: GatewayClient) -> None:
    hook = Webhook()
    try:
        # Some traffic: reads served by three services, and a refused payload.
        for _ in range(5):
            gw.ok("get-queue-status", {})
            gw.ok("get-ai-models", {})
            gw.ok("get-accounts", {"limit": 10})
        assert gw.post("get-logs", {"limit": 0}).status_code == 422

        # Logs of every service, in one place, filterable.
        def services_logging() -> set[str]:
            items = gw.ok("get-logs", {"limit": 500, "minLevel": "info"})["items"]
            return {i["service"] for i in items}

        wait_until(
            lambda: {"gateway", "tg-session", "campaign", "ai", "analytics"} <= services_logging(),
            60,
            "logs of all five services",
        )
        started = wait_until(
            lambda: gw.ok("get-logs", {"service": ["campaign"], "text": "started", "limit": 10})["items"],
            30,
            "campaign's start in its logs",
        )
        assert all(i["service"] == "campaign" and "started" in i["message"].lower() for i in started), started

        # Performance: every service up, the commands we called counted with latencies.
        def perf() -> dict[str, Any] | None:
            report = gw.ok("get-performance", {})
            by = {s["service"]: s for s in report["services"]}
            ready = all(by.get(n, {}).get("up") for n in ("gateway", "tg-session", "campaign", "ai"))
            # Samples arrive one period at a time: wait until those covering all our calls are in.
            counts = {o["name"]: o["count"] for s in report["services"] for o in s["operations"]}
            done = counts.get("get-queue-status", 0) >= 5 and counts.get("get-ai-models", 0) >= 5
            return report if ready and done else None

        report = wait_until(perf, 60, "performance of the four services with our commands")
        campaign = next(s for s in report["services"] if s["service"] == "campaign")
        op = next(o for o in campaign["operations"] if o["name"] == "get-queue-status")
        assert op["latency"]["p95Ms"] is not None and op["latency"]["p95Ms"] > 0
        assert op["errors"] == 0 and campaign["requests"] >= 5

        # A crash: the ai service is SIGKILLed; the probe raises service.down, critical.
        stack.kill("ai")

        def down_alert() -> dict[str, Any] | None:
            page = gw.ok("get-alerts", {"code": "service.down", "unresolvedOnly": True})
            return next((a for a in page["items"] if a["service"] == "ai"), None)

        alert = wait_until(down_alert, 60, "service.down for ai")
        assert alert["level"] == "critical" and not alert["dismissed"]
        assert gw.ok("get-alerts", {"minLevel": "critical"})["unresolvedByLevel"].get("critical", 0) >= 1

        # Back up: the alert closes by itself.
        stack.restart("ai")

        def closed() -> dict[str, Any] | None:
            page = gw.ok("get-alerts", {"code": "service.down"})
            a = next((x for x in page["items"] if x["id"] == alert["id"]), None)
            return a if a and a["dismissed"] else None

        resolved = wait_until(closed, 60, "service.down closed after the restart")
        assert resolved["dismissedBy"] == "system"

        # A scheduled report of the alerts, run now, delivered to a webhook and stored.
        saved = gw.ok(
            "schedule-report",
            {
                "action": "save",
                "name": "alerts daily",
                "report": "alerts",
                "format": "csv",
                "cron": "@daily",
                "window": "last_24h",
                "recipients": [{"kind": "webhook", "target": hook.url}],
            },
        )["schedule"]
        run = gw.ok("schedule-report", {"action": "run", "scheduleId": saved["id"]})
        wait_until(lambda: hook.received, 60, "the report at the webhook")
        headers, body = hook.received[0]
        assert headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert any(r.get("code") == "service.down" for r in rows), rows[:3]

        def schedule_done() -> dict[str, Any] | None:
            listed = gw.ok("schedule-report", {"action": "list"})["schedules"]
            mine = next(s for s in listed if s["id"] == saved["id"])
            return mine if mine["lastReportId"] == run["reportId"] else None

        assert wait_until(schedule_done, 30, "the run recorded on its schedule")["lastError"] is None
        stored = gw.ok("export-report", {"reportId": run["reportId"], "format": "csv"})
        assert base64.b64decode(stored["contentBase64"]) == body
        as_json = gw.ok("export-report", {"reportId": run["reportId"], "format": "json"})
        assert "service.down" in json.dumps(json.loads(base64.b64decode(as_json["contentBase64"])))

        # Logs can be exported and cleared (admin).
        export = gw.ok("export-logs", {"service": ["gateway"], "format": "csv", "maxRows": 50})
        assert 0 < export["rows"] <= 50
        before = {i["id"] for i in gw.ok("get-logs", {"service": ["gateway"], "limit": 50})["items"]}
        cleared = gw.ok("clear-logs", {"confirm": True, "all": True, "service": ["gateway"]})
        assert cleared["affected"] >= len(before) > 0
        after = {i["id"] for i in gw.ok("get-logs", {"service": ["gateway"], "limit": 500})["items"]}
        assert not before & after  # (records still in flight may arrive after the clear)
        assert gw.ok("get-logs", {"service": ["campaign"], "limit": 1})["items"]  # others untouched
    finally:
        hook.stop()
