"""Multi-role collaboration end to end (issue 14): the stack as processes, driven through the
gateway, against the Telegram emulator (real Telethon inside tg-session).

Three role accounts play a script in a group the target user is in:

- stage 1 (time): three lines, one per role; campaign is SIGKILLed after the first is delivered
  and restarted: the run resumes and no line is repeated (the emulator's record);
- stage 2 (the target's message): the target writes, the run advances, the stage's line is sent;
- stage 3 (the target's message): the target writes STOP: the run ends (`stopped`), nobody writes
  again, the target is opted out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MARK = -1_000_000_000_000  # marked channel ids: MARK - channel.id
STAGE1 = ["Morning all [e1]", "I switched last month [b1]", "Ask me anything [s1]"]
STAGE2 = "Glad you asked [s2]"
STAGE3 = "Here is the plan [e3]"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def seed(emulator: EmulatorThread) -> dict[str, Any]:
    w = emulator.world
    out: dict[str, Any] = {}

    def build() -> None:
        owner = w.add_user("+15550790000", first_name="Owner", username="collab_owner")
        agents = [
            w.add_user(f"+1555079{i:04d}", first_name=f"Role{i}", username=f"collab_role_{i}")
            for i in (1, 2, 3)
        ]
        target = w.add_user("+15550780001", first_name="Tara", username="collab_tara")
        group = w.create_channel(owner, "Product Club", username="collabclub")
        w.invite_to_channel(owner, group, [*agents, target])
        out.update(
            agents=agents, target=target, group=group, sessions=[emulator.emu.session_for(a) for a in agents]
        )

    emulator.do(build)
    return out


def ours_in_group(emulator: EmulatorThread, world: dict[str, Any]) -> list[tuple[str, int]]:
    ours = {a.id for a in world["agents"]}
    return emulator.do(
        lambda: [
            (d.text, d.from_user_id)
            for d in emulator.world.deliveries
            if d.from_user_id in ours and d.chat_id == world["group"].id
        ]
    )


@pytest.mark.timeout(240)
def test_three_roles_reply_stop_and_sigkill(
    emulator: EmulatorThread, start_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> None:
    world = seed(emulator)
    stack = start_stack(services=("tg-session", "campaign"), emulator=emulator)
    with GatewayClient(stack, timeout=120) as gw:
        creds = gw.ok("get-api-credentials")["items"]
        gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
        ids = [
            gw.ok(
                "add-account",
                {
                    "phone": f"+1555079{i:04d}",
                    "sessionString": s,
                    "dailySendLimit": 200,
                    "warmupEnabled": False,
                },
            )["id"]
            for i, s in zip((1, 2, 3), world["sessions"], strict=True)
        ]
        wait_until(
            lambda: all(
                a["connected"] and a["state"] == "active"
                for a in gw.ok("get-accounts", {"ids": ids})["items"]
            ),
            90,
            "role accounts connected",
        )
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
        slots = ("expert", "buyer", "support")
        roles = {
            slot: gw.ok(
                "save-role",
                {
                    "name": slot.title(),
                    "type": "custom",
                    "boundAccountId": acct,
                    "aiConfig": {"typingSpeed": 2000},
                },
            )["id"]
            for slot, acct in zip(slots, ids, strict=True)
        }

        def line(slot: str, text: str, delay: int) -> dict[str, Any]:
            return {
                "slot": slot,
                "text": text,
                "delaySeconds": delay,
                "jitterSeconds": 0,
                "simulateTyping": False,
            }

        script = gw.ok(
            "save-script",
            {
                "name": "club talk",
                "roles": [{"key": s} for s in slots],
                "stages": [
                    {"name": "open", "lines": [line(s, t, 3) for s, t in zip(slots, STAGE1, strict=True)]},
                    {"name": "answer", "trigger": {"type": "message"}, "lines": [line("support", STAGE2, 1)]},
                    {"name": "plan", "trigger": {"type": "message"}, "lines": [line("expert", STAGE3, 1)]},
                ],
            },
        )
        chat = MARK - world["group"].id
        run = gw.ok(
            "start-collaboration",
            {"scriptId": script["id"], "roleBindings": roles, "chat": chat, "target": world["target"].id},
        )
        rid = run["id"]

        def status() -> dict[str, Any]:
            item: dict[str, Any] = gw.ok("get-collaboration-status", {"runId": rid})["items"][0]
            return item

        wait_until(lambda: len(ours_in_group(emulator, world)) >= 1, 60, "the first line")
        restart = stack.kill("campaign")
        say(f"SIGKILLed campaign (pid {restart}) after the first line")
        stack.restart("campaign")
        wait_until(lambda: status()["waitingFor"] == "message", 90, "stage 1 played after the restart")
        sent = ours_in_group(emulator, world)
        assert [t for t, _ in sent] == STAGE1, sent  # resumed, nothing repeated
        agent_ids = [a.id for a in world["agents"]]
        assert [who for _, who in sent] == agent_ids  # each line by its role's account

        # the target replies: stage 2 plays
        emulator.do(emulator.world.post, world["target"], world["group"], "How does it work for you?")
        wait_until(lambda: len(ours_in_group(emulator, world)) >= 4, 60, "stage 2's line")
        wait_until(
            lambda: status()["waitingFor"] == "message" and status()["currentStage"] == 2, 30, "stage 3 waits"
        )
        assert status()["replies"] == 1

        # STOP: the run ends and nobody writes again
        emulator.do(emulator.world.post, world["target"], world["group"], "STOP")
        wait_until(lambda: status()["status"] == "stopped", 60, "the run stopped")
        view = status()
        assert view["outcome"] == "stopped" and view["messagesSent"] == 4
        sent = ours_in_group(emulator, world)
        assert [t for t, _ in sent] == [*STAGE1, STAGE2], sent
