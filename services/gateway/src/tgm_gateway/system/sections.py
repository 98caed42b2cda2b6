"""The settings document across the fleet: each section lives with the service that owns it
(`tgm_contracts.settings.SETTINGS_SECTIONS`); the gateway reads, saves and resets it there and
announces every change with `settings-changed`.

*Decision (issue 16):* the whole document (`get-settings` without `sections`) is answered from memory
for up to `DOCUMENT_FRESH_SECONDS` once every owner answered. A save or reset through this replica
forgets it before reading back, `settings-changed` (any replica's save) forgets it on every gateway
(bootstrap.py), and so does a restore; the bound covers an event missed while the bus was away, the
same bound `SettingsStore.values` gives a service's own replicas. A read that raced a change is not
kept. A part-answered document (an owner away) is never kept.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from tgm_contracts import ErrorCode, Service, validation_details
from tgm_contracts import sys as sysops
from tgm_contracts.commands import system as system_cmd
from tgm_contracts.events_system import SettingsChanged
from tgm_contracts.settings import SETTINGS_SECTIONS
from tgm_runtime import Invalid

from .. import bus
from ..bus import ALL_SERVICES
from ..settings import GatewaySettings

if TYPE_CHECKING:
    from ..app import Runtime


def _owners(sections: list[str] | None) -> list[Service]:
    names = sections if sections is not None else list(SETTINGS_SECTIONS)
    return sorted({SETTINGS_SECTIONS[s][0] for s in names}, key=ALL_SERVICES.index)


def _check_sections(sections: list[str] | None) -> None:
    unknown = [s for s in sections or [] if s not in SETTINGS_SECTIONS]
    if unknown:
        raise Invalid(
            f"unknown settings section(s): {', '.join(unknown)}",
            {"known": sorted(SETTINGS_SECTIONS)},
        )


#: How long a whole settings document gathered from the owners is served from memory.
DOCUMENT_FRESH_SECONDS = 5.0


class SettingsSections:
    def __init__(self, runtime: Runtime, settings: GatewaySettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self._document: tuple[float, system_cmd.SettingsDocument] | None = None
        self._generation = 0

    def forget(self) -> None:
        """A section changed somewhere: the next whole-document read asks the owners again."""
        self._generation += 1
        self._document = None

    def _timeout(self) -> float:
        # A section lives with one replica of its owner: answering takes longer than a broadcast echo.
        return self.settings.fanout_window_seconds * 5

    async def document(
        self, sections: list[str] | None, request_id: str | None
    ) -> system_cmd.SettingsDocument:
        _check_sections(sections)
        if sections is not None:
            return await self._gather(sections, request_id)
        kept = self._document
        if kept is not None and time.monotonic() - kept[0] < DOCUMENT_FRESH_SECONDS:
            return kept[1]
        generation, asked_at = self._generation, time.monotonic()
        doc = await self._gather(None, request_id)
        if not doc.unavailable and generation == self._generation:
            self._document = (asked_at, doc)
        return doc

    async def _gather(
        self, sections: list[str] | None, request_id: str | None
    ) -> system_cmd.SettingsDocument:
        replies = await bus.each(
            self.runtime.nc,
            sysops.SettingsGet,
            _owners(sections),
            {"sections": sections},
            self._timeout(),
            request_id,
        )
        found: list[dict[str, Any]] = []
        unavailable: list[str] = []
        for svc, reply in replies.items():
            if reply["ok"]:
                found.extend(reply["data"]["sections"])
            elif reply["error"]["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                unavailable.extend(
                    s
                    for s, (owner, _) in SETTINGS_SECTIONS.items()
                    if owner is svc and (sections is None or s in sections)
                )
            else:
                bus.raise_error(reply, svc)
        order = list(SETTINGS_SECTIONS)
        found.sort(key=lambda s: order.index(s["section"]))
        return system_cmd.SettingsDocument.model_validate(
            {
                "settings": {s["section"]: s["values"] for s in found},
                "sections": found,
                "unavailable": unavailable,
            }
        )

    async def save(
        self, req: system_cmd.SaveSettingsRequest, principal: str | None, request_id: str | None
    ) -> system_cmd.SettingsDocument:
        if not req.settings:
            raise Invalid("settings must name at least one section")
        _check_sections(list(req.settings))
        # Validate every section here first, so a bad value in one section does not leave others saved.
        errors = {}
        for section, changes in req.settings.items():
            model = SETTINGS_SECTIONS[section][1]
            try:
                model.model_validate({**model().model_dump(by_alias=True), **changes})
            except ValidationError as exc:
                errors[section] = validation_details(exc)
        if errors:
            raise Invalid("invalid settings", errors)
        for section, changes in req.settings.items():
            owner = SETTINGS_SECTIONS[section][0]
            expected = (req.expected_versions or {}).get(section)
            reply = await bus.request(
                self.runtime.nc,
                sysops.SettingsSave.subject(owner),
                {"section": section, "values": changes, "expectedVersion": expected},
                bus.trace_headers(request_id),
                self._timeout(),
            )
            self.forget()
            if not reply["ok"]:
                bus.raise_error(reply, owner)
            await self._announce(reply["data"], principal)
        return await self.document(None, request_id)

    async def reset(
        self, req: system_cmd.ResetSettingsRequest, principal: str | None, request_id: str | None
    ) -> system_cmd.SettingsDocument:
        _check_sections(req.sections)
        replies = await bus.each(
            self.runtime.nc,
            sysops.SettingsReset,
            _owners(req.sections),
            {"sections": req.sections},
            self._timeout(),
            request_id,
        )
        self.forget()
        for svc, reply in replies.items():
            if not reply["ok"]:
                bus.raise_error(reply, svc)
            for saved in reply["data"]["sections"]:
                await self._announce(saved, principal)
        return await self.document(None, request_id)

    async def _announce(self, saved: dict[str, Any], principal: str | None) -> None:
        # `publish`, not `emit`: every gateway replica follows the change through this event.
        await self.runtime.publish(
            SettingsChanged(
                section=saved["section"],
                version=saved["version"],
                values=saved["values"],
                changed_by=principal,
            )
        )
