"""Validate before write for the gateway's own commands (issue 13): every command the gateway owns,
and every field of every settings section through `save-settings` and through each owner's own
`sys.settings-save` (a service never trusts its caller), given invalid payloads made from the
schemas (`tgm_testing.invalid`), answers an error envelope that is not INTERNAL/TIMEOUT within
seconds, with no write to any database of the system (seen through the change stream) and
`get-settings` reading back the same document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tgm_contracts import REGISTRY, Service
from tgm_contracts.commands import system as S
from tgm_contracts.settings import SETTINGS_SECTIONS
from tgm_contracts.sys import SettingsSave
from tgm_runtime.testing import signed_headers
from tgm_testing.invalid import Writes, invalid_payloads, refused_by, refused_by_contract, schema_cases, walk

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.asyncio(loop_scope="module"),
]

#: A valid payload of each gateway command that takes one (graceful-shutdown only ever gets invalid
#: ones: its base is never sent).
BASES: dict[str, dict[str, Any]] = {
    "save-settings": {"settings": {"general": {"language": "en"}}},
    "reset-settings": {"confirm": True, "sections": ["general"]},
    "get-settings": {"sections": ["general"]},
    "get-backup-status": {"limit": 5},
    "backup-database": {"label": "walk", "wait": True},
    "restore-database": {"confirm": True, "backupId": "no-such-backup", "wait": True},
    "graceful-shutdown": {"confirm": True, "includeGateway": False},
}


def refused(cmd: Any, payload: dict[str, Any]) -> bool:
    """The contract's verdict, for a settings section by the section's own model."""
    sections = payload.get("settings") if cmd is S.SaveSettings else None
    if isinstance(cmd, str):  # sys.settings-save of an owner
        sections = {payload["section"]: payload["values"]}
    if isinstance(sections, dict) and len(sections) == 1:
        ((section, values),) = sections.items()
        if section in SETTINGS_SECTIONS:
            return refused_by(SETTINGS_SECTIONS[section][1], values)
    return refused_by_contract(cmd, payload)


def caller(system: System) -> Any:
    async def call(cmd: Any, payload: dict[str, Any]) -> dict[str, Any]:
        subject = cmd if isinstance(cmd, str) else cmd.SUBJECT
        data = json.dumps(payload).encode()
        headers = signed_headers(system.runtime, subject, data, principal="walk")
        msg = await system.runtime.nc.request(subject, data, timeout=30, headers=headers)
        return json.loads(msg.data)

    return call


async def test_invalid_gateway_commands_and_settings_change_nothing(system: System) -> None:
    call = caller(system)
    dbs = [system.runtime.db, *(rt.db for rt in system.runtimes.values())]
    writes = Writes(system.runtime.db.client, [db.name for db in dbs])

    async def state() -> Any:
        settings = await call(S.GetSettings, {})
        assert settings["ok"], settings
        return await writes.state(), settings["data"]

    commands = [
        c for c in REGISTRY.owned_by(Service.GATEWAY) if c.Request.model_json_schema().get("properties")
    ]
    assert {c.NAME for c in commands} == set(BASES), "every gateway command with a payload needs a base here"
    groups: list[tuple[Any, Any]] = [(cmd, schema_cases(cmd, BASES[cmd.NAME])) for cmd in commands]
    for section, (owner, model) in SETTINGS_SECTIONS.items():
        cases = list(invalid_payloads(model.model_json_schema(by_alias=True), {}))
        groups.append(
            (S.SaveSettings, [(f"{section}.{lbl}", {"settings": {section: p}}) for lbl, p in cases])
        )
        groups.append(
            (
                SettingsSave.subject(owner),
                [(f"{section}.{lbl}", {"section": section, "values": p}) for lbl, p in cases],
            )
        )
    async with writes:
        walked = await walk(groups, call, state, reads=[S.GetBackupStatus], refused=refused)
    assert walked.tried > 150, walked.tried
    assert not walked.failures, "\n".join(walked.failures)
    assert not walked.accepted_non_null(), walked.accepted_non_null()
