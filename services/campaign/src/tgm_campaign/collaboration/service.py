"""PLACEHOLDER (being written): collaboration runs."""

from __future__ import annotations

from tgm_contracts.base import Page
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.events_session import MessageReceived

from ..automation.monitoring_service import MonitoringService
from ..automation.ports import Call, Emit
from ..crm.leads import LeadService
from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .library import RoleLibrary
from .store import CollaborationStores


class CollaborationService:
    def __init__(
        self,
        stores: CollaborationStores,
        library: RoleLibrary,
        messaging: MessagingStores,
        queue: QueueService,
        control: QueueControl,
        leads: LeadService,
        monitoring: MonitoringService,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.stores, self.library, self.messaging, self.queue = stores, library, messaging, queue
        self.control, self.leads, self.monitoring = control, leads, monitoring
        self.call, self.emit, self.clock = call, emit, clock

    async def start(self, req: cmd.StartCollaborationRequest, by: str | None) -> cmd.CollaborationRunView:
        raise NotImplementedError

    async def stop(self, req: cmd.StopCollaborationRequest, by: str | None) -> cmd.CollaborationRunView:
        raise NotImplementedError

    async def status(self, req: cmd.GetCollaborationStatusRequest) -> Page[cmd.CollaborationRunView]:
        raise NotImplementedError

    async def on_message(self, evt: MessageReceived) -> None:
        """A message in a run's chat (or from a run's target privately): may advance or end a run."""
        return None  # PLACEHOLDER

    async def tick(self) -> None:
        """One runner round: runs whose next step is due."""
        return None  # PLACEHOLDER
