"""The 18 messaging commands and blacklist-user, each declared once on the use case method that answers
it (`@answers(Cmd)`, `tgm_runtime.routes`); queue-message, which also takes the request id, written out.

Also the consumers of tg-session's message events (chat history and stop-word opt-outs, declared on
`HistoryService` with `@hears` / `@consumes`; the FLOOD_WAITs others' sends met, written out here) and the core-NATS taps on this service's own job events, so every
replica hears what another one did."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import TYPE_CHECKING

from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_campaign import JobStateChanged, MessageQueued, QueuePauseChanged, QueueProgress
from tgm_contracts.events_session import FloodWaitRecorded
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .compliance_service import ComplianceService
from .history_service import HistoryService
from .queue_control import QueueControl
from .replan import Replanner
from .service import QueueService
from .status import StatusService
from .template_service import TemplateService

if TYPE_CHECKING:  # the message type of core-NATS callbacks (nats-py comes with the runtime)
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription


def register(runtime: Runtime) -> None:
    route_use_case(runtime, QueueService, lambda app: app.queue)

    @runtime.command(messaging_cmd.QueueMessage)
    async def queue_message(
        req: messaging_cmd.QueueMessageRequest, ctx: Ctx
    ) -> messaging_cmd.QueueMessageResult:
        return await ctx.app.queue.queue_message(req, ctx.request_id)

    route_use_case(runtime, StatusService, lambda app: app.status)
    route_use_case(runtime, QueueControl, lambda app: app.control)
    route_use_case(runtime, TemplateService, lambda app: app.templates)
    route_use_case(runtime, HistoryService, lambda app: app.history)
    route_use_case(runtime, Replanner, lambda app: app.replan)
    route_use_case(runtime, ComplianceService, lambda app: app.compliance)

    # --- the FLOOD_WAITs others' sends met (chat history's events: HistoryService's @hears/@consumes)

    @runtime.subscribe_events(FloodWaitRecorded, durable="pacing_flood_waits")
    async def on_flood_wait(evt: FloodWaitRecorded) -> None:
        # A wait Telegram imposed on a send by anyone (an AI reply, another service) holds the queue too.
        if evt.category == "send":
            await runtime.app.scheduler.flood_recorded(evt.account_id, evt.until)

    listen(runtime)


def listen(runtime: Runtime) -> None:
    """Core-NATS taps on our own events, so every replica hears what another one did: outcomes of
    jobs (immediate sends wait on them), new jobs and resumed queues (wake the scheduler), progress
    snapshots (metrics). The durable consumers above are for tg-session's events."""
    # Core-NATS messages and subscriptions (nats-py, reached through the runtime: not a dependency of ours).
    subscriptions: list[Subscription] = []

    async def on_job(msg: Msg) -> None:
        with contextlib.suppress(Exception):
            data = json.loads(msg.data)
            if data.get("state") in ("sent", "failed", "skipped", "cancelled"):
                runtime.app.waiters.resolve(data["jobId"], data["state"])
            elif data.get("state") == "scheduled" and data.get("retryAt"):
                until = datetime.fromisoformat(data["retryAt"]).timestamp()
                runtime.app.waiters.held(data["jobId"], until)

    async def on_wake(msg: Msg) -> None:
        runtime.app.scheduler.wake()

    async def on_queued(msg: Msg) -> None:
        # New jobs, here or on another replica: a round now, unless they are due only after the
        # round the scheduler waits for anyway (a trigger rule's reply, queued with its delay).
        due = None
        with contextlib.suppress(Exception):
            at = json.loads(msg.data).get("notBefore")
            due = datetime.fromisoformat(at).timestamp() if at else None
        runtime.app.scheduler.wake(due=due)

    async def on_progress(msg: Msg) -> None:
        with contextlib.suppress(Exception):
            runtime.app.status.apply_progress(QueueProgress.model_validate(json.loads(msg.data)))

    @runtime.on_start
    async def subscribe(rt: Runtime) -> None:
        try:
            nc = runtime.nc
        except Exception:
            nc = None
        if nc is None or not getattr(nc, "is_connected", False):
            return  # in-memory test broker: this process is the only replica
        subscriptions[:] = [
            await nc.subscribe(JobStateChanged.SUBJECT, cb=on_job),
            await nc.subscribe(MessageQueued.SUBJECT, cb=on_queued),
            await nc.subscribe(QueuePauseChanged.SUBJECT, cb=on_wake),
            await nc.subscribe(QueueProgress.SUBJECT, cb=on_progress),
        ]

    @runtime.on_stop
    async def unsubscribe(rt: Runtime) -> None:
        for sub in subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        subscriptions.clear()
