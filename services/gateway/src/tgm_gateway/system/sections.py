"""The settings document across the fleet: each section lives with the service that owns it
(`tgm_contracts.settings.SETTINGS_SECTIONS`); the gateway reads, saves and resets it there and
announces every change with `settings-changed`."""

from __future__ import annotations

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


class SettingsSections:
    def __init__(self, runtime: Runtime, settings: GatewaySettings) -> None:
        self.runtime = runtime
        self.settings = settings

    def _timeout(self) -> float:
        # A section lives with one replica of its owner: answering takes longer than a broadcast echo.
        return self.settings.fanout_window_seconds * 5

    async def document(
        self, sections: list[str] | None, request_id: str | None
    ) -> system_cmd.SettingsDocument:
        _check_sections(sections)
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
