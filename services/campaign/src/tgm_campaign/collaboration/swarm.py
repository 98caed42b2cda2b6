"""PLACEHOLDER (being written): swarms."""

from __future__ import annotations

from tgm_contracts.base import Page
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.events_session import MessageReceived

from ..automation.monitoring_service import MonitoringService
from ..automation.ports import Call, Emit
from ..messaging.clock import Clock
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .library import RoleLibrary
from .store import CollaborationStores


class SwarmService:
    def __init__(
        self,
        stores: CollaborationStores,
        library: RoleLibrary,
        messaging: MessagingStores,
        queue: QueueService,
        monitoring: MonitoringService,
        call: Call,
        emit: Emit,
        clock: Clock,
    ) -> None:
        self.stores, self.library, self.messaging, self.queue = stores, library, messaging, queue
        self.monitoring, self.call, self.emit, self.clock = monitoring, call, emit, clock

    async def start(self, req: cmd.SwarmSpec, by: str | None) -> cmd.SwarmView:
        raise NotImplementedError

    async def stop(self, req: cmd.StopSwarmRequest, by: str | None) -> cmd.SwarmView:
        raise NotImplementedError

    async def status(self, req: cmd.GetSwarmStatusRequest) -> Page[cmd.SwarmView]:
        raise NotImplementedError

    async def on_message(self, evt: MessageReceived) -> None:
        """A message in a swarm's group: maybe one role account answers it (once)."""
        return None  # PLACEHOLDER

    async def tick(self) -> None:
        """One round: swarms whose duration ended stop; queued answers due."""
        return None  # PLACEHOLDER
