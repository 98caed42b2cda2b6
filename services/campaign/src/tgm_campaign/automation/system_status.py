"""PLACEHOLDER (being written): get-system-status."""

from __future__ import annotations

from tgm_contracts.base import Empty
from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from ..messaging.status import StatusService
from ..messaging.stores import MessagingStores
from .campaign_service import CampaignService
from .monitoring_service import MonitoringService
from .ports import Call
from .store import AutomationStores


class SystemStatusService:
    def __init__(
        self,
        stores: AutomationStores,
        monitoring: MonitoringService,
        campaigns: CampaignService,
        queue_status: StatusService,
        messaging: MessagingStores,
        call: Call,
        clock: Clock,
    ) -> None:
        self.stores, self.monitoring, self.campaigns = stores, monitoring, campaigns
        self.queue_status, self.messaging, self.call, self.clock = queue_status, messaging, call, clock

    async def status(self, req: Empty) -> cmd.SystemStatus:
        raise NotImplementedError
