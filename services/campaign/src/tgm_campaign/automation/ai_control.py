"""The ai service's switches as automation needs them: its provider settings and the `autoReply`
flag of its `ai` settings section (what one-click switches, and what lets trigger rules' AI replies
in `full` mode be sent rather than only suggested)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from tgm_contracts import Service
from tgm_contracts import sys as sysops
from tgm_contracts.base import Empty
from tgm_contracts.commands.ai import GetAiSettings
from tgm_contracts.models.ai import AiSettingsView
from tgm_contracts.settings import SettingsSection
from tgm_runtime import Conflict, DomainError

from .ports import Call

log = logging.getLogger("tgm.campaign.automation.ai")

#: Deadline of one call to ai.
DEADLINE = 2.0

SysRequest = Callable[[str, dict[str, Any], type[BaseModel], float], Awaitable[Any]]
"""`await request(subject, body, ResponseModel, timeout)` (`runtime.request`): a sys op of another
service (settings live on `tgm.sys.<service>.settings-*`, which `Call` cannot name)."""


class AiControl:
    """The ai service's side of automation: its provider settings (`get-ai-settings`) and its `ai`
    settings section, whose `autoReply` one-click switches. ai owns that section: it is read and
    written through ai's `sys settings-get`/`settings-save`, exactly as the gateway's save-settings
    forwards a change (the gateway's own `settings-changed` announcement is not made: only the
    `general` section has followers)."""

    #: How long the inbound path trusts a read of `autoReply` (a switch takes effect within this).
    SWITCH_TTL = 5.0

    def __init__(self, call: Call, request: SysRequest, timeout: float = DEADLINE) -> None:
        self.call, self.request, self.timeout = call, request, timeout
        self._switch: tuple[float, bool] | None = None

    async def auto_reply_switch(self) -> bool:
        """`autoReply` for the hot path: read at most every `SWITCH_TTL` seconds; when ai cannot say,
        the last answer holds (off if there never was one: nothing is sent on a guess)."""
        now = time.monotonic()
        if self._switch is not None and now - self._switch[0] < self.SWITCH_TTL:
            return self._switch[1]
        try:
            on = await self.auto_reply()
        except DomainError as exc:
            log.warning("ai autoReply unknown (%s: %s); keeping the last value", exc.code.value, exc.message)
            on = self._switch[1] if self._switch is not None else False
        self._switch = (now, on)
        return on

    async def settings(self) -> AiSettingsView:
        view: AiSettingsView = await self.call(GetAiSettings, Empty(), self.timeout)
        return view

    async def auto_reply(self) -> bool:
        reply: sysops.SettingsSections = await self.request(
            sysops.SettingsGet.subject(Service.AI),
            {"sections": ["ai"]},
            sysops.SettingsSections,
            self.timeout,
        )
        for section in reply.sections:
            if section.section == "ai":
                return bool(section.values.get("autoReply", False))
        return False

    async def set_auto_reply(self, on: bool) -> bool:
        """Save `autoReply` (the rest of the section unchanged); the value as saved. A concurrent save
        of the section (CONFLICT) is retried once on the new version."""
        body = {"section": "ai", "values": {"autoReply": on}}
        subject = sysops.SettingsSave.subject(Service.AI)
        try:
            saved: SettingsSection = await self.request(subject, body, SettingsSection, self.timeout)
        except Conflict:
            saved = await self.request(subject, body, SettingsSection, self.timeout)
        return bool(saved.values.get("autoReply", on))
