"""The campaign service's composition root: `build()` makes the runtime, its use cases and handlers.

Nothing is built at import: `build()` is called by `__main__`, by the tests (several replicas in one
process) and by the benchmarks. The use cases (`CampaignApp`) are made at start, once the database is
there; the scheduler loop and the chores run on `runtime.every` in replicas that dispatch
(`TGM_CAMPAIGN_SCHEDULER`), each send of a round as a tracked task (`runtime.spawn`).

Commands of the catalogue owned by this service that are not implemented yet (automation, ads,
multi-role) are not subscribed, so the gateway answers them with UNAVAILABLE rather than with a
placeholder.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import Service
from tgm_contracts.rpc_session import Send, SendRequest, SendResult
from tgm_runtime import ServiceRuntime

from . import __version__
from .app import CampaignApp, Runtime
from .crm import handlers as crm_handlers
from .crm.service import CrmService
from .crm.tracking import Activity, TrackedUsers
from .messaging import handlers as messaging_handlers
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
from .settings import CampaignSettings

#: Job states not finished yet: the queue depth `get-performance` shows.
_OPEN_STATES = ("pending", "scheduled", "in_flight")
#: How often the chores run (on the replica holding the `maintenance` lease).
CHORES_SECONDS = 5.0


async def counts(db: Any) -> dict[str, int]:
    return {
        "jobs": await db["jobs"].count_documents({}),
        "waitingJobs": await db["jobs"].count_documents({"state": {"$in": ["pending", "scheduled"]}}),
        "templates": await db["templates"].count_documents({}),
        "conversations": await db["conversations"].count_documents({}),
        "leads": await db["leads"].count_documents({}),
        "trackedUsers": await db["tracked_users"].count_documents({}),
    }


def build(settings: CampaignSettings | None = None) -> Runtime:
    """A campaign runtime with every handler, consumer, loop and hook (tests build several)."""
    settings = settings or CampaignSettings()
    runtime: Runtime = ServiceRuntime(
        Service.CAMPAIGN, __version__, migrations=MIGRATIONS, counts=counts, settings=settings.runtime
    )
    loop = (
        runtime.every(
            lambda: runtime.app.scheduler.next_wait(),
            lambda: runtime.app.scheduler.tick(),
            "campaign-scheduler",
        )
        if settings.scheduler
        else None
    )
    if settings.scheduler:
        runtime.every(CHORES_SECONDS, lambda: runtime.app.scheduler.chores_tick(), "campaign-chores")

    async def make_app() -> CampaignApp:
        db = runtime.db

        async def send_call(account_id: str, request: SendRequest, timeout: float) -> SendResult:
            return await runtime.request(
                Send.subject(account_id),
                request.model_dump(mode="json", by_alias=True),
                Send.Response,
                timeout,
            )

        async def call(target: Any, payload: Any, timeout: float) -> Any:
            return await runtime.call(target, payload, timeout=timeout)

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
            emit=runtime.emit,
            send_call=send_call,
            settings_section=runtime.settings_section,
            metrics=Metrics(runtime.registry),
            replica=runtime.settings.replica_id,
        )
        queue = QueueService(deps)
        scheduler = Scheduler(
            deps,
            spawn=runtime.spawn,
            max_in_flight=settings.max_in_flight,
            send_timeout=settings.send_timeout_seconds,
            claim_ttl=settings.claim_ttl,
        )
        if loop is not None:
            scheduler.waker = loop.wake
            deps.wake = scheduler.wake
        status = StatusService(deps, scheduler)
        scheduler.progress = status.publish_progress
        return CampaignApp(
            queue=queue,
            scheduler=scheduler,
            status=status,
            templates=TemplateService(deps),
            history=HistoryService(deps, queue),
            waiters=deps.waiters,
            crm=CrmService(deps, deps.leads, TrackedUsers(db), Activity(db)),
        )

    runtime.provide(make_app)
    messaging_handlers.register(runtime)
    crm_handlers.register(runtime)
    # get-performance shows the queue's depth: the fleet-wide jobs gauge every replica keeps in step.
    runtime.perf.gauge("queue_depth", lambda: _queue_depth(runtime), merge="max")

    async def drain(rt: ServiceRuntime[Any]) -> None:
        await runtime.app.scheduler.drain()

    async def restored(rt: ServiceRuntime[Any]) -> None:
        runtime.app.scheduler.wake()

    runtime.on_stop(drain)
    runtime.on_restore(restored)
    return runtime


def _queue_depth(runtime: Runtime) -> float | None:
    """Jobs not finished yet (pending, scheduled, in flight); None before the first queue snapshot."""
    values = [runtime.registry.get_sample_value("tgm_campaign_jobs", {"state": s}) for s in _OPEN_STATES]
    return None if all(v is None for v in values) else sum(v or 0.0 for v in values)
