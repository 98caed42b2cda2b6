"""Catch-up end to end (issue 12, finding 1): tg-session is SIGKILLed, an emulator user DMs a fleet
account "... STOP" and a few more messages (and posts in a basic group the account is in, which is
not monitored: it must not break anything); tg-session starts again. Every private message is one
`message-received` event (one event id, pushed over the gateway's WebSocket), chat history holds
each once, and the STOP opt-out is applied (the conversation says `optedOut`). Watched groups and
supergroups are covered by `services/tg-session/tests/test_catch_up_integration.py`. Scale:
`TGM_E2E_CAMPAIGN_SCALE` (a fraction, 0.1 in `make test`) scales the messages sent while down: 3 at
most in `make test`, 30 at full size."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SCALE = float(os.environ.get("TGM_E2E_CAMPAIGN_SCALE", "1"))


def test_messages_sent_while_tg_session_is_killed_arrive_once(
    emulator: EmulatorThread, start_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> None:
    world = emulator.world
    tag = uuid.uuid4().hex[:6]
    me = emulator.do(world.add_user, "+15550140001", first_name="Fleet")
    bob = emulator.do(world.add_user, "+15550140002", first_name="Bob", username="bob_catchup")
    owner = emulator.do(world.add_user, "+15550140003", first_name="Owner")
    chat, _, _ = emulator.do(world.create_chat, owner, "Catch-up room", [me, bob])
    env = {"TGM_SESSION_CLAIM_INTERVAL_SECONDS": "0.5"}
    stack = start_stack(services=("tg-session", "campaign"), emulator=emulator, env=env)
    with GatewayClient(stack) as gw, gw.events(["tgm.tg-session.evt.message-received.v1"]) as pushed:
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
        acc = gw.ok("add-account", {"phone": "+15550140001"})
        gw.ok("login-account", {"accountId": acc["id"]})
        gw.ok(
            "verify-code", {"accountId": acc["id"], "phoneCode": emulator.do(world.last_code, "+15550140001")}
        )
        wait_until(
            lambda: gw.ok("get-accounts", {"ids": [acc["id"]]})["items"][0]["connected"], 30, "connected"
        )
        emulator.do(world.post, bob, me, f"before {tag}")
        pushed.wait("message-received", lambda d: d["text"] == f"before {tag}", timeout=20)

        stack.kill("tg-session")
        missed = [f"missed {i} {tag}" for i in range(max(3, round(30 * SCALE)))] + [f"please STOP {tag}"]
        for text in missed:
            emulator.do(world.post, bob, me, text)
        emulator.do(world.post, bob, chat, f"in the group {tag}")
        stack.restart("tg-session")

        for text in missed:
            pushed.wait("message-received", lambda d, t=text: d["text"] == t, timeout=30)

        def counts() -> Counter[str]:
            """Distinct events per text: a message seen twice (live, then re-fetched because the kill
            came before its state was stored) is pushed twice on core NATS with one event id, which
            the stream and every consumer keep once."""
            seen = {(d["text"], d["eventId"]) for d in pushed.named("message-received") if tag in d["text"]}
            return Counter(text for text, _ in seen)

        wait_until(lambda: all(counts()[t] >= 1 for t in missed), 30, "every missed message")
        assert all(counts()[t] == 1 for t in [f"before {tag}", *missed]), counts()

        def history() -> list[str]:
            page = gw.ok("get-chat-history", {"accountId": acc["id"], "peer": bob.id, "limit": 100})
            return [m["text"] for m in page["items"] if m.get("text") and tag in m["text"]]

        wait_until(lambda: set(history()) >= {f"before {tag}", *missed}, 30, "chat history")
        assert Counter(history()) == Counter([f"before {tag}", *missed]), history()

        def opted_out() -> bool:
            convs = gw.ok("get-private-messages", {"accountId": acc["id"], "limit": 50})["items"]
            return any(c["peer"].get("userId") == bob.id and c.get("optedOut") for c in convs)

        wait_until(opted_out, 30, "the STOP opt-out applied")
