"""PLACEHOLDER (being written): start/stop monitoring with the configuration and access check."""

from __future__ import annotations

from typing import Any

from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from .group_service import GroupService
from .ports import Call, Emit, PublishChats
from .store import AutomationStores


class MonitoringService:
    def __init__(
        self,
        stores: AutomationStores,
        groups: GroupService,
        call: Call,
        emit: Emit,
        clock: Clock,
        publish_chats: PublishChats,
    ) -> None:
        self.stores, self.groups, self.call, self.emit = stores, groups, call, emit
        self.clock, self.publish_chats = clock, publish_chats

    async def start(self, req: cmd.StartMonitoringRequest, by: str | None) -> cmd.MonitoringStatus:
        raise NotImplementedError

    async def stop(self, by: str | None) -> cmd.MonitoringStatus:
        raise NotImplementedError

    async def status(self) -> cmd.MonitoringStatus:
        """The current state without running the access check (for get-system-status)."""
        raise NotImplementedError

    async def watching(self, group: dict[str, Any]) -> bool:
        """Monitoring is active and this group (active, not paused, among the started ones) is watched."""
        raise NotImplementedError

    async def republish(self) -> None:
        """Write the watched chats to the KV bucket again (after a group changed, and at start)."""
        raise NotImplementedError
