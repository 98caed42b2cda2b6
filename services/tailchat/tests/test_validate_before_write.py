"""Validate before write for tailchat (issue 13's walk): every channels command, given invalid payloads
made from its request schema (`tgm_testing.invalid`), answers at once with an error envelope that is
not INTERNAL/TIMEOUT, and a payload its contract refuses writes nothing (the database's change
stream); afterwards every read without required fields still answers. About 220 payloads."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import REGISTRY, Service
from tgm_contracts.commands import channels as cmd
from tgm_runtime.testing import RuntimeClient
from tgm_testing.invalid import Writes, refused_by_contract, schema_cases, walk

from .conftest import APP_ID, MockTailchat, register_payload

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]

MARKUP = {
    "replyKeyboard": {"rows": [[{"text": "Yes"}]], "placeholder": "pick"},
    "inline": {
        "actions": [{"id": "ok", "type": "invoke", "label": "OK", "params": {"n": 1}}],
        "rows": [{"actions": ["ok"]}],
    },
}
BASES: dict[str, dict[str, Any]] = {
    "register-tailchat-app": register_payload(name="Walk"),
    "get-tailchat-apps": {},
    "check-tailchat-app": {"appId": APP_ID},
    "remove-tailchat-app": {"appId": "nosuchapp"},
    "rotate-tailchat-callback-token": {"appId": APP_ID, "apply": False},
    "set-tailchat-bot-info": {
        "appId": APP_ID,
        "allowGroup": True,
        "commands": [{"command": "help", "description": "Help", "scope": {"type": "chat", "chatId": "c1"}}],
    },
    "get-tailchat-commands": {"appId": APP_ID, "scopeType": "chat", "chatId": "c1", "ifVersion": 1},
    "send-channel-message": {"appId": APP_ID, "converseId": "c1", "text": "hi", "markup": MARKUP},
    "edit-channel-message": {"appId": APP_ID, "messageId": "m0001", "text": "v2", "markup": MARKUP},
    "delete-channel-message": {"appId": APP_ID, "messageId": "m9999"},
    "answer-callback": {"appId": APP_ID, "traceId": "t1", "userId": "u1", "text": "done"},
}


async def test_every_command_refuses_invalid_payloads_without_writing(
    client: RuntimeClient, tailchat: MockTailchat
) -> None:
    await client.data(cmd.RegisterTailchatApp, register_payload())
    await client.data(cmd.SendChannelMessage, {"appId": APP_ID, "converseId": "c1", "text": "first"})
    commands = REGISTRY.owned_by(Service.TAILCHAT)
    assert {c.NAME for c in commands} == set(BASES), "every channels command needs a base here"
    assert not [c.NAME for c in commands if refused_by_contract(c, BASES[c.NAME])], "a base must be valid"
    reads = [
        c for c in commands if c.NAME.startswith("get-") and not c.Request.model_json_schema().get("required")
    ]
    db = client.runtime.db
    async with Writes(db.client, [db.name]) as writes:
        walked = await walk(
            [(c, schema_cases(c, BASES[c.NAME])) for c in commands], client.call, writes.state, reads=reads
        )
    assert walked.tried > 200, walked.tried
    assert not walked.failures, "\n".join(walked.failures)
