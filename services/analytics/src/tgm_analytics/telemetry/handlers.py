"""The telemetry commands (get-logs, export-logs, clear-logs, get-performance) and the TGM_TELEMETRY
consumer: one durable pull consumer shared by the replicas, so each batch is stored by one of them and
acknowledged only after its write."""

from __future__ import annotations

import time

from faststream.nats import NatsMessage
from tgm_contracts import streams, subjects
from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .logs import LogService
from .perf import PerformanceService
from .service import kind_of

DURABLE = "telemetry"


def register(runtime: Runtime) -> None:
    async def on_telemetry(msg: NatsMessage) -> None:
        subject = msg.raw_message.subject
        started, failed = time.perf_counter(), True
        try:
            await runtime.app.telemetry.receive(subject, msg.body)
            failed = False
        finally:
            runtime.perf.observe(
                f"telemetry.{kind_of(subject)}@{DURABLE}", "event", time.perf_counter() - started, failed
            )

    runtime.pull_subscriber(
        subjects.TELEMETRY_FILTER,
        f"{runtime.service.value}_{DURABLE}",
        stream=streams.TELEMETRY_STREAM.name,
        batch_size=32,
    )(on_telemetry)

    route_use_case(runtime, LogService, lambda app: app.logs)
    route_use_case(runtime, PerformanceService, lambda app: app.performance)
