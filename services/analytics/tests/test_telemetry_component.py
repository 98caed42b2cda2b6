"""The telemetry commands on the real analytics runtime (in-memory broker, real database): log batches
and perf samples published on TGM_TELEMETRY as services ship them, then get-logs, export-logs,
clear-logs and get-performance with exact results; redeliveries stored once; bad input refused."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_analytics.telemetry.store import sweep
from tgm_contracts import Service, streams, subjects
from tgm_contracts.commands import analytics as A
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS
from tgm_runtime.testing import RuntimeClient

from .conftest import ok, swept_at_start

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

NOW = datetime.now(UTC).replace(microsecond=0)


def at(seconds: float) -> str:
    return (NOW - timedelta(minutes=30) + timedelta(seconds=seconds)).isoformat()


def record(seq: int, t: float, level: str = "info", message: str = "m", **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "timestamp": at(t), "level": level, "logger": "tgm.x", "message": message, **kw}


async def ship_logs(
    client: RuntimeClient, service: str, replica: str, records: list[dict[str, Any]], boot: str = "b1"
) -> None:
    batch = {"service": service, "replicaId": replica, "bootId": boot, "records": records}
    await client.broker.publish(
        batch,
        subject=subjects.telemetry(Service(service), "logs"),
        stream=streams.TELEMETRY_STREAM.name,
    )


def hist(*values_ms: float) -> list[int]:
    import bisect

    h = [0] * HISTOGRAM_SIZE
    for v in values_ms:
        h[bisect.bisect_left(LATENCY_BOUNDS_MS, v)] += 1
    return h


def op(name: str, kind: str, values: list[float], errors: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "count": len(values),
        "errors": errors,
        "sumMs": sum(values),
        "maxMs": max(values),
        "histogram": hist(*values),
    }


async def ship_sample(
    client: RuntimeClient,
    service: str,
    replica: str,
    seq: int,
    end: datetime,
    ops: list[dict[str, Any]],
    figures: dict[str, float] | None = None,
    merge: dict[str, str] | None = None,
    interval: float = 15,
) -> None:
    sample = {
        "service": service,
        "replicaId": replica,
        "bootId": "b1",
        "seq": seq,
        "periodStart": (end - timedelta(seconds=interval)).isoformat(),
        "periodEnd": end.isoformat(),
        "intervalSeconds": interval,
        "operations": ops,
        "figures": figures or {},
        "figureMerge": merge or {},
    }
    await client.broker.publish(
        sample, subject=subjects.telemetry(Service(service), "perf"), stream=streams.TELEMETRY_STREAM.name
    )


async def seed_logs(client: RuntimeClient) -> None:
    await ship_logs(
        client,
        "tg-session",
        "ts-1",
        [
            record(0, 0, "info", "account acc-1 connected", accountId="acc-1"),
            record(1, 10, "warning", "FLOOD_WAIT of 30 s on send", accountId="acc-1", requestId="req-9"),
            record(2, 20, "error", "send failed: PEER_FLOOD", accountId="acc-2", traceId="ab" * 16),
            record(3, 30, "debug", "raw update", fields={"update": "UpdateNewMessage"}),
        ],
    )
    await ship_logs(
        client,
        "campaign",
        "camp-1",
        [
            record(0, 5, "info", "job j1 sent"),
            record(1, 25, "critical", "scheduler stopped: flood wait storm"),
        ],
    )


async def logs(client: RuntimeClient, **payload: Any) -> dict[str, Any]:
    return await ok(client, A.GetLogs, payload)


async def test_logs_are_stored_once_and_filtered(client: RuntimeClient) -> None:
    await seed_logs(client)
    page = await logs(client)
    assert page["total"] == 6 and page["nextCursor"] is None
    assert [e["message"] for e in page["items"]][:2] == [
        "raw update",  # newest first (t=30, then t=25)
        "scheduler stopped: flood wait storm",
    ]
    times = [e["timestamp"] for e in page["items"]]
    assert times == sorted(times, reverse=True)
    first = page["items"][-1]
    assert first["id"] == "ts-1:b1:0" and first["service"] == "tg-session" and first["replicaId"] == "ts-1"
    assert first["accountId"] == "acc-1" and first["logger"] == "tgm.x"

    # The same batch delivered again (at-least-once): nothing new.
    await seed_logs(client)
    assert (await logs(client))["total"] == 6

    def messages(p: dict[str, Any]) -> list[str]:
        return [e["message"] for e in p["items"]]

    assert messages(await logs(client, level=["error", "critical"], order="asc")) == [
        "send failed: PEER_FLOOD",
        "scheduler stopped: flood wait storm",
    ]
    assert len((await logs(client, minLevel="warning"))["items"]) == 3
    assert messages(await logs(client, service=["campaign"], order="asc")) == [
        "job j1 sent",
        "scheduler stopped: flood wait storm",
    ]
    assert messages(await logs(client, accountId="acc-1", order="asc")) == [
        "account acc-1 connected",
        "FLOOD_WAIT of 30 s on send",
    ]
    assert messages(await logs(client, requestId="req-9")) == ["FLOOD_WAIT of 30 s on send"]
    assert messages(await logs(client, traceId="ab" * 16)) == ["send failed: PEER_FLOOD"]
    assert messages(await logs(client, search="flood", order="asc")) == [
        "FLOOD_WAIT of 30 s on send",
        "send failed: PEER_FLOOD",
        "scheduler stopped: flood wait storm",
    ]
    assert messages(await logs(client, text="(wait")) == []  # literal text, not a pattern
    assert messages(await logs(client, since=at(10), until=at(25), order="asc")) == [
        "FLOOD_WAIT of 30 s on send",
        "send failed: PEER_FLOOD",
    ]
    assert messages(await logs(client, type="debug")) == ["raw update"]
    assert (await logs(client, type="debug"))["items"][0]["fields"] == {"update": "UpdateNewMessage"}
    # The query object other features use gives the same.
    from tgm_contracts.commands.analytics import GetLogsRequest

    page = await client.runtime.app.logs.page(GetLogsRequest(service=[Service.CAMPAIGN]))
    assert page.total == 2


async def test_cursor_pages_walk_everything_once_in_both_orders(client: RuntimeClient) -> None:
    # 25 records, several sharing a timestamp, so the cursor must break ties by id.
    await ship_logs(client, "ai", "ai-1", [record(i, i // 3, message=f"r{i}") for i in range(25)])
    for order in ("desc", "asc"):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            payload: dict[str, Any] = {"limit": 4, "order": order}
            if cursor:
                payload["cursor"] = cursor
            page = await logs(client, **payload)
            seen += [e["id"] for e in page["items"]]
            pages += 1
            assert (page["total"] == 25) if pages == 1 else (page["total"] is None)
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert pages == 7 and len(seen) == 25 and len(set(seen)) == 25
        stamps = [int(s.rsplit(":", 1)[1]) // 3 for s in seen]
        assert stamps == sorted(stamps, reverse=order == "desc")
    bad = await client.call(A.GetLogs, {"cursor": "garbage"})
    assert bad["error"]["code"] == "VALIDATION_ERROR"


async def test_bad_log_requests_are_refused(client: RuntimeClient) -> None:
    for payload in (
        {"level": ["loud"]},
        {"since": at(10), "until": at(5)},
        {"since": "2026-01-01T00:00:00", "until": "2025-01-01T00:00:00Z"},  # naive vs aware: still clear
        {"traceId": "xyz"},
        {"limit": 0},
        {"nope": 1},
    ):
        reply = await client.call(A.GetLogs, payload)
        assert reply["error"]["code"] == "VALIDATION_ERROR", payload
    for payload in ({}, {"all": True, "keepDays": 3}, {"keepDays": -1}):
        reply = await client.call(A.ClearLogs, {**payload, "confirm": True})
        assert reply["error"]["code"] == "VALIDATION_ERROR", payload
    # A malformed batch on the stream is dropped, not retried forever, and stores nothing.
    await client.broker.publish(
        b"{not json", subject="tgm.ai.telemetry.logs.v1", stream=streams.TELEMETRY_STREAM.name
    )
    await client.broker.publish(
        {"service": "ai", "records": "x"}, subject="tgm.ai.telemetry.perf.v1", stream="TGM_TELEMETRY"
    )
    assert (await logs(client))["total"] == 0


def content(file: dict[str, Any]) -> bytes:
    return base64.b64decode(file["contentBase64"])


async def test_export_logs_in_three_formats_with_max_rows(client: RuntimeClient) -> None:
    await seed_logs(client)
    f = await ok(client, A.ExportLogs, {"format": "csv", "service": ["tg-session"]})
    rows = list(csv.reader(io.StringIO(content(f).decode("utf-8-sig"))))
    assert rows[0][:3] == ["timestamp", "level", "service"] and len(rows) == 5
    assert rows[1][5] == "raw update" and f["rows"] == 4 and f["truncated"] is False
    f = await ok(client, A.ExportLogs, {"format": "json", "minLevel": "error", "maxRows": 1})
    items = json.loads(content(f))
    assert f["truncated"] is True and [i["message"] for i in items] == ["scheduler stopped: flood wait storm"]
    f = await ok(client, A.ExportLogs, {"format": "xlsx", "search": "flood"})
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content(f))).active
    assert sheet is not None
    values = [r for r in sheet.iter_rows(values_only=True)]
    assert len(values) == 4 and values[0][0] == "timestamp" and f["filename"].endswith(".xlsx")


async def test_clear_logs_by_age_time_service_and_level(client: RuntimeClient) -> None:
    await seed_logs(client)
    old = [record(10 + i, -86400 * 5, message=f"old {i}") for i in range(3)]
    await ship_logs(client, "tg-session", "ts-1", old)
    assert (await ok(client, A.ClearLogs, {"confirm": True, "keepDays": 2}))["affected"] == 3
    assert (await ok(client, A.ClearLogs, {"confirm": True, "all": True, "level": ["debug"]}))[
        "affected"
    ] == 1
    cut = await ok(client, A.ClearLogs, {"confirm": True, "before": at(15), "service": ["tg-session"]})
    assert cut["affected"] == 2  # t=0 and t=10 of tg-session; campaign's t=5 stays
    assert (await logs(client))["total"] == 3
    assert (await ok(client, A.ClearLogs, {"confirm": True, "all": True}))["affected"] == 3
    assert (await logs(client))["total"] == 0


async def test_retention_sweep_removes_logs_and_samples_past_the_setting(client: RuntimeClient) -> None:
    await swept_at_start(client, "telemetry-retention")
    await ship_logs(client, "ai", "ai-1", [record(0, 0), record(1, -86400 * 40)])
    await ship_sample(client, "ai", "ai-1", 0, NOW - timedelta(days=40), [])
    await ship_sample(client, "ai", "ai-1", 1, NOW, [])
    removed = await sweep(client.runtime.db, 30)
    assert removed == {"logs": 1, "perf_samples": 1}
    assert (await logs(client))["total"] == 1
    samples = await client.runtime.db["perf_samples"].find({}, {"_id": 1}).to_list(None)
    assert len(samples) == 1, samples


async def test_performance_merges_replicas_and_periods(client: RuntimeClient) -> None:
    # "up" is judged against the real clock (a sample within 2 periods of now), not the module's NOW.
    end = datetime.now(UTC) - timedelta(seconds=1)
    # Two tg-session replicas, two periods each; one sample redelivered.
    await ship_sample(
        client,
        "tg-session",
        "ts-1",
        0,
        end - timedelta(seconds=15),
        [op("send", "command", [4, 6, 8]), op("acct.send", "rpc", [30, 40], errors=1)],
        {"accounts_connected": 3},
    )
    await ship_sample(
        client, "tg-session", "ts-1", 1, end, [op("send", "command", [5, 900])], {"accounts_connected": 4}
    )
    await ship_sample(client, "tg-session", "ts-1", 1, end, [op("send", "command", [5, 900])])  # again
    await ship_sample(
        client,
        "tg-session",
        "ts-2",
        0,
        end,
        [op("send", "command", [7]), op("tg-session.message-sent@x", "event", [2, 2])],
        {"accounts_connected": 6},
    )
    # campaign: queue depth is fleet-wide (max), one replica gone quiet long ago (down).
    await ship_sample(
        client,
        "campaign",
        "c-1",
        0,
        NOW - timedelta(minutes=40),
        [op("start-campaign", "command", [50, 3000], errors=2)],
        {"queue_depth": 120},
        {"queue_depth": "max"},
    )
    await ship_sample(
        client,
        "campaign",
        "c-2",
        0,
        NOW - timedelta(minutes=39),
        [],
        {"queue_depth": 100},
        {"queue_depth": "max"},
    )
    await ship_sample(
        client,
        "campaign",
        "c-3",
        0,
        NOW - timedelta(minutes=39),
        [],
        {"queue_depth": 90},
        {"queue_depth": "max"},
    )
    # Outside the window: ignored.
    await ship_sample(client, "ai", "ai-1", 0, NOW - timedelta(hours=3), [op("complete", "command", [10])])

    report = await ok(client, A.GetPerformance, {})
    by = {s["service"]: s for s in report["services"]}
    assert set(by) == {"tg-session", "campaign"}
    ts = by["tg-session"]
    assert ts["replicas"] == 2 and ts["up"] is True
    assert ts["requests"] == 8 and ts["errors"] == 1 and ts["errorRate"] == round(1 / 8, 4)
    assert ts["latency"]["maxMs"] == 900 and ts["latency"]["p50Ms"] <= 10
    assert ts["figures"] == {"accounts_connected": 10.0}  # 4 (ts-1's newest) + 6
    ops = {o["name"]: o for o in ts["operations"]}
    assert ops["send"]["count"] == 6 and ops["send"]["kind"] == "command"
    assert ops["acct.send"]["errors"] == 1 and ops["acct.send"]["kind"] == "rpc"
    assert ops["tg-session.message-sent@x"]["kind"] == "event"
    # Span is the 30 s the two periods cover: 8 answered requests.
    assert ts["throughputPerSecond"] == pytest.approx(8 / 30, abs=1e-3)
    assert ops["send"]["throughputPerMinute"] == pytest.approx(6 / 0.5, abs=1e-3)
    cp = by["campaign"]
    assert cp["up"] is False and cp["replicas"] == 3 and cp["errors"] == 2
    # max of c-2 and c-3; c-1 stopped reporting a minute before them, so its 120 no longer counts.
    assert cp["figures"] == {"queue_depth": 100.0}
    assert [o["name"] for o in report["slowest"]][:2] == ["start-campaign", "send"]
    assert report["slowest"][0]["latency"]["p95Ms"] <= 3000

    only = await ok(client, A.GetPerformance, {"services": ["ai", "campaign"], "top": 1})
    assert [s["service"] for s in only["services"]] == ["campaign", "ai"]
    ai = only["services"][1]
    assert (ai["replicas"], ai["up"], ai["requests"], ai["operations"]) == (0, False, 0, [])
    assert len(only["slowest"]) == 1
    past = await ok(
        client,
        A.GetPerformance,
        {"since": (NOW - timedelta(hours=4)).isoformat(), "until": (NOW - timedelta(hours=2)).isoformat()},
    )
    assert [s["service"] for s in past["services"]] == ["ai"] and past["services"][0]["requests"] == 1
    bad = await client.call(
        A.GetPerformance, {"since": NOW.isoformat(), "until": (NOW - timedelta(1)).isoformat()}
    )
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    long = await client.call(A.GetPerformance, {"since": (NOW - timedelta(days=40)).isoformat()})
    assert long["ok"] is True  # until defaults to now; the 31-day cap applies when both are given
    direct = await client.runtime.app.performance.report(A.PerformanceRequest(services=[Service.TG_SESSION]))
    assert direct.services[0].requests == 8
