"""Analytics feature `telemetry`: the logs and performance samples every service ships.

- The durable consumer `analytics_telemetry` of TGM_TELEMETRY (one consumer shared by the replicas)
  stores each log record and each sample under the id its process gave it (logs.py, perf.py), so a
  redelivery changes nothing; a batch is acknowledged only after its write.
- Commands: get-logs, export-logs, clear-logs, get-performance; `runtime.state.logs` (`page`) and
  `runtime.state.performance` (`report`) for the other features.
- Retention: logs older than `analytics.logRetentionDays` and samples older than that (at most
  `PERF_RETENTION_DAYS`) are deleted at start and every `SWEEP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from faststream.nats import JStream, NatsMessage, PullSub
from pydantic import ValidationError
from tgm_contracts import streams, subjects
from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import analytics as A
from tgm_contracts.models.analytics import ExportFile, LogEntryView
from tgm_contracts.telemetry import LogBatch, PerfSample
from tgm_runtime import CallContext, ServiceRuntime

from .histogram import Merged, percentile
from .logs import LOGS, LogStore
from .perf import PERF, PerfStore

__all__ = [
    "LOGS",
    "PERF",
    "LogStore",
    "Merged",
    "PerfStore",
    "create_indexes",
    "percentile",
    "register",
    "sweep",
]

log = logging.getLogger(__name__)

#: How often the retention sweep runs.
SWEEP_SECONDS = 3600.0
#: get-performance spans at most 31 days; older samples are never read.
PERF_RETENTION_DAYS = 31
DURABLE = "telemetry"


async def create_indexes(db: Any) -> None:
    """Migration 4: log time order (pages, retention), the usual filters, and sample end times."""
    logs = db[LOGS]
    await logs.create_index([("ts", -1), ("_id", -1)])
    await logs.create_index([("service", 1), ("ts", -1)])
    await logs.create_index([("request_id", 1)], sparse=True)
    await logs.create_index([("account_id", 1)], sparse=True)
    await logs.create_index([("trace_id", 1)], sparse=True)
    perf = db[PERF]
    await perf.create_index([("end", 1)])
    await perf.create_index([("service", 1), ("end", -1)])


async def sweep(db: Any, log_retention_days: int, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    logs = await LogStore(db).expire(log_retention_days, now)
    samples = await PerfStore(db).expire(min(log_retention_days, PERF_RETENTION_DAYS), now)
    return {"logs": logs, "perf_samples": samples}


def register(runtime: ServiceRuntime) -> None:
    """The TGM_TELEMETRY consumer, the four commands, `state.logs`/`state.performance`, the sweep."""
    tasks: list[asyncio.Task[None]] = []

    def build(rt: ServiceRuntime) -> None:
        rt.state.logs = LogStore(rt.db)
        rt.state.performance = PerfStore(rt.db)

    @runtime.on_start
    async def _build(rt: ServiceRuntime) -> None:
        build(rt)
        tasks.append(asyncio.create_task(_sweeper(rt), name="telemetry-retention"))

    @runtime.on_stop
    async def _stop(rt: ServiceRuntime) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    @runtime.on_restore
    async def _restored(rt: ServiceRuntime) -> None:
        build(rt)

    async def on_telemetry(msg: NatsMessage) -> None:
        subject = msg.raw_message.subject
        started, failed = time.perf_counter(), True
        try:
            if subject.endswith(".logs.v1"):
                try:
                    batch = LogBatch.model_validate(json.loads(msg.body))
                except (ValueError, ValidationError) as exc:
                    log.warning("dropping a malformed log batch on %s: %s", subject, str(exc)[:300])
                    failed = False
                    return
                # DEBUG only: a record per batch at INFO would itself be shipped back here, forever.
                new = await runtime.state.logs.ingest(batch)
                log.debug("stored %d of %d records from %s", new, len(batch.records), batch.replica_id)
            elif subject.endswith(".perf.v1"):
                try:
                    sample = PerfSample.model_validate(json.loads(msg.body))
                except (ValueError, ValidationError) as exc:
                    log.warning("dropping a malformed perf sample on %s: %s", subject, str(exc)[:300])
                    failed = False
                    return
                await runtime.state.performance.ingest(sample)
            else:
                log.warning("dropping telemetry on unknown subject %s", subject)
            failed = False
        finally:
            kind = subject.rsplit(".", 2)[-2] if subject.count(".") >= 2 else "unknown"
            runtime.perf.observe(
                f"telemetry.{kind}@{DURABLE}", "event", time.perf_counter() - started, failed
            )

    # One durable pull consumer for every replica: each batch is stored by one of them.
    runtime.broker.subscriber(
        subjects.TELEMETRY_FILTER,
        stream=JStream(streams.TELEMETRY_STREAM.name, declare=False),
        durable=f"{runtime.service.value}_{DURABLE}",
        pull_sub=PullSub(batch_size=32, timeout=1.0),
    )(on_telemetry)

    @runtime.command(A.GetLogs)
    async def get_logs(req: A.GetLogsRequest, ctx: CallContext) -> Page[LogEntryView]:
        return await ctx.state.logs.page(req)

    @runtime.command(A.ExportLogs)
    async def export_logs(req: A.ExportLogsRequest, ctx: CallContext) -> ExportFile:
        return await ctx.state.logs.export(req)

    @runtime.command(A.ClearLogs)
    async def clear_logs(req: A.ClearLogsRequest, ctx: CallContext) -> Ack:
        ack = await ctx.state.logs.clear(req)
        log.info("clear-logs removed %d records (by %s)", ack.affected, ctx.principal or "?")
        return ack

    @runtime.command(A.GetPerformance)
    async def get_performance(req: A.PerformanceRequest, ctx: CallContext) -> A.PerformanceReport:
        return await ctx.state.performance.report(req)


async def _sweeper(rt: ServiceRuntime) -> None:
    while True:
        try:
            settings = await rt.settings_section("analytics")
            removed = await sweep(rt.db, settings.log_retention_days)
            if any(removed.values()):
                log.info("telemetry retention sweep removed %s", removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("telemetry retention sweep failed; retrying next round")
        await asyncio.sleep(SWEEP_SECONDS)
