"""PLACEHOLDER (being written): one-click start and stop."""

from __future__ import annotations

from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from .campaign_service import CampaignService
from .group_service import GroupService
from .monitoring_service import MonitoringService
from .ports import Call, Emit


class OneClickService:
    def __init__(
        self,
        monitoring: MonitoringService,
        groups: GroupService,
        campaigns: CampaignService,
        control: QueueControl,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.monitoring, self.groups, self.campaigns, self.control = monitoring, groups, campaigns, control
        self.call, self.emit, self.clock = call, emit, clock

    async def start(self, req: cmd.OneClickStartRequest, by: str | None) -> cmd.OneClickResult:
        raise NotImplementedError

    async def stop(self, req: cmd.OneClickStopRequest, by: str | None) -> cmd.OneClickResult:
        raise NotImplementedError
