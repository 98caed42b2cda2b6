"""The catalogue is complete, owned as COMMANDS.md says, and its schemas are committed and compatible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tgm_contracts import REGISTRY, Domain, Role, Service, subjects
from tgm_contracts.schemas import DEFAULT_DIR, breaking_changes, compare

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[3]
ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*`([a-z0-9-]+)`\s*\|")
#: A row of a "(not seed commands)" section: command first, then owner, domain, least role.
CHANNEL_ROW = re.compile(r"^\|\s*`([a-z0-9-]+)`\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|")


def catalogue() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (ROOT / "docs" / "COMMANDS.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(3)] = (m.group(1), m.group(2))
    return rows


def channel_rows() -> dict[str, tuple[str, str, str]]:
    rows = {}
    for line in (ROOT / "docs" / "COMMANDS.md").read_text().splitlines():
        m = CHANNEL_ROW.match(line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def test_commands_md_lists_193() -> None:
    assert len(catalogue()) == 193


def test_every_command_is_declared_with_its_owner_and_domain() -> None:
    expected = catalogue()
    seed = {c.NAME for c in REGISTRY.seed()}
    missing = sorted(set(expected) - seed)
    assert not missing, f"commands not declared in tgm_contracts: {missing}"
    extra = sorted(seed - set(expected))
    assert not extra, f"commands not in the seed catalogue: {extra}"
    wrong = {
        name: (cmd.OWNER.value, cmd.DOMAIN.value, expected[name])
        for name in expected
        if (cmd := REGISTRY.get(name)) and (cmd.OWNER.value, cmd.DOMAIN.value) != expected[name]
    }
    assert not wrong


def test_channel_commands_are_listed_as_not_seed_commands() -> None:
    # Every command that is not the seed's is in a "not seed commands" section of COMMANDS.md: the 11
    # Tailchat and 4 Telegram bot channels commands, and analytics' rebuild (issue 12).
    listed = channel_rows()
    declared = {c.NAME: c for c in REGISTRY.all() if not c.SEED}
    assert set(listed) == set(declared)
    assert sum(1 for c in declared.values() if c.DOMAIN is Domain.CHANNELS) == 15
    for name, (owner, domain, role) in listed.items():
        cmd = declared[name]
        assert (cmd.OWNER.value, cmd.DOMAIN.value, cmd.ROLE.label) == (owner, domain, role), name
        assert cmd.describe()["seed"] is False
    assert all(c.describe()["seed"] is True for c in REGISTRY.seed())


def test_subjects_follow_the_grammar() -> None:
    for cmd in REGISTRY.all():
        assert f"tgm.{cmd.OWNER.value}.cmd.{cmd.NAME}.v{cmd.VERSION}" == cmd.SUBJECT
    assert subjects.account("a1", "send", 1) == "tgm.acct.a1.send.v1"
    with pytest.raises(ValueError):
        subjects.account("a.b", "send", 1)


def test_reads_are_viewer_and_destructive_commands_are_admin() -> None:
    for cmd in REGISTRY.all():
        if cmd.NAME.startswith("get-"):
            assert cmd.ROLE is Role.VIEWER, cmd.NAME
        if cmd.NAME.startswith(("delete-", "bulk-delete-", "clear-", "restore-", "reset-")):
            assert cmd.ROLE is Role.ADMIN, cmd.NAME


def test_requests_reject_unknown_fields_with_field_errors() -> None:
    from pydantic import ValidationError

    for cmd in REGISTRY.all():
        confirm = {"confirm": True} if cmd.destructive() else {}
        with pytest.raises(ValidationError) as info:
            cmd.Request.model_validate({"definitelyNotAField": 1, **confirm})
        errors = info.value.errors()
        assert any(e["loc"][-1] == "definitelyNotAField" or e["type"] == "missing" for e in errors)


#: The commands the confirm rule names (`tgm_contracts.base`): bulk erasures, replacing the database,
#: ending an account's Telegram session, stopping the system.
DESTRUCTIVE = {
    "ai-memory-clear",
    "bulk-delete-accounts",
    "clear-alerts",
    "clear-knowledge",
    "clear-logs",
    "clear-queue",
    "graceful-shutdown",
    "logout-account",
    "remove-account",
    "reset-settings",
    "restore-database",
}

#: The least valid payload of each, besides `confirm`.
_BASE = {
    "ai-memory-clear": {"accountId": "acc1"},
    "bulk-delete-accounts": {"accountIds": ["acc1"]},
    "clear-logs": {"all": True},
    "logout-account": {"accountId": "acc1"},
    "remove-account": {"accountId": "acc1"},
    "restore-database": {"backupId": "b1"},
}


def test_destructive_commands_are_exactly_the_confirmed_ones() -> None:
    assert {c.NAME for c in REGISTRY.all() if c.destructive()} == DESTRUCTIVE
    for cmd in REGISTRY.all():
        assert cmd.describe()["destructive"] is (cmd.NAME in DESTRUCTIVE), cmd.NAME


@pytest.mark.parametrize("name", sorted(DESTRUCTIVE))
def test_destructive_commands_refuse_without_confirm_and_run_with_it(name: str) -> None:
    from pydantic import ValidationError
    from tgm_contracts import invalid_payload_message

    cmd = REGISTRY.get(name)
    assert cmd is not None
    base = _BASE.get(name, {})
    for refused in ({}, {"confirm": False}, {"confirm": "true"}, {"confirm": 1}):
        with pytest.raises(ValidationError) as info:
            cmd.parse({**base, **refused})
        message = invalid_payload_message(name, info.value)
        assert message.startswith(f"{name} ") and message.endswith(": send confirm: true to go ahead")
        assert message == cmd.Request.refusal()  # type: ignore[attr-defined]
    req = cmd.parse({**base, "confirm": True})
    assert req.wire()["confirm"] is True
    schema = cmd.Request.model_json_schema()
    assert "confirm" in schema["required"] and schema["properties"]["confirm"]["const"] is True


def test_other_payload_errors_keep_the_generic_message() -> None:
    from pydantic import ValidationError
    from tgm_contracts import invalid_payload_message

    cmd = REGISTRY.get("clear-logs")
    assert cmd is not None
    with pytest.raises(ValidationError) as info:
        cmd.parse({"confirm": True})  # no cut given
    assert invalid_payload_message("clear-logs", info.value) == "invalid payload for clear-logs"


def test_committed_schemas_are_fresh_and_compatible() -> None:
    stale, breaking = compare(DEFAULT_DIR)
    assert not breaking, "breaking contract changes within a major version:\n" + "\n".join(breaking)
    assert not stale, "schemas are stale; run `tgm-schemas write`:\n" + "\n".join(stale[:20])


def test_compatibility_rules() -> None:
    old = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    optional_added = {**old, "properties": {**old["properties"], "c": {"type": "string"}}}
    assert breaking_changes(old, optional_added) == []
    required_added = {**optional_added, "required": ["a", "c"]}
    assert breaking_changes(old, required_added) == [".c: newly required"]
    removed = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert breaking_changes(old, removed) == ["b: removed"]
    retyped = {**old, "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    assert breaking_changes(old, retyped)
    assert breaking_changes(old, {**old, "required": []}, reading=True) == [".a: no longer always present"]


def test_enums_are_closed() -> None:
    assert {s.value for s in Service} == {"gateway", "tg-session", "campaign", "ai", "analytics", "tailchat"}
    assert len(Domain) == 10  # the seed's nine sections and channels
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
