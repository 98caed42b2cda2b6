"""A paced campaign on a 3-node NATS cluster loses nothing when a node is SIGKILLed mid-run (issue 17,
finding 2): tg-session (the real one, Telethon against the Telegram emulator), campaign and the gateway as
processes (the stack's, pointed at the cluster), every one connected with the three server URLs and
TGM_JS_REPLICAS=3. Once a third of the messages are out, the node that leads tg-session's account-lease
bucket is killed (and not restarted); the run still delivers every message exactly once, by the emulator's
record: one message to every recipient, none twice, none missing.

Before the kill the test checks that every stream, KV bucket and object store on the cluster has three
copies (a bucket with one would go with its node); after it, that the lease bucket has a new leader.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_contracts import streams
from tgm_stack import Stack
from tgm_testing.cluster import NatsCluster
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

ACCOUNTS = 4  # 12 cold messages each: under the emulator's 20 to strangers a day, and campaign's own cap
USERS = 48
LEASES = f"KV_{streams.ACCOUNT_LEASES.bucket}"
PACING = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.0,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "perChatMinIntervalSeconds": 0.0,
    "perAccountPerMinute": 28,  # the emulator allows 30: about 1.9 sends a second for the fleet
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def stack(
    nats_cluster: NatsCluster, mongo_server: Any, emulator: EmulatorThread, tmp_path: Path
) -> Iterator[Stack]:
    prefix = f"nc{uuid.uuid4().hex[:6]}_"
    home = tmp_path / "stack"
    home.mkdir()
    env = emulator.env(
        home,
        TGM_JS_REPLICAS="3",
        TGM_DATABASE_PREFIX=prefix,
        TGM_CAMPAIGN_SEND_TIMEOUT_SECONDS="5",
    )
    s = Stack(
        home / "data",
        gateway_port=0,
        nats_url=nats_cluster.url,  # all three: each child's connection fails over
        mongodb_uri=mongo_server.uri,
        services=("tg-session", "campaign"),
        extra_env=env,
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()
        client = mongo_server.client()
        try:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)
        finally:
            client.close()


def seed(emulator: EmulatorThread) -> tuple[list[Any], list[Any], list[str]]:
    w = emulator.world
    out: list[tuple[list[Any], list[Any], list[str]]] = []

    def build() -> None:
        agents = [
            w.add_user(f"+1555070{i:04d}", first_name=f"Agent{i}", username=f"nc_agent_{i}")
            for i in range(ACCOUNTS)
        ]
        users = [
            w.add_user(f"+1555071{j:04d}", first_name=f"Lead{j}", username=f"nc_lead_{j}")
            for j in range(USERS)
        ]
        out.append((agents, users, [emulator.emu.session_for(a) for a in agents]))

    emulator.do(build)
    return out[0]


def onboard(gw: GatewayClient, agents: list[Any], sessions: list[str]) -> None:
    creds = gw.ok("get-api-credentials")["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
    ids = [
        gw.ok(
            "add-account",
            {"phone": f"+{a.phone}", "sessionString": s, "dailySendLimit": 1000, "warmupEnabled": False},
        )["id"]
        for a, s in zip(agents, sessions, strict=True)
    ]
    wait_until(
        lambda: all(
            a["connected"] and a["state"] == "active" for a in gw.ok("get-accounts", {"ids": ids})["items"]
        ),
        60,
        "accounts connected",
    )
    gw.ok("save-settings", {"settings": {"pacing": PACING}})


def received(emulator: EmulatorThread, agents: list[Any]) -> Counter[int]:
    """The emulator's record: how many messages each user got from the fleet."""
    ours = {a.id for a in agents}
    return emulator.do(
        lambda: Counter(d.to_user_id for d in emulator.world.deliveries if d.from_user_id in ours)
    )


async def replicas_on_cluster(cluster: NatsCluster) -> dict[str, int]:
    nc = await nats.connect(cluster.urls)
    try:
        return {s.config.name: s.config.num_replicas for s in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


def test_a_node_killed_mid_campaign_loses_and_duplicates_nothing(
    nats_cluster: NatsCluster, emulator: EmulatorThread, stack: Stack
) -> None:
    started = time.monotonic()
    agents, users, sessions = seed(emulator)
    with GatewayClient(stack, timeout=60) as gw:
        onboard(gw, agents, sessions)
        say(f"stack up and {ACCOUNTS} accounts connected in {time.monotonic() - started:.0f}s")

        copies = asyncio.run(replicas_on_cluster(nats_cluster))
        assert LEASES in copies and "TGM_EVENTS" in copies, copies
        assert set(copies.values()) == {3}, f"a stream with fewer than 3 copies: {copies}"

        recipients = [{"peer": f"@{u.username}"} for u in users]
        out = gw.ok(
            "queue-message",
            {"text": "{Hi|Hello} from the cluster run", "recipients": recipients, "idempotencyKey": "nc-run"},
        )
        assert out["created"] == USERS, out

        wait_until(lambda: sum(received(emulator, agents).values()) >= USERS // 3, 90, "a third delivered")
        victim = nats_cluster.stream_leader(LEASES)
        assert victim is not None, "the lease bucket has no leader"
        meta = nats_cluster.meta_leader()
        before = sum(received(emulator, agents).values())
        nats_cluster.server(victim).kill()
        killed_at = time.monotonic()
        say(f"killed {victim} (leader of {LEASES}; meta leader was {meta}) after {before} deliveries")

        # The survivors name the dead node until they have elected another.
        new_leader = wait_until(
            lambda: (leader := nats_cluster.stream_leader(LEASES)) != victim and leader,
            30,
            "a new lease-bucket leader",
        )
        say(f"{LEASES} led by {new_leader} {time.monotonic() - killed_at:.1f}s after the kill")
        wait_until(
            lambda: len(received(emulator, agents)) >= USERS, 120, "every recipient reached", interval=1.0
        )
        say(f"all {USERS} recipients reached {time.monotonic() - killed_at:.0f}s after the kill")

        def drained() -> dict[str, Any] | None:
            t = gw.ok("get-queue-status", {})["totals"]
            return t if t["pending"] + t["scheduled"] + t["inFlight"] == 0 else None

        totals = wait_until(drained, 60, "queue drained", interval=1.0)
        jobs = gw.pages("get-queue-status", {"includeJobs": True, "limit": 500}, key="jobs")

    got = received(emulator, agents)
    twice = {uid: n for uid, n in got.items() if n > 1}
    missing = [u.username for u in users if u.id not in got]
    assert not twice, f"delivered more than once: {twice}"
    assert not missing, f"never delivered: {missing}"
    assert set(got) == {u.id for u in users}
    states = Counter(j["state"] for j in jobs)
    assert states == Counter({"sent": USERS}) and totals["sent"] == USERS, (states, totals)
    outcomes = Counter(h["outcome"] for j in jobs for h in j["history"])
    say(
        f"{USERS} delivered exactly once in {time.monotonic() - started:.0f}s with {victim} dead; "
        f"attempt outcomes {dict(outcomes)}"
    )
