"""No ai use case writes before its input is fully validated (issue 13, finding 2): every save/add
command of the registry owned by ai, given invalid payloads made from its request schema
(`tgm_testing.invalid`), answers ok (the field is legitimately nullable) or an error that is not
INTERNAL with every collection of the service byte-identical; afterwards every read command without
required fields still answers (nothing stored that a later read cannot serve)."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import REGISTRY, Service
from tgm_contracts.commands import ai as C
from tgm_testing.invalid import schema_cases, snapshot, walk, write_commands

from .conftest import ok

pytestmark = [pytest.mark.component, pytest.mark.timeout(300)]


async def bases(client: Any) -> dict[str, dict[str, Any]]:
    """A valid payload of each command, naming things that exist."""
    strategy = await ok(client, C.AiSaveStrategy, {"name": "Sales", "persona": "A friendly seller"})
    await ok(client, C.AiMemorySave, {"accountId": "acc1", "userId": "42", "facts": [{"text": "likes tea"}]})
    return {
        "save-ai-settings": {"openai": {"enabled": False}},
        "ai-save-strategy": {"id": strategy["id"], "name": "Sales", "tone": "warm", "temperature": 0.5},
        "ai-memory-save": {
            "accountId": "acc1",
            "userId": "42",
            "facts": [{"text": "likes green tea", "importance": 0.7}],
            "preferences": {"lang": "en"},
            "tags": ["vip"],
        },
        "add-knowledge": {"question": "How long is shipping?", "answer": "Three days.", "tags": ["ship"]},
        "rag-add-document": {
            "text": "Returns are accepted within 14 days.",
            "title": "Returns",
            "wait": True,
        },
    }


async def test_invalid_saves_change_nothing_stored(client, runtime):
    base = await bases(client)
    commands = write_commands(REGISTRY.owned_by(Service.AI))
    assert {c.NAME for c in commands} == set(base), "every ai save command needs a base payload here"
    reads = [
        c
        for c in REGISTRY.owned_by(Service.AI)
        if c.NAME.split("-")[0] in {"get", "list"} and not c.Request.model_json_schema().get("required")
    ]
    walked = await walk(
        [(cmd, schema_cases(cmd, base[cmd.NAME])) for cmd in commands],
        client.call,
        lambda: snapshot(runtime.db),
        reads=reads,
    )
    assert walked.tried > 100
    assert not walked.failures, "\n".join(walked.failures)
