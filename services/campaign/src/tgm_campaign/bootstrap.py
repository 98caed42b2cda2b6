"""The campaign service's composition root: `build()` makes the runtime, its use cases and handlers.

Nothing is built at import: `build()` is called by `__main__`, by the tests (several replicas in one
process) and by the benchmarks. The use cases (`CampaignApp`) are made at start, once the database is
there; the scheduler loop and the chores run on `runtime.every` in replicas that dispatch
(`TGM_CAMPAIGN_SCHEDULER`), each send of a round as a tracked task (`runtime.spawn`).

Automation (`automation/`) watches monitored groups through tg-session's events, replies through
messaging's queue and captures leads through the CRM. Ads (`ads/`) and
collaboration (`collaboration/`) put several accounts to work on a schedule or a script, through the
same queue.
"""

from __future__ import annotations

import time
from typing import Any

from tgm_contracts import Service, streams
from tgm_contracts.models.campaign import MonitoredChats
from tgm_contracts.rpc_session import Send, SendRequest, SendResult
from tgm_runtime import ServiceRuntime
from tgm_runtime.tasks import Periodic

from . import __version__
from .ads import handlers as ads_handlers
from .ads.runner import AdRunner
from .ads.service import AdService
from .ads.store import AdStore
from .app import CampaignApp, Runtime
from .automation import handlers as automation_handlers
from .automation.ai_control import AiControl
from .automation.campaign_runner import CampaignRunner
from .automation.campaign_service import CampaignService
from .automation.group_service import GroupService
from .automation.keyword_service import KeywordSetService
from .automation.monitoring_service import MonitoringService
from .automation.oneclick_service import OneClickService
from .automation.rule_service import TriggerRuleService
from .automation.service import JOINS_DURABLE, AutomationService
from .automation.store import AutomationStores
from .automation.system_status import SystemStatusService
from .collaboration import handlers as collaboration_handlers
from .collaboration.deps import Collaborators
from .collaboration.library import RoleLibrary
from .collaboration.service import CollaborationService
from .collaboration.store import CollaborationStores
from .collaboration.swarm import SwarmService
from .crm import handlers as crm_handlers
from .crm.consumers import CrmConsumers
from .crm.funnel import FunnelService
from .crm.leads import LeadService
from .crm.service import Contacts
from .crm.timeline import TimelineService
from .crm.tracking import TrackingService
from .crm.tracking_store import ActivityStore, TrackedUserStore
from .messaging import handlers as messaging_handlers
from .messaging.accounts import AccountDirectory
from .messaging.compliance_service import ComplianceService
from .messaging.history_service import HistoryService
from .messaging.job_events import JobEvents
from .messaging.metrics import Metrics
from .messaging.queue_control import QueueControl
from .messaging.replan import Replanner
from .messaging.rules import Rules
from .messaging.scheduler import Scheduler
from .messaging.service import QueueService
from .messaging.status import StatusService
from .messaging.stores import MessagingStores
from .messaging.template_service import TemplateService
from .migrations import MIGRATIONS
from .settings import CampaignSettings

