"""What arrives on TGM_TELEMETRY: each message is a log batch or a performance sample of one process.

A malformed message is dropped with a warning (redelivering it would not make it valid); a failed write
raises, so the consumer does not acknowledge the message and it comes again.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from tgm_contracts import subjects
from tgm_contracts.telemetry import LogBatch, PerfSample

from .logs import LogService
from .perf import PerformanceService

log = logging.getLogger("tgm_analytics.telemetry")


def kind_of(subject: str) -> str:
    """`logs` or `perf` for a telemetry subject (`tgm.<service>.telemetry.<kind>.v1`), else `unknown`."""
    parsed = subjects.parse_service(subject)
    if parsed is None or parsed.kind != "telemetry" or parsed.major != 1:
        return "unknown"
    return parsed.name


class TelemetryIntake:
    """`AnalyticsApp.telemetry`: routes each TGM_TELEMETRY message to the logs or the performance samples."""

    def __init__(self, logs: LogService, performance: PerformanceService) -> None:
        self.logs = logs
        self.performance = performance

    async def receive(self, subject: str, body: bytes) -> None:
        kind = kind_of(subject)
        if kind == "logs":
            try:
                batch = LogBatch.model_validate(json.loads(body))
            except (ValueError, ValidationError) as exc:
                log.warning("dropping a malformed log batch on %s: %s", subject, str(exc)[:300])
                return
            # DEBUG only: a record per batch at INFO would itself be shipped back here, forever.
            new = await self.logs.ingest(batch)
            log.debug("stored %d of %d records from %s", new, len(batch.records), batch.replica_id)
        elif kind == "perf":
            try:
                sample = PerfSample.model_validate(json.loads(body))
            except (ValueError, ValidationError) as exc:
                log.warning("dropping a malformed perf sample on %s: %s", subject, str(exc)[:300])
                return
            await self.performance.ingest(sample)
        else:
            log.warning("dropping telemetry on unknown subject %s", subject)
