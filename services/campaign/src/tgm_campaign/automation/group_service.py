"""PLACEHOLDER (being written): monitored groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from .keyword_service import KeywordSetService
from .ports import Call, Emit
from .store import AutomationStores


class GroupService:
    def __init__(
        self, stores: AutomationStores, keywords: KeywordSetService, call: Call, emit: Emit, clock: Clock
    ) -> None:
        self.stores, self.keywords, self.call, self.emit, self.clock = stores, keywords, call, emit, clock

    async def add(self, req: cmd.AddGroupRequest, by: str | None) -> cmd.MonitoredGroupView:
        raise NotImplementedError

    async def remove(self, req: cmd.GroupIdRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def list(self, req: cmd.GetMonitoredGroupsRequest) -> Page[cmd.MonitoredGroupView]:
        raise NotImplementedError

    async def bind(self, req: cmd.KeywordBindingRequest, by: str | None) -> cmd.MonitoredGroupView:
        raise NotImplementedError

    async def unbind(self, req: cmd.KeywordBindingRequest, by: str | None) -> cmd.MonitoredGroupView:
        raise NotImplementedError

    async def pause(self, req: cmd.PauseMonitoringRequest, by: str | None) -> cmd.MonitoredGroupView:
        raise NotImplementedError

    async def resume(self, req: cmd.ResumeMonitoringRequest, by: str | None) -> cmd.MonitoredGroupView:
        raise NotImplementedError

    async def by_chat(self, chat_id: int, username: str | None = None) -> dict[str, Any] | None:
        """The monitored group document of a Telegram chat (by id, else by username), or None."""
        raise NotImplementedError

    async def seen_message(self, group_id: str, at: datetime, matched: bool) -> None:
        """Record a message of the group (last_message_at; match_count/last_match_at when matched)."""
        raise NotImplementedError

    async def missing(self, ids: Sequence[str]) -> list[str]:
        raise NotImplementedError
