"""The campaign service's use cases, as one typed value: what every handler reaches as `ctx.app`.

`bootstrap.build()` makes it at start (once the database is there). Each field is one use case of a
domain package; a handler calls exactly one of them. Domains still to come go here in the same
shape, each its own package with `handlers.py`, `service.py` and `store.py`:
`automation/` (triggers, keyword sets, auto-replies), `ads/` (ad campaigns and their delivery) and
`collaboration/` (multi-role: operators, assignments, shared inboxes).
"""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import CallContext, ServiceRuntime

from .ads.service import AdService
from .automation.campaign_service import CampaignService
from .automation.group_service import GroupService
from .automation.keyword_service import KeywordSetService
from .automation.monitoring_service import MonitoringService
from .automation.oneclick_service import OneClickService
from .automation.rule_service import TriggerRuleService
from .automation.service import AutomationService
from .automation.system_status import SystemStatusService
from .collaboration.library import RoleLibrary
from .collaboration.service import CollaborationService
from .collaboration.swarm import SwarmService
from .crm.consumers import CrmConsumers
from .crm.funnel import FunnelService
from .crm.leads import LeadService
from .crm.timeline import TimelineService
from .crm.tracking import TrackingService
from .messaging.compliance_service import ComplianceService
from .messaging.history_service import HistoryService
from .messaging.job_events import JobWaiters
from .messaging.queue_control import QueueControl
from .messaging.replan import Replanner
from .messaging.scheduler import Scheduler
from .messaging.service import QueueService
from .messaging.status import StatusService
from .messaging.template_service import TemplateService


@dataclass(frozen=True)
class CampaignApp:
    """Messaging (the queue and its scheduler, templates, chat history, status), the CRM and
        automation (keyword sets, monitored groups, monitoring, trigger rules, campaigns, one-click), ads
    (scheduled posts into groups) and collaboration (roles, scripts, scenarios, runs, swarms)."""

    queue: QueueService
    control: QueueControl
    compliance: ComplianceService
    scheduler: Scheduler
    status: StatusService
    templates: TemplateService
    history: HistoryService
    replan: Replanner
    waiters: JobWaiters
    leads: LeadService
    funnel: FunnelService
    tracking: TrackingService
    timeline: TimelineService
    crm_consumers: CrmConsumers
    keyword_sets: KeywordSetService
    groups: GroupService
    monitoring: MonitoringService
    triggers: TriggerRuleService
    automation: AutomationService
    campaigns: CampaignService
    oneclick: OneClickService
    system: SystemStatusService
    ads: AdService
    library: RoleLibrary
    collaboration: CollaborationService
    swarms: SwarmService


Ctx = CallContext[CampaignApp]
Runtime = ServiceRuntime[CampaignApp]
