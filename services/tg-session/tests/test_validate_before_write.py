"""Validate before write for tg-session (issue 13): every save/add/create/update command the service
owns, given invalid payloads made from its request schema (`tgm_testing.invalid`), answers within
seconds with an error envelope that is not INTERNAL/TIMEOUT, and a refused payload writes
nothing (seen through the database's change stream; the peers the live account learns aside);
afterwards every read without required fields still answers."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import REGISTRY, Service
from tgm_contracts.commands import accounts as A
from tgm_testing.invalid import Writes, schema_cases, walk, write_commands

from .conftest import API_HASH
from .test_groups_extraction import logged_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: Written by the connected account's update loop whatever the commands do (peers it learns).
BACKGROUND = {"peers"}


async def bases(r: Any, world: Any) -> dict[str, dict[str, Any]]:
    """A valid payload of each command. The commands that reach Telegram name a connected account;
    the others an account that is not connected, so that an accepted proxy change starts no
    reconnection writing to it while the walk goes on; qr-login-create names an account that does not
    exist (NOT_FOUND after validation, so no QR flow keeps writing either)."""
    world.add_user("+15550100001", first_name="Ann")
    live = (await logged_in(r, world))["id"]
    idle = (await r.ok(A.AddAccount, {"phone": "+15550100002"}))["id"]
    await r.ok(A.SaveGroups, {"groups": [{"name": "Sales"}]})
    proxy = {"type": "socks5", "host": "127.0.0.2", "port": 1080, "username": "u", "password": "p"}
    return {
        "add-account": {
            "phone": "+15550100201",
            "label": "walk",
            "group": "Sales",
            "tags": ["w"],
            "proxy": proxy,
        },
        "batch-update-accounts": {
            "accountIds": [idle],
            "updates": {"group": "Sales", "tags": {"mode": "add", "tags": ["w"]}, "dailySendLimit": 10},
        },
        "create-group": {"accountId": live, "title": "Walk group", "about": "a walk", "members": []},
        "ip-bind": {"accountId": idle, "proxy": proxy, "verify": False, "reconnect": False},
        "qr-login-create": {"accountId": "acc_missing", "label": "qr walk", "group": "Sales", "tags": ["w"]},
        "save-api-credential": {
            "apiId": 12345,
            "apiHash": API_HASH,
            "name": "walk",
            "maxAccounts": 5,
            "test": False,
        },
        "save-groups": {"groups": [{"name": "Support", "color": "#ff0000", "description": "help"}]},
        "save-personas": {"personas": [{"name": "Friendly", "tone": "friendly", "speakingStyle": "short"}]},
        "save-tags": {"tags": [{"name": "vip", "color": "#00ff00"}]},
        "update-account": {"accountId": idle, "label": "renamed", "group": "Sales", "dailySendLimit": 20},
        "update-account-data": {"accountId": live, "firstName": "Ann", "lastName": "Walker", "bio": "hi"},
        # a token the emulator does not know: an accepted case is refused by Telegram, storing nothing
        "add-telegram-bot": {"token": "123456789:" + "A" * 35, "name": "walk"},
    }


def fresh_phones(cases: Any) -> Any:
    """Each add-account case with a phone of its own, so that one accepted case does not turn the
    rest into a duplicate-phone CONFLICT before their own fields are looked at."""
    for n, (label, payload) in enumerate(cases):
        yield label, payload if label.startswith("phone") else {**payload, "phone": f"+1555020{n:04d}"}


async def test_invalid_writes_change_nothing_stored(replicas, tg_world):
    r = await replicas()
    base = await bases(r, tg_world)
    commands = write_commands(REGISTRY.owned_by(Service.TG_SESSION))
    assert {c.NAME for c in commands} == set(base), "every tg-session write command needs a base here"
    reads = [
        c
        for c in REGISTRY.owned_by(Service.TG_SESSION)
        if c.NAME.split("-")[0] in {"get", "ip"} and not c.Request.model_json_schema().get("required")
    ]
    groups = [(cmd, schema_cases(cmd, base[cmd.NAME])) for cmd in commands]
    async with Writes(r.db.client, [r.db.name], ignore=BACKGROUND) as writes:
        walked = await walk(
            [(cmd, fresh_phones(cases) if cmd is A.AddAccount else cases) for cmd, cases in groups],
            r.call,
            writes.state,
            reads=reads,
        )
    assert walked.tried > 300, walked.tried
    assert not walked.failures, "\n".join(walked.failures)
    # The one non-null taken: the same account id 501 times is one account once (AccountIds).
    assert walked.accepted_non_null() == ["batch-update-accounts accountIds: over maxItems"]
