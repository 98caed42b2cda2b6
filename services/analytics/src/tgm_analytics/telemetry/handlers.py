"""The telemetry commands (get-logs, export-logs, clear-logs, get-performance) and the TGM_TELEMETRY
consumer: one durable pull consumer shared by the replicas, so each batch is stored by one of them and
acknowledged only after its write."""

from __future__ import annotations

import logging
import time

from faststream.nats import JStream, NatsMessage, PullSub
from tgm_contracts import streams, subjects
from tgm_contracts.base import Ack
from tgm_contracts.commands import analytics as analytics_cmd

from ..app import Ctx, Runtime
from .service import kind_of

log = logging.getLogger("tgm_analytics.telemetry")

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

    runtime.broker.subscriber(
        subjects.TELEMETRY_FILTER,
        stream=JStream(streams.TELEMETRY_STREAM.name, declare=False),
        durable=f"{runtime.service.value}_{DURABLE}",
        pull_sub=PullSub(batch_size=32, timeout=1.0),
    )(on_telemetry)

    runtime.route(analytics_cmd.GetLogs, lambda app: app.logs.page)
    runtime.route(analytics_cmd.ExportLogs, lambda app: app.logs.export)

    @runtime.command(analytics_cmd.ClearLogs)
    async def clear_logs(req: analytics_cmd.ClearLogsRequest, ctx: Ctx) -> Ack:
        ack = await ctx.app.logs.clear(req)
        log.info("clear-logs removed %d records (by %s)", ack.affected, ctx.principal or "?")
        return ack

    runtime.route(analytics_cmd.GetPerformance, lambda app: app.performance.report)
