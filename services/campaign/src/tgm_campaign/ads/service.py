"""PLACEHOLDER (being written): ad campaigns."""

from __future__ import annotations

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import ads as cmd

from ..automation.group_service import GroupService
from ..automation.ports import Call, Emit
from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from ..messaging.rules import Rules
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .store import AdStore


class AdService:
    def __init__(
        self,
        store: AdStore,
        messaging: MessagingStores,
        queue: QueueService,
        control: QueueControl,
        groups: GroupService,
        rules: Rules,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.store, self.messaging, self.queue, self.control = store, messaging, queue, control
        self.groups, self.rules, self.call, self.emit, self.clock = groups, rules, call, emit, clock

    async def create(self, req: cmd.CreateAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        raise NotImplementedError

    async def update(self, req: cmd.UpdateAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        raise NotImplementedError

    async def delete(self, req: cmd.AdCampaignIdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def list(self, req: cmd.GetAdCampaignsRequest) -> Page[cmd.AdCampaignView]:
        raise NotImplementedError

    async def start(self, req: cmd.AdCampaignIdRequest, by: str | None) -> cmd.AdCampaignView:
        raise NotImplementedError

    async def stop(self, req: cmd.StopAdCampaignRequest, by: str | None) -> cmd.AdCampaignView:
        raise NotImplementedError

    async def templates(self, req: cmd.GetAdTemplatesRequest) -> Page[cmd.AdTemplateView]:
        raise NotImplementedError

    async def stats(self, req: cmd.GetAdStatsRequest) -> cmd.AdStats:
        raise NotImplementedError

    async def preview(self, req: cmd.PreviewAdRequest) -> cmd.AdPreview:
        raise NotImplementedError

    async def tick(self) -> None:
        """One runner round: queue the posts of due runs."""
        return None  # PLACEHOLDER
