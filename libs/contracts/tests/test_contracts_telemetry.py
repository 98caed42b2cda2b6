"""Wire models of shipped logs and performance samples, their subjects and stream."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from tgm_contracts import Service, streams, subjects
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS, LogBatch, OperationSample, PerfSample

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def test_subjects_streams_and_bounds() -> None:
    assert subjects.telemetry(Service.TG_SESSION, "logs") == "tgm.tg-session.telemetry.logs.v1"
    assert subjects.telemetry(Service.AI, "perf") == "tgm.ai.telemetry.perf.v1"
    with pytest.raises(ValueError):
        subjects.telemetry(Service.AI, "metrics")
    assert streams.TELEMETRY_STREAM in streams.STREAMS
    assert streams.TELEMETRY_STREAM.subjects == ("tgm.*.telemetry.>",)
    # The two streams must not capture each other's subjects (JetStream refuses overlapping streams).
    for svc in Service:
        for kind in ("logs", "perf"):
            subject = subjects.telemetry(svc, kind)
            assert matches(streams.TELEMETRY_STREAM.subjects[0], subject)
            assert not matches(subjects.EVENTS_FILTER, subject)
    assert list(LATENCY_BOUNDS_MS) == sorted(set(LATENCY_BOUNDS_MS)) and HISTOGRAM_SIZE == 29


def test_a_log_batch_names_its_records_and_reads_camel_case() -> None:
    batch = LogBatch.model_validate(
        {
            "service": "campaign",
            "replicaId": "c-1",
            "bootId": "b1",
            "records": [
                {
                    "seq": 4,
                    "timestamp": "2026-01-01T00:00:00Z",
                    "level": "info",
                    "logger": "x",
                    "message": "m",
                }
            ],
        }
    )
    assert batch.id_of(batch.records[0]) == "c-1:b1:4" and batch.records[0].fields == {}
    with pytest.raises(ValidationError):
        LogBatch.model_validate({**batch.wire(), "records": [{**batch.records[0].wire(), "level": "loud"}]})


def test_a_perf_sample_histogram_must_add_up() -> None:
    hist = [0] * HISTOGRAM_SIZE
    hist[3] = 2
    op = OperationSample(name="send", kind="rpc", count=2, errors=1, sum_ms=5, max_ms=3, histogram=hist)
    now = datetime.now(UTC)
    sample = PerfSample(
        service=Service.AI,
        replica_id="a",
        boot_id="b",
        seq=0,
        period_start=now,
        period_end=now,
        interval_seconds=15,
        operations=[op],
    )
    assert sample.id == "a:b:0"
    with pytest.raises(ValidationError):
        OperationSample(name="send", kind="rpc", count=3, histogram=hist)
    with pytest.raises(ValidationError):
        OperationSample(name="send", kind="rpc", count=2, histogram=hist[:-1])
    with pytest.raises(ValidationError):
        OperationSample(name="send", kind="rpc", count=2, errors=3, histogram=hist)
    with pytest.raises(ValidationError):
        OperationSample(name="send", kind="cron", count=2, histogram=hist)