#: Job states not finished yet: the queue depth `get-performance` shows.
_OPEN_STATES = ("pending", "scheduled", "in_flight")
#: How often the chores run (on the replica holding the `maintenance` lease).
CHORES_SECONDS = 5.0
#: How often running campaigns enqueue their next batch.
CAMPAIGN_SECONDS = 1.0


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
    loop: Periodic | None = None
    if settings.scheduler:  # a replica that dispatches: the scheduler loop and the chores
        loop = runtime.every(
            lambda: runtime.app.scheduler.next_wait(),
            lambda: runtime.app.scheduler.tick(),
            "campaign-scheduler",
        )
        runtime.every(CHORES_SECONDS, lambda: runtime.app.scheduler.chores_tick(), "campaign-chores")
        runtime.every(CAMPAIGN_SECONDS, lambda: runtime.app.campaigns.tick(), "automation-campaigns")
        runtime.every(CAMPAIGN_SECONDS, lambda: runtime.app.ads.tick(), "ads-runner")
        runtime.every(CAMPAIGN_SECONDS, lambda: runtime.app.collaboration.tick(), "collaboration-runner")
        runtime.every(CAMPAIGN_SECONDS, lambda: runtime.app.swarms.tick(), "swarm-runner")
    runtime.every(1.0, lambda: runtime.app.groups.flush_seen(), "automation-groups-seen")  # every replica

    # Once per runtime, not per start (a second registration on the registry would raise); also lets
    # deploy/metrics_doc.py read every metric from a built, unstarted runtime.
    metrics = Metrics(runtime.registry)

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

        stores = MessagingStores.of(db)
        events = JobEvents(runtime.emit)
        rules = Rules(runtime.settings_section)
        directory = AccountDirectory(call)
        clock = time.time

        async def reload_section(name: str) -> object:
            assert runtime.settings_store is not None
            return await runtime.settings_store.get(name)  # a read refreshes the section's cache

        replan = Replanner(stores, events, clock, reload_section)
        queue = QueueService(stores, events, directory, clock)
        scheduler = Scheduler(
            stores,
            events,
            rules,
            directory,
            send_call,
            metrics,
            clock,
            call=call,
            spawn=runtime.spawn,
            replica=runtime.settings.replica_id,
            max_in_flight=settings.max_in_flight,
            send_timeout=settings.send_timeout_seconds,
            claim_ttl=settings.claim_ttl,
            replanner=replan,
        )
        if loop is not None:
            scheduler.waker = loop.wake
            events.wake = scheduler.wake
        contacts = Contacts(stores, events, clock)
        tracked, activity = TrackedUserStore(db), ActivityStore(db)
        status = StatusService(stores, rules, directory, metrics, clock, events.emit, scheduler)
        scheduler.progress = status.publish_progress
        compliance = ComplianceService(stores, events, clock)
        leads = LeadService(contacts, stores, events, tracked, activity)
        control = QueueControl(stores, events, clock)

        async def publish_chats(value: MonitoredChats) -> None:
            kv = await runtime.key_value(streams.MONITORED_CHATS)
            await kv.put(streams.MONITORED_CHATS_KEY, value.model_dump_json(by_alias=True).encode())

        # --- automation: reaches messaging and the CRM only through their use cases -------------
        auto = AutomationStores.of(db)
        emit = runtime.emit
        keyword_sets = KeywordSetService(auto, emit, clock)
        groups = GroupService(
            auto,
            keyword_sets,
            call,
            emit,
            clock,
            lambda rpc, account, request, timeout: runtime.request(
                rpc.subject(account), request.model_dump(mode="json", by_alias=True), rpc.Response, timeout
            ),
        )
        monitoring = MonitoringService(auto, groups, call, emit, clock, publish_chats)
        triggers = TriggerRuleService(
            auto, keyword_sets, groups, stores, rules, call, emit, clock, runtime.request
        )
        automation = AutomationService(
            auto,
            keyword_sets,
            groups,
            monitoring,
            triggers,
            queue,
            leads,
            rules,
            call,
            emit,
            clock,
            AiControl(call, runtime.request),
            lambda: runtime.consumer_idle(JOINS_DURABLE),
        )
        campaigns = CampaignService(
            CampaignRunner(auto.campaigns, stores, queue, control, emit, clock, rules)
        )
        oneclick = OneClickService(monitoring, groups, campaigns, control, call, emit, clock, runtime.request)
        system = SystemStatusService(
            auto, monitoring, campaigns, status, stores, call, clock, runtime.request
        )
        # --- ads and collaboration: the same queue, the same compliance -------------------------
        ads = AdService(
            AdRunner(AdStore(db), stores, queue, control, groups, rules, emit, clock), call, monitoring
        )
        collab = CollaborationStores.of(db)
        library = RoleLibrary(collab, stores, call, emit, clock)
        collaborators = Collaborators(collab, library, stores, queue, control, monitoring, call, emit, clock)
        collaboration = CollaborationService(collaborators, leads, rules, compliance)
        automation.start_scenario = collaboration.start_for  # trigger rules' start_scenario action
        triggers.missing_scenarios = collaboration.missing_scenarios
        swarms = SwarmService(collaborators, zone=triggers.zone)
        return CampaignApp(
            queue=queue,
            control=control,
            compliance=compliance,
            scheduler=scheduler,
            status=status,
            templates=TemplateService(stores, events, clock),
            history=HistoryService(stores, rules, compliance, replan),
            replan=replan,
            waiters=events.waiters,
            leads=leads,
            funnel=FunnelService(contacts, stores.leads),
            tracking=TrackingService(contacts, stores.leads, stores.history, tracked, activity),
            timeline=TimelineService(contacts, stores, activity),
            crm_consumers=CrmConsumers(contacts, stores.leads, stores.groups, tracked, activity),
            keyword_sets=keyword_sets,
            groups=groups,
            monitoring=monitoring,
            triggers=triggers,
            automation=automation,
            campaigns=campaigns,
            oneclick=oneclick,
            system=system,
            ads=ads,
            library=library,
            collaboration=collaboration,
            swarms=swarms,
        )

    runtime.provide(make_app)
    messaging_handlers.register(runtime)
    crm_handlers.register(runtime)
    automation_handlers.register(runtime)
    ads_handlers.register(runtime)
    collaboration_handlers.register(runtime)
    # get-performance shows the queue's depth: the fleet-wide jobs gauge every replica keeps in step.
    runtime.perf.gauge("queue_depth", lambda: _queue_depth(runtime), merge="max")

    async def drain(rt: Runtime) -> None:
        try:
            scheduler = runtime.app.scheduler
        except RuntimeError:  # stopped before the app was built: nothing is in flight
            return
        await scheduler.drain()
        await runtime.app.groups.flush_seen()  # the groups' last message times kept in memory

    async def restored(rt: Runtime) -> None:
        # The restored queue is read afresh at the next round (the app itself is not rebuilt).
        runtime.app.scheduler.wake()

    async def watched_chats(rt: Runtime) -> None:
        # tg-session learns the watched chats from the KV bucket: write them once at every start.
        await runtime.app.monitoring.republish()

    runtime.on_start(watched_chats)
    runtime.on_stop(drain)
    runtime.on_restore(restored)
    return runtime


def _queue_depth(runtime: Runtime) -> float | None:
    """Jobs not finished yet (pending, scheduled, in flight); None before the first queue snapshot."""
    values = [runtime.registry.get_sample_value("tgm_campaign_jobs", {"state": s}) for s in _OPEN_STATES]
    return None if all(v is None for v in values) else sum(v or 0.0 for v in values)
