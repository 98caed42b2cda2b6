"""Bad input to tg-session answers a clear VALIDATION_ERROR, never INTERNAL (issue 13, finding 5)."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import telegram_ops as T

from .test_groups_extraction import logged_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_get_group_members_refuses_a_float_limit_and_a_negative_group(replicas, tg_world):
    tg_world.add_user("+15550100001", first_name="Ann")
    owner = tg_world.add_user("+15550100009", first_name="Owner")
    tg_world.create_channel(owner, "Python Lobby", username="pylobby")
    r = await replicas()
    acc = await logged_in(r, tg_world)
    malformed = [
        {"group": "@pylobby", "limit": 2.5},
        {"group": "@pylobby", "limit": 1e300},
        {"group": "@pylobby", "limit": True},
        {"group": 1.5},
        {"group": 2**70},
        {"group": -(2**64)},
    ]
    for case in malformed:
        reply = await r.call(T.GetGroupMembers, {"accountId": acc["id"], **case})
        assert not reply["ok"] and reply["error"]["code"] == "VALIDATION_ERROR", (case, reply)
    # Well-formed ids of chats this account cannot see (a basic group, a channel, a user): not found.
    for group in (-5, "-5", -1, -(2**63), -1009999999999):
        reply = await r.call(T.GetGroupMembers, {"accountId": acc["id"], "group": group})
        assert not reply["ok"] and reply["error"]["code"] == "NOT_FOUND", (group, reply)
    page = await r.ok(T.GetGroupMembers, {"accountId": acc["id"], "group": "@pylobby", "limit": 2.0})
    assert page["total"] == 1
