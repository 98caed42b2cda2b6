"""PLACEHOLDER (being written): trigger rules."""

from __future__ import annotations

from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from ..messaging.rules import Rules
from ..messaging.stores import MessagingStores
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .ports import Call, Emit
from .store import AutomationStores


class TriggerRuleService:
    def __init__(
        self,
        stores: AutomationStores,
        keywords: KeywordSetService,
        groups: GroupService,
        messaging: MessagingStores,
        rules: Rules,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.stores, self.keywords, self.groups, self.messaging = stores, keywords, groups, messaging
        self.rules, self.call, self.emit, self.clock = rules, call, emit, clock

    async def save(self, req: cmd.SaveTriggerRuleRequest, by: str | None) -> cmd.TriggerRuleView:
        raise NotImplementedError

    async def delete(self, req: cmd.RuleIdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def toggle(self, req: cmd.ToggleTriggerRuleRequest, by: str | None) -> cmd.TriggerRuleView:
        raise NotImplementedError

    async def list(self, req: cmd.GetTriggerRulesRequest) -> Page[cmd.TriggerRuleView]:
        raise NotImplementedError

    async def test(self, req: cmd.TriggerTestRequest) -> cmd.TriggerTestResult:
        raise NotImplementedError

    async def active(self) -> list[dict[str, Any]]:
        """Active rules, highest priority first (cached briefly)."""
        raise NotImplementedError
