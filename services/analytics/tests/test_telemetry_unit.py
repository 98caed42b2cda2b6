"""Pure parts of the telemetry feature: histogram merge and percentiles, record ids, log filters and
cursors."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime

import pytest
from tgm_analytics.telemetry.histogram import Merged, merge_all, percentile
from tgm_analytics.telemetry.logs import doc_of, query_of
from tgm_analytics.telemetry.store import NEWEST_LOGS
from tgm_contracts import Service
from tgm_contracts.commands.analytics import GetLogsRequest
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS, LogBatch, LogRecord
from tgm_runtime import Invalid, cursor

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def hist_of(values_ms: list[float]) -> list[int]:
    h = [0] * HISTOGRAM_SIZE
    for v in values_ms:
        h[bisect.bisect_left(LATENCY_BOUNDS_MS, v)] += 1
    return h


def merged(values: list[float], errors: int = 0) -> Merged:
    m = Merged()
    m.add(len(values), errors, sum(values), max(values, default=0.0), hist_of(values))
    return m


def test_percentiles_interpolate_inside_the_bucket_and_never_pass_the_max() -> None:
    assert percentile([0] * HISTOGRAM_SIZE, 0.5, 0) is None
    # 100 values all in the (10, 15] bucket: the median is interpolated to the bucket's middle.
    h = hist_of([12.0] * 100)
    assert percentile(h, 0.5, 12.0) == pytest.approx(11.0)
    assert percentile(h, 1.0, 12.0) == 12.0  # the upper bound is the real max, not 15
    # Overflow bucket: ends at the max seen.
    h = hist_of([100_000.0])
    assert percentile(h, 0.99, 100_000.0) == pytest.approx(100_000 - 0.01 * 40_000)
    with pytest.raises(ValueError):
        percentile(h, 0, 1)


def test_percentiles_are_within_one_bucket_of_the_truth() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(5000)]  # ~20 ms median, long tail
    m = merged(values)
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        true = exact[int(q * len(exact)) - 1]
        got = percentile(m.hist, q, m.max_ms)
        assert got is not None
        i = bisect.bisect_left(LATENCY_BOUNDS_MS, true)
        lo = LATENCY_BOUNDS_MS[i - 1] if i else 0
        hi = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else m.max_ms
        assert lo - 1e-9 <= got <= hi + 1e-9, (q, true, got)


def test_merging_samples_equals_one_histogram_of_everything() -> None:
    a, b = [1.0, 2.0, 40.0], [0.3, 700.0, 2500.0, 45.0]
    m = merge_all([merged(a, errors=1), merged(b)])
    whole = merged(a + b, errors=1)
    assert (m.count, m.errors, m.hist, m.max_ms) == (7, 1, whole.hist, 2500.0)
    assert m.sum_ms == pytest.approx(whole.sum_ms) and m.error_rate == round(1 / 7, 4)
    lat = m.latency()
    assert lat.max_ms == 2500.0 and lat.avg_ms == pytest.approx(sum(a + b) / 7, abs=1e-3)
    assert lat.p50_ms is not None and lat.p50_ms <= lat.p95_ms <= lat.p99_ms <= lat.max_ms  # type: ignore[operator]
    assert Merged().latency().p50_ms is None
    with pytest.raises(ValueError):
        Merged().add(1, 0, 1, 1, [1])


def test_record_ids_are_replica_boot_sequence() -> None:
    batch = LogBatch(
        service=Service.CAMPAIGN,
        replica_id="camp-1",
        boot_id="b0",
        records=[
            LogRecord(
                seq=s, timestamp=datetime(2026, 1, 1, tzinfo=UTC), level="info", logger="x", message="m"
            )
            for s in (5, 6)
        ],
    )
    docs = doc_of(batch, datetime.now(UTC))
    assert [d["_id"] for d in docs] == ["camp-1:b0:5", "camp-1:b0:6"]
    assert docs[0]["lv"] == 20 and docs[0]["service"] == "campaign"


def test_filters_become_one_query() -> None:
    req = GetLogsRequest.model_validate(
        {
            "type": "error",  # the earlier client's single level
            "minLevel": "warning",
            "service": ["tg-session", "campaign"],
            "accountId": "acc-1",
            "requestId": "r-1",
            "traceId": "0" * 32,
            "search": "flood (wait)*",
            "startDate": "2026-01-01T00:00:00",
            "endDate": "2026-01-02T00:00:00Z",
        }
    )
    q = query_of(req)
    assert q["level"] == {"$in": ["error"]} and q["lv"] == {"$gte": 30}
    assert q["service"] == {"$in": ["tg-session", "campaign"]}
    assert (q["account_id"], q["request_id"], q["trace_id"]) == ("acc-1", "r-1", "0" * 32)
    assert q["message"] == {"$regex": r"flood\ \(wait\)\*", "$options": "i"}  # taken literally
    assert q["ts"]["$gte"].tzinfo is not None and q["ts"]["$lt"] > q["ts"]["$gte"]
    assert query_of(GetLogsRequest()) == {}


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    token = NEWEST_LOGS.cursor_of({"ts": at, "_id": "r:b:7"})
    assert cursor.decode(token, 2, NEWEST_LOGS.tag) == [at, "r:b:7"]
    for bad in ("nope", "e30", NEWEST_LOGS.cursor_of({"ts": at, "_id": "x"})[:-6]):
        with pytest.raises(Invalid):
            NEWEST_LOGS.where({}, bad)


async def test_services_report_their_gauges_in_samples() -> None:
    """tg-session and campaign put their fleet figures into every perf sample (read from the runtime's
    Prometheus registry, so the figures are exactly what /metrics shows)."""
    session = pytest.importorskip("tgm_session.bootstrap")
    campaign = pytest.importorskip("tgm_campaign.bootstrap")
    rt = session.build()
    assert (await rt.perf.take())["figures"] == {"accounts_connected": 0.0, "accounts_held": 0.0}
    rt.registry._names_to_collectors["tgm_session_connected_accounts"].set(3)
    rt.registry._names_to_collectors["tgm_session_held_accounts"].set(4)
    assert (await rt.perf.take())["figures"] == {"accounts_connected": 3.0, "accounts_held": 4.0}
    cp = campaign.build()
    # The job gauge campaign registers once per build (its queue snapshot), by the name its figure reads.
    jobs = cp.registry._names_to_collectors["tgm_campaign_jobs"]
    assert (await cp.perf.take())["figures"] == {}  # before the first queue snapshot: no false 0
    for state, n in (("pending", 5), ("scheduled", 2), ("in_flight", 1), ("sent", 90)):
        jobs.labels(state).set(n)
    sample = await cp.perf.take()
    assert sample["figures"] == {"queue_depth": 8.0} and sample["figureMerge"] == {"queue_depth": "max"}
