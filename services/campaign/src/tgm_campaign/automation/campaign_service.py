"""PLACEHOLDER (being written): campaigns."""

from __future__ import annotations

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .ports import Emit
from .store import AutomationStores


class CampaignService:
    def __init__(
        self,
        stores: AutomationStores,
        messaging: MessagingStores,
        queue: QueueService,
        control: QueueControl,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.stores, self.messaging, self.queue, self.control = stores, messaging, queue, control
        self.emit, self.clock = emit, clock

    async def add(self, req: cmd.AddCampaignRequest, by: str | None) -> cmd.CampaignView:
        raise NotImplementedError

    async def remove(self, req: cmd.RemoveCampaignRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def list(self, req: cmd.GetCampaignsRequest) -> Page[cmd.CampaignView]:
        raise NotImplementedError

    async def start(self, req: cmd.CampaignIdRequest, by: str | None) -> cmd.CampaignView:
        raise NotImplementedError

    async def stop(self, req: cmd.StopCampaignRequest, by: str | None) -> cmd.CampaignView:
        raise NotImplementedError

    async def stats(self, req: cmd.GetCampaignStatsRequest) -> cmd.CampaignStatsReport:
        raise NotImplementedError

    async def counts(self) -> cmd.CountActive:
        """Campaigns in all, and running ones (for get-system-status)."""
        raise NotImplementedError

    async def tick(self) -> None:
        """One round of the runner (runtime.every): enqueue the next batch of running campaigns."""
        raise NotImplementedError
