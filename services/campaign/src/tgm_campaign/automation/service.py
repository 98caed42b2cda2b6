"""PLACEHOLDER (being written): the inbound path (message -> match -> rules -> actions)."""

from __future__ import annotations

from tgm_contracts.events_session import MemberJoined, MessageReceived

from ..crm.leads import LeadService
from ..messaging.clock import Clock
from ..messaging.rules import Rules
from ..messaging.service import QueueService
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .monitoring_service import MonitoringService
from .ports import Call, Emit
from .rule_service import TriggerRuleService
from .store import AutomationStores


class AutomationService:
    def __init__(
        self,
        stores: AutomationStores,
        keywords: KeywordSetService,
        groups: GroupService,
        monitoring: MonitoringService,
        triggers: TriggerRuleService,
        queue: QueueService,
        leads: LeadService,
        rules: Rules,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.stores, self.keywords, self.groups, self.monitoring = stores, keywords, groups, monitoring
        self.triggers, self.queue, self.leads, self.rules = triggers, queue, leads, rules
        self.call, self.emit, self.clock = call, emit, clock

    async def on_message(self, evt: MessageReceived) -> None:
        raise NotImplementedError

    async def on_join(self, evt: MemberJoined) -> None:
        raise NotImplementedError
