"""Wiring of the campaign service: the runtime, its migrations, the messaging use cases and their
command handlers, the scheduler loop, and the event subscriptions.

Commands of the catalogue owned by this service that are not implemented yet (automation, ads,
multi-role) are not subscribed, so the gateway answers them with UNAVAILABLE rather than
with a placeholder.
"""

from __future__ import annotations

import contextlib
import json
import logging
from types import SimpleNamespace
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_contracts import Service
from tgm_contracts.events_campaign import JobStateChanged, MessageQueued, QueuePauseChanged, QueueProgress
from tgm_contracts.rpc_session import Send
from tgm_runtime import RuntimeSettings, ServiceRuntime

from . import __version__, handlers
from .crm.service import CrmService
from .crm.tracking import Activity, TrackedUsers
from .messaging.accounts import AccountDirectory
from .messaging.common import Deps, Metrics
from .messaging.compliance import ComplianceStore
from .messaging.history import HistoryStore
from .messaging.history_service import HistoryService
from .messaging.pacing_store import PacingStore
from .messaging.queue import JobStore
from .messaging.repos import Groups, Leads, Leases, PauseRepo, TemplateRepo
from .messaging.scheduler import Scheduler
from .messaging.service import QueueService
from .messaging.status import StatusService
from .messaging.template_service import TemplateService
from .migrations import MIGRATIONS

log = logging.getLogger("tgm.campaign")


class CampaignProcessSettings(BaseSettings):
    """Process options (`TGM_CAMPAIGN_*`); the limits themselves are the `pacing` settings section."""

    model_config = SettingsConfigDict(env_prefix="TGM_CAMPAIGN_", extra="ignore")

    scheduler: bool = Field(True, description="Run the dispatch loop in this replica.")
    max_in_flight: int = Field(64, ge=1, le=1000, description="Concurrent sends of this replica.")
    send_timeout_seconds: float = Field(30.0, gt=0, le=300, description="Deadline of one send call.")
    claim_ttl_seconds: float = Field(
        90.0, gt=0, le=3600, description="A claim not settled by then returns to the queue (> send timeout)."
    )


async def counts(db: Any) -> dict[str, int]:
    return {
        "jobs": await db["jobs"].count_documents({}),
        "waitingJobs": await db["jobs"].count_documents({"state": {"$in": ["pending", "scheduled"]}}),
        "templates": await db["templates"].count_documents({}),
        "conversations": await db["conversations"].count_documents({}),
        "leads": await db["leads"].count_documents({}),
        "trackedUsers": await db["tracked_users"].count_documents({}),
    }


async def build(rt: ServiceRuntime) -> None:
    proc = CampaignProcessSettings()
    db = rt.db

    async def send_call(account_id: str, request: Any, timeout: float) -> Any:
        return await rt.request(
            Send.subject(account_id), request.model_dump(mode="json", by_alias=True), Send.Response, timeout
        )

    async def call(target: Any, payload: Any, timeout: float) -> Any:
        return await rt.call(target, payload, timeout=timeout)

    deps = Deps(
        jobs=JobStore(db),
        pacing=PacingStore(db),
        compliance=ComplianceStore(db),
        history=HistoryStore(db),
        templates=TemplateRepo(db),
        pauses=PauseRepo(db),
        leases=Leases(db),
        leads=Leads(db),
        groups=Groups(db),
        directory=AccountDirectory(call),
        publish_event=rt.publish,
        send_call=send_call,
        settings_section=rt.settings_section,
        metrics=Metrics(rt.registry),
        replica=rt.settings.replica_id,
    )
    queue = QueueService(deps)
    scheduler = Scheduler(deps)
    scheduler.max_in_flight = proc.max_in_flight
    scheduler.send_timeout = proc.send_timeout_seconds
    scheduler.claim_ttl = max(proc.claim_ttl_seconds, proc.send_timeout_seconds + 5)
    status = StatusService(deps, scheduler)
    scheduler.progress = status.publish_progress
    rt.state.messaging = SimpleNamespace(
        deps=deps,
        queue=queue,
        scheduler=scheduler,
        status=status,
        templates=TemplateService(deps),
        history=HistoryService(deps, queue),
        subscriptions=[],
    )
    rt.state.crm = CrmService(deps, deps.leads, TrackedUsers(db), Activity(db))
    if proc.scheduler:
        scheduler.start()
    await _listen(rt)


async def _listen(rt: ServiceRuntime) -> None:
    """Core-NATS taps on our own events, so every replica hears what another one did: outcomes of
    jobs (immediate sends wait on them), new jobs and resumed queues (wake the scheduler), progress
    snapshots (metrics). The durable consumers in `handlers` are for tg-session's events."""
    try:
        nc = rt.nc
    except Exception:
        nc = None
    if nc is None or not getattr(nc, "is_connected", False):
        return  # in-memory test broker: this process is the only replica
    m = rt.state.messaging

    async def on_job(msg: Any) -> None:
        with contextlib.suppress(Exception):
            data = json.loads(msg.data)
            if data.get("state") in ("sent", "failed", "skipped", "cancelled"):
                m.deps.waiters.resolve(data["jobId"], data["state"])

    async def on_wake(msg: Any) -> None:
        m.scheduler.wake()

    async def on_progress(msg: Any) -> None:
        with contextlib.suppress(Exception):
            m.status.apply_progress(QueueProgress.model_validate(json.loads(msg.data)))

    m.subscriptions = [
        await nc.subscribe(JobStateChanged.SUBJECT, cb=on_job),
        await nc.subscribe(MessageQueued.SUBJECT, cb=on_wake),
        await nc.subscribe(QueuePauseChanged.SUBJECT, cb=on_wake),
        await nc.subscribe(QueueProgress.SUBJECT, cb=on_progress),
    ]


async def teardown(rt: ServiceRuntime) -> None:
    m = getattr(rt.state, "messaging", None)
    if m is None:
        return
    for sub in m.subscriptions:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    await m.scheduler.stop()


async def restored(rt: ServiceRuntime) -> None:
    m = getattr(rt.state, "messaging", None)
    if m is not None:
        m.scheduler.wake()


def _queue_depth(rt: ServiceRuntime) -> float | None:
    """Jobs not finished yet (pending, scheduled, in flight); None before the first queue snapshot."""
    values = [rt.registry.get_sample_value("tgm_campaign_jobs", {"state": s}) for s in _OPEN_STATES]
    return None if all(v is None for v in values) else sum(v or 0.0 for v in values)


_OPEN_STATES = ("pending", "scheduled", "in_flight")


def create_runtime(settings: RuntimeSettings | None = None) -> ServiceRuntime:
    """A campaign runtime with every handler, consumer and hook (tests build several)."""
    rt = ServiceRuntime(
        Service.CAMPAIGN, __version__, migrations=MIGRATIONS, counts=counts, settings=settings
    )
    handlers.register(rt)
    # get-performance shows the queue's depth: the fleet-wide jobs gauge every replica keeps in step.
    rt.perf.gauge("queue_depth", lambda: _queue_depth(rt), merge="max")
    rt.on_start(build)
    rt.on_stop(teardown)
    rt.on_restore(restored)
    return rt


runtime = create_runtime()
