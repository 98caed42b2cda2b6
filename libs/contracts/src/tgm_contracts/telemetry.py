"""What every service ships to analytics besides events: batches of log records and performance samples.

Both travel on the `TGM_TELEMETRY` stream (`streams.TELEMETRY_STREAM`), on
`tgm.<service>.telemetry.logs.v1` and `tgm.<service>.telemetry.perf.v1` (`subjects.telemetry`).
They are not events (nobody reacts to them) and not commands; analytics is their only reader.

Identity, for at-least-once delivery: a process numbers its records and samples from 0 under a
`bootId` drawn at start, so `<replicaId>:<bootId>:<seq>` names each one uniquely even when a replica
id is reused after a restart; a reader stores each under that id and a redelivered batch changes
nothing. The batch's Nats-Msg-Id is built the same way, so JetStream also drops a re-sent batch.

Latency histograms use the fixed bucket bounds `LATENCY_BOUNDS_MS`, declared here once, so samples of
any replica and any period merge by adding counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import Response
from .enums import Service
from .models.analytics import LogLevel

#: Upper bounds (inclusive, milliseconds) of the latency histogram buckets; one more bucket holds
#: everything slower. Roughly 1-2-3-5 steps: a percentile read from it is within one step (<= 50 %)
#: of the true value, interpolated inside the bucket. Changing them is a new major version of the
#: perf subject (samples of different bounds do not merge).
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.5,
    1,
    2,
    3,
    5,
    7.5,
    10,
    15,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    15_000,
    30_000,
    60_000,
)
#: Buckets in a histogram: one per bound plus the overflow bucket.
HISTOGRAM_SIZE = len(LATENCY_BOUNDS_MS) + 1

OperationKind = Literal["command", "rpc", "event", "telegram"]
FigureMerge = Literal["sum", "max"]

#: Longest message a record carries; longer ones are cut at the source (a traceback is kept whole up
#: to this size).
MAX_MESSAGE_CHARS = 16_000


def record_id(replica_id: str, boot_id: str, seq: int) -> str:
    """The stable id of a shipped record or sample."""
    return f"{replica_id}:{boot_id}:{seq}"


class LogRecord(Response):
    """One log record as the service's JSON formatter saw it, secrets already redacted."""

    seq: int = Field(ge=0, description="Number of this record within its process (bootId).")
    timestamp: datetime
    level: LogLevel
    logger: str = Field(max_length=200)
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    account_id: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict, description="Further structured fields (`extra=`).")


class LogBatch(Response):
    """Records of one process, oldest first, published every second or every 200 records."""

    service: Service
    replica_id: str = Field(min_length=1, max_length=128)
    boot_id: str = Field(min_length=1, max_length=64)
    records: list[LogRecord] = Field(max_length=1000)
    dropped: int = Field(
        0, ge=0, description="Records this process dropped (queue full) since its previous batch."
    )

    def id_of(self, record: LogRecord) -> str:
        return record_id(self.replica_id, self.boot_id, record.seq)


class OperationSample(Response):
    """One operation (a command, an internal call, an event consumer, a Telegram method) in one period."""

    name: str = Field(min_length=1, max_length=200)
    kind: OperationKind
    count: int = Field(ge=0)
    errors: int = Field(0, ge=0, description="Failed on the server side (INTERNAL, TIMEOUT, UNAVAILABLE…).")
    sum_ms: float = Field(0.0, ge=0)
    max_ms: float = Field(0.0, ge=0)
    histogram: list[int] = Field(
        description="Counts per bucket of LATENCY_BOUNDS_MS, the last one for slower than the last bound."
    )

    @field_validator("histogram")
    @classmethod
    def _size(cls, value: list[int]) -> list[int]:
        if len(value) != HISTOGRAM_SIZE or any(c < 0 for c in value):
            raise ValueError(f"a histogram has {HISTOGRAM_SIZE} non-negative counts")
        return value

    @model_validator(mode="after")
    def _counted(self) -> OperationSample:
        if sum(self.histogram) != self.count:
            raise ValueError("histogram counts must add up to count")
        if self.errors > self.count:
            raise ValueError("errors cannot exceed count")
        return self


class PerfSample(Response):
    """What one replica handled during `[periodStart, periodEnd)`, with its own gauges at the end."""

    service: Service
    replica_id: str = Field(min_length=1, max_length=128)
    boot_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=0)
    period_start: datetime
    period_end: datetime
    interval_seconds: float = Field(gt=0, description="The sampling period this replica runs with.")
    operations: list[OperationSample] = Field(default_factory=list, max_length=2000)
    figures: dict[str, float] = Field(
        default_factory=dict, description="Service gauges at period end: accounts_connected, queue_depth…"
    )
    figure_merge: dict[str, FigureMerge] = Field(
        default_factory=dict,
        description="How replicas' values of a figure combine: `sum` (the default: each replica's part, "
        "e.g. accounts connected) or `max` (a fleet-wide value every replica sees, e.g. queue depth).",
    )

    @property
    def id(self) -> str:
        return record_id(self.replica_id, self.boot_id, self.seq)

    @model_validator(mode="after")
    def _period(self) -> PerfSample:
        if self.period_end < self.period_start:
            raise ValueError("periodEnd is before periodStart")
        return self


__all__ = [
    "HISTOGRAM_SIZE",
    "LATENCY_BOUNDS_MS",
    "MAX_MESSAGE_CHARS",
    "FigureMerge",
    "LogBatch",
    "LogRecord",
    "OperationKind",
    "OperationSample",
    "PerfSample",
    "record_id",
]
