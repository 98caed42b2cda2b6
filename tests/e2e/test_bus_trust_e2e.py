"""Issue 13, finding 7 on the whole system: the bus trusts no one.

A process that reaches the stack's nats-server without credentials cannot connect (so it neither calls
a command nor reads a reply); one that has a NATS login but skipped the gateway — here the gateway's own
NATS user, the one allowed to publish every command — sends the issue's
`tgm.tg-session.cmd.delete-api-credential.v1` and tg-session refuses it (UNAUTHORIZED) and deletes
nothing; a viewer principal correctly signed with the bus key is FORBIDDEN by tg-session itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats
import pytest
from tgm_contracts import Headers, bus
from tgm_contracts.commands.telegram_ops import DeleteApiCredential
from tgm_runtime.testing import bus_auth_for, signed_headers
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SUBJECT = DeleteApiCredential.SUBJECT


def _credentials(gw: GatewayClient) -> list[str]:
    return [c["id"] for c in gw.ok("get-api-credentials", {})["items"]]


async def _as_gateway_user(stack: Stack, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    nc = await nats.connect(
        stack.nats_url_for("gateway"),
        allow_reconnect=False,
        connect_timeout=5,
        inbox_prefix=bus.inbox_prefix("gateway"),
    )
    try:
        reply = await nc.request(SUBJECT, data, timeout=15, headers=headers)
        answer: dict[str, Any] = json.loads(reply.data)
        return answer
    finally:
        await nc.close()


def test_a_command_that_skipped_the_gateway_is_refused_and_nothing_changes(
    stack: Stack, gw: GatewayClient
) -> None:
    created = gw.ok(
        "save-api-credential", {"apiId": 424242, "apiHash": "a" * 32, "name": "bus", "test": False}
    )
    cred = created["id"]
    assert cred in _credentials(gw)
    data = json.dumps({"id": cred}).encode()

    # No credentials: no connection at all.
    assert stack.nats is not None
    with pytest.raises(Exception, match=r"(?i)authorization"):
        asyncio.run(
            nats.connect(stack.nats.url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0)
        )

    # A NATS login but no gateway signature: the role header alone, as the issue sent it.
    unsigned = asyncio.run(_as_gateway_user(stack, data, {Headers.ROLE: "admin", Headers.PRINCIPAL: "x"}))
    assert unsigned["ok"] is False and unsigned["error"]["code"] == "UNAUTHORIZED", unsigned
    assert cred in _credentials(gw)

    # Signed with the stack's bus key, but as a viewer: tg-session checks the least role itself.
    auth = bus_auth_for(stack.master_key_file)
    viewer = asyncio.run(_as_gateway_user(stack, data, signed_headers(auth, SUBJECT, data, role="viewer")))
    assert viewer["ok"] is False and viewer["error"]["code"] == "FORBIDDEN", viewer
    assert cred in _credentials(gw)

    # Through the gateway with the admin key (signed by the gateway) it runs.
    assert gw.ok("delete-api-credential", {"id": cred})["deleted"] is True
    assert cred not in _credentials(gw)
