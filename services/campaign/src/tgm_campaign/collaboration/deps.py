"""What both collaboration use cases work with — scripted conversations (`service.py`) and swarms
(`swarm.py`): the collaboration and messaging stores, the role library, the paced queue and its
control (every line goes through them), monitoring (the chats to listen in), and the call, emit and
clock ports. Built once in bootstrap and handed to both."""

from __future__ import annotations

from dataclasses import dataclass

from ..automation.monitoring_service import MonitoringService
from ..automation.ports import Call, Emit
from ..messaging.clock import Clock
from ..messaging.queue_control import QueueControl
from ..messaging.service import QueueService
from ..messaging.stores import MessagingStores
from .library import RoleLibrary
from .store import CollaborationStores


@dataclass(frozen=True)
class Collaborators:
    stores: CollaborationStores
    library: RoleLibrary
    messaging: MessagingStores
    queue: QueueService
    control: QueueControl
    monitoring: MonitoringService
    call: Call
    emit: Emit
    clock: Clock


class UsesCollaborators:
    """The collaborators as attributes (`self.queue`, `self.clock`, ...) of a use case built on them."""

    def __init__(self, deps: Collaborators) -> None:
        self.stores, self.library, self.messaging = deps.stores, deps.library, deps.messaging
        self.queue, self.control, self.monitoring = deps.queue, deps.control, deps.monitoring
        self.call, self.emit, self.clock = deps.call, deps.emit, deps.clock
