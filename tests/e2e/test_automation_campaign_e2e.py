"""An automation campaign end to end (issue 11): the stack as processes (nats-server, database,
tg-session, campaign, gateway) driven only through the gateway, against the Telegram emulator.

300 targets (`TGM_E2E_CAMPAIGN_SCALE` shrinks it: 0.1 in `make test` -> 30): half of them leads
selected by a tag, half an explicit peer list; one target is blacklisted, one wrote a stop word. The
campaign has two steps, the second a second after the first's send, so when campaign is SIGKILLed
(a third of the way through the deliveries, then restarted) its runner is moving targets from step
to step. Then every other target has each step exactly once (the emulator's record: no duplicate,
no gap), the two excluded ones nothing, and get-campaign-stats equals the emulator's record (sent,
per step, per account) with the two skips by reason.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCALE = float(os.environ.get("TGM_E2E_CAMPAIGN_SCALE", "1"))
TARGETS = max(30, round(300 * SCALE))
ACCOUNTS = max(2, round(10 * SCALE))
BLACKLISTED = 1  # index of the blacklisted target (a lead)
OPTED_OUT = TARGETS - 2  # index of the opted-out target (a peer)
MARK = "spring-e2e"
PACING = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.2,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "perChatMinIntervalSeconds": 0.0,
    "perAccountPerMinute": 28,
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class World:
    accounts: list[Any] = field(default_factory=list)
    users: list[Any] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)


def seed(emulator: EmulatorThread) -> World:
    w = emulator.world
    out = World()

    def build() -> None:
        for i in range(ACCOUNTS):
            u = w.add_user(f"+1555070{i:04d}", first_name=f"Seller{i}", username=f"seller_e2e_{i}")
            out.accounts.append(u)
            out.sessions.append(emulator.emu.session_for(u))
        for j in range(TARGETS):
            out.users.append(
                w.add_user(f"+1555080{j:04d}", first_name=f"Buyer{j}", username=f"buyer_e2e_{j}")
            )

    emulator.do(build)
    return out


def onboard(gw: GatewayClient, world: World) -> list[str]:
    creds = gw.ok("get-api-credentials", {})["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 1000, "test": False})
    ids = []
    for i, session in enumerate(world.sessions):
        acc = gw.ok(
            "add-account",
            {
                "phone": f"+1555070{i:04d}",
                "sessionString": session,
                "dailySendLimit": 1000,
                "warmupEnabled": False,
            },
        )
        ids.append(acc["id"])

    def connected() -> bool:
        items = gw.ok("get-accounts", {"ids": ids, "limit": 500})["items"]
        return len(items) == len(ids) and all(a["connected"] and a["state"] == "active" for a in items)

    wait_until(connected, 120, "accounts connected")
    gw.ok("save-settings", {"settings": {"pacing": PACING}})
    say(f"{len(ids)} accounts connected")
    return ids


def users_write_first(emulator: EmulatorThread, gw: GatewayClient, world: World) -> None:
    """Every target wrote to the fleet first (not a stranger); one of them with a stop word."""

    def post() -> None:
        for j, user in enumerate(world.users):
            text = "STOP" if j == OPTED_OUT else f"hello, tell me more ({j})"
            emulator.world.post(user, world.accounts[j % ACCOUNTS], text)

    emulator.do(post)
    wait_until(
        lambda: len(gw.pages("get-private-messages", {"limit": 500})) >= TARGETS,
        120,
        "conversations recorded",
        interval=1.0,
    )


def campaign_deliveries(emulator: EmulatorThread, world: World) -> list[Any]:
    ours = {a.id for a in world.accounts}
    return emulator.do(
        lambda: [d for d in emulator.world.deliveries if d.from_user_id in ours and MARK in (d.text or "")]
    )


def step_of(text: str | None) -> int:
    return 0 if f"{MARK} s0" in (text or "") else 1


@dataclass
class Run:
    stack: Stack
    gw: GatewayClient
    world: World


@pytest.fixture
def run(emulator: EmulatorThread, start_stack: Callable[..., Stack]) -> Iterator[Run]:
    world = seed(emulator)
    stack = start_stack(services=("tg-session", "campaign"), emulator=emulator)
    with GatewayClient(stack, timeout=120) as gw:
        onboard(gw, world)
        users_write_first(emulator, gw, world)
        yield Run(stack, gw, world)


@pytest.mark.timeout(900)
def test_campaign_survives_sigkill_and_delivers_each_target_exactly_once(
    emulator: EmulatorThread, run: Run
) -> None:
    gw, world = run.gw, run.world
    half = TARGETS // 2
    leads = [
        gw.ok("add-lead", {"userId": u.id, "firstName": u.first_name, "tags": ["spring"]})
        for u in world.users[:half]
    ]
    gw.ok("blacklist-user", {"userId": world.users[BLACKLISTED].id, "reason": "e2e"})
    cmp = gw.ok(
        "add-campaign",
        {
            "name": "Spring e2e",
            "audience": {"leadTags": ["spring"], "peers": [u.id for u in world.users[half:]]},
            "steps": [
                {"text": "{Hi|Hello} {first_name}, our spring offer [" + MARK + " s0]"},
                {"text": "A reminder: the offer ends soon [" + MARK + " s1]", "delaySeconds": 1},
            ],
            "priority": "normal",
        },
    )
    cid = cmp["id"]
    assert len(leads) == half and cmp["status"] == "draft"
    started = gw.ok("start-campaign", {"campaignId": cid})
    assert started["status"] == "running"
    reached = {u.id for j, u in enumerate(world.users) if j not in (BLACKLISTED, OPTED_OUT)}
    expected = {(uid, step) for uid in reached for step in (0, 1)}
    wait_until(
        lambda: len(campaign_deliveries(emulator, world)) >= len(expected) // 3,
        600,
        "a third delivered",
        interval=0.5,
    )
    run.stack.kill("campaign")
    say(f"campaign SIGKILLed at {len(campaign_deliveries(emulator, world))} deliveries")
    run.stack.restart("campaign")

    def completed() -> dict[str, Any] | None:
        report = gw.ok("get-campaign-stats", {"campaignId": cid})
        item: dict[str, Any] = report["items"][0]
        say(f"campaign {item['status']}: {item['counters']}")
        return item if item["status"] == "completed" else None

    item = wait_until(completed, 600, "campaign completed", interval=2.0)
    delivered = campaign_deliveries(emulator, world)
    per_user = Counter((d.to_user_id, step_of(d.text)) for d in delivered)
    dupes = {u: n for u, n in per_user.items() if n > 1}
    assert not dupes, f"delivered more than once: {sorted(dupes)[:10]}"
    assert set(per_user) == expected, (
        sorted(expected - set(per_user))[:10],
        sorted(set(per_user) - expected)[:10],
    )
    c = item["counters"]
    assert c["targets"] == TARGETS
    assert c["sent"] == len(delivered) == 2 * (TARGETS - 2) and c["replied"] == 0  # they wrote before it
    assert (c["skipped"], c["failed"], c["queued"], c["cancelled"]) == (2, 0, 0, 0), c
    assert item["skippedByReason"] == {"blacklisted": 1, "opted_out": 1}
    steps = {s["step"]: (s["sent"], s["skipped"]) for s in item["byStep"]}
    assert steps == {0: (TARGETS - 2, 2), 1: (TARGETS - 2, 0)}, steps
    digits = lambda phone: "".join(ch for ch in str(phone) if ch.isdigit())  # noqa: E731
    account_of = {digits(a["phone"]): a["id"] for a in gw.ok("get-accounts", {"limit": 500})["items"]}
    emulated = Counter(account_of[digits(d.from_phone)] for d in delivered)
    assert {a["accountId"]: a["sent"] for a in item["byAccount"]} == dict(emulated)
    page = gw.ok("get-campaigns", {"statuses": ["completed"]})
    assert [v["id"] for v in page["items"]] == [cid]
    print(f"\n{len(delivered)} messages to {len(reached)} targets, each once, across a SIGKILL; {c}")
