"""What the operator sees is true (issue 12, findings 2, 3 and 4) on the whole stack as processes (nats-server,
database, the six services, the gateway) with the Telegram emulator, only through the gateway's API, and
checked against the emulator's own record (its deliveries, its channels' members).

Each test fails on the code before its fix (by reading the fix commits, not by running old code):

- finding 3, `test_a_qr_login_counts_as_active_not_new`: before `c1d55f1` tg-session's QR login
  published `account-status-changed` (active) before `account-added`, and before `a1d788b` analytics set
  `new` from `account-added` by its (later) `occurredAt`, so the dashboard's `byState` kept the
  QR-onboarded account `new` (`{"active": 2, "new": 1}` here) while `get-accounts` said all active;
- finding 4, `test_figures_count_job_failures_split_origins_and_leave_the_fleet_out`: before `a1d788b`
  analytics' `failed` counted only tg-session's `message-send-failed` (a `template_error` job never
  reaches Telegram: `get-message-stats` said 0 where `get-queue-status` said 1), had no
  `sentByOrigin` (a message the fleet's account typed on its phone was a plain `sent`), and counted
  every `member-joined`, our own account's too (`membersJoined` 2 here, not 1); before `b629b1f`
  `extract-members` collected the fleet's accounts with the people (and had no `includeFleet`);
- finding 2, `test_a_restore_recounts_what_happened_after_the_backup`: before `039d913` a restore put
  analytics' database back as it was at the backup and nothing recounted it: the messages after the
  backup were gone from the figures (0 instead of 3 received, 0 instead of 1 sent), and the
  `account-status-changed` (banned) published while the restore ran, after tg-session's part and
  before analytics', was wiped, so the dashboard counted the banned account `active`.

They share one stack and one emulator world, in this order (the restore, last, rolls back the others'
data). About 35 s with the stack's start.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import EventFeed, GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Truth:
    """The module's stack and world: the gateway, its events, the emulator and the fleet."""

    gw: GatewayClient
    pushed: EventFeed
    emu: EmulatorThread
    fleet: Any
    ids: list[str]
    stack: Stack

    def window(self, since: datetime) -> dict[str, str]:
        return {"since": since.isoformat(), "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}

    def states_agree(self) -> dict[str, int] | None:
        """The dashboard's `byState` when it equals tg-session's `get-accounts` (else None)."""
        dashboard = self.gw.ok("get-dashboard-stats", self.window(datetime.now(UTC) - timedelta(hours=1)))
        recorded = self.gw.ok("get-accounts", {"limit": 100})["byState"]
        shown = dashboard["accounts"]["byState"]
        return dict(shown) if shown == {k: v for k, v in recorded.items() if v} else None


@pytest.fixture(scope="module")
def truth(
    module_emulator: EmulatorThread,
    start_module_stack: Callable[..., Stack],
    seed_fleet: Callable[..., Any],
    connect_fleet: Callable[..., list[str]],
    fast_pacing: dict[str, Any],
) -> Iterator[Truth]:
    w = module_emulator.world

    def more(fleet: Any) -> None:
        fleet.more["channel"] = w.create_channel(
            fleet.accounts[0], "Truth Group", username="truthgroup", members=fleet.users[:2]
        )

    fleet = seed_fleet(module_emulator, "truth", phone="+155512", extra=more)
    env = {"TGM_SESSION_CLAIM_INTERVAL_SECONDS": "0.5", "TGM_SESSION_EXTRACTION_PAGE_DELAY_SECONDS": "0"}
    stack = start_module_stack(emulator=module_emulator, env=env)
    with GatewayClient(stack) as gw, gw.events(["tgm.tg-session.evt.>", "tgm.gateway.evt.>"]) as pushed:
        ids = connect_fleet(gw, fleet, dailySendLimit=100, warmupEnabled=False)
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
        yield Truth(gw, pushed, module_emulator, fleet, ids, stack)


def token_of(url: str) -> bytes:
    text = url.split("token=", 1)[1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- finding 3 -------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_qr_login_counts_as_active_not_new(truth: Truth) -> None:
    gw, emu = truth.gw, truth.emu
    dave = emu.do(emu.world.add_user, "+15551290001", first_name="Dave", username="truth_dave")
    qr = gw.ok("qr-login-create", {"label": "dave via qr"})
    emu.do(emu.world.accept_login_token, dave, token_of(qr["qrUrl"]))
    done = truth.pushed.wait(
        "qr-login-updated", lambda d: d["sessionId"] == qr["sessionId"] and d["state"] == "success"
    )
    account = done["accountId"]
    wait_until(
        lambda: (
            (a := gw.ok("get-accounts", {"ids": [account]})["items"][0])["connected"]
            and a["state"] == "active"
        ),
        30,
        "the QR account connected",
    )
    agreed = wait_until(truth.states_agree, 30, "the dashboard's account states equal get-accounts")
    assert agreed == {"active": 3}, agreed  # the two session-string accounts and the QR one
    truth.fleet.more["qr_account"] = account


# --- finding 4 -------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_figures_count_job_failures_split_origins_and_leave_the_fleet_out(truth: Truth) -> None:
    gw, emu, fleet, ids = truth.gw, truth.emu, truth.fleet, truth.ids
    w, channel = emu.world, fleet.more["channel"]
    agent, other, users = fleet.accounts[0], fleet.accounts[1], fleet.users
    started = datetime.now(UTC) - timedelta(seconds=5)
    mine = {"accountId": ids[0]}

    # A job that fails for good without reaching Telegram: a template variable with no value.
    tpl = gw.ok("add-template", {"name": "no offer", "content": "Hello, {offer}"})["template"]
    failed = gw.ok(
        "send-message", {**mine, "peer": f"@{users[0].username}", "templateId": tpl["id"], "waitSeconds": 30}
    )
    assert failed["state"] == "failed" and failed["reason"] == "template_error", failed
    # One send of ours, one the account's owner typed on a phone (origin external).
    sent = gw.ok(
        "send-message", {**mine, "peer": f"@{users[0].username}", "text": "from the queue", "waitSeconds": 30}
    )
    assert sent["state"] == "sent", sent
    emu.do(w.post, agent, users[1], "typed on my phone")

    def fleet_sent() -> list[str]:
        return emu.do(
            lambda: [
                d.text for d in w.deliveries if d.from_user_id == agent.id and d.date >= started.timestamp()
            ]
        )

    assert sorted(fleet_sent()) == ["from the queue", "typed on my phone"]

    def stats() -> dict[str, Any] | None:
        t = gw.ok("get-message-stats", {**truth.window(started), **mine})["totals"]
        return t if t["sent"] >= 2 and t["failed"] >= 1 else None

    totals = wait_until(stats, 30, "the sends and the failure counted")
    queue = gw.ok("get-queue-status", mine)
    row = next(a for a in queue["accounts"] if a["accountId"] == ids[0])
    assert row["failed"] == totals["failed"] == 1, (row, totals)
    assert totals["sent"] == len(fleet_sent()) == 2, totals
    assert totals["sentByOrigin"] == {"queue": 1, "automation": 0, "external": 1}, totals

    # The group is watched; a person and our second account join it: one member joined, not two.
    words = gw.ok("add-keyword-set", {"name": "nothing said here", "keywords": ["zanzibar"]})
    group = gw.ok("add-group", {"group": "@truthgroup", "name": "Truth", "keywordSetIds": [words["id"]]})
    monitoring = gw.ok("start-monitoring", {})
    assert monitoring["active"] is True, monitoring
    chat = -1_000_000_000_000 - channel.id
    probes: list[str] = []

    def watched() -> bool:
        probes.append(f"probe {len(probes)}")
        emu.do(w.post, users[0], channel, probes[-1])
        return any(d["chatId"] == chat for d in truth.pushed.named("message-received"))

    wait_until(watched, 30, "tg-session publishes the group's messages", interval=1.0)
    assert gw.ok("get-monitored-groups", {})["items"][0]["id"] == group["id"]
    emu.do(w.join_channel, users[2], channel)
    gw.ok("join-group", {"accountId": ids[1], "group": "@truthgroup"})
    truth.pushed.wait("member-joined", lambda d: d["chatId"] == chat and d["user"]["userId"] == other.id)
    truth.pushed.wait("group-joined", lambda d: d["chatId"] == chat and d["accountId"] == ids[1])

    def groups() -> dict[str, Any] | None:
        t = gw.ok("get-group-stats", truth.window(started))["totals"]
        return t if t["membersJoined"] >= 1 and t["groupsJoined"] >= 1 else None

    totals = wait_until(groups, 30, "the joins counted")
    assert totals["membersJoined"] == 1 and totals["groupsJoined"] == 1, totals

    # Extraction leaves our accounts out, unless asked.
    members = emu.do(lambda: set(channel.participants))
    assert fleet.account_ids <= members

    def extracted(filters: dict[str, Any]) -> set[int]:
        job = gw.ok("extract-members", {**mine, "group": "@truthgroup", "filters": filters})["jobId"]
        wait_until(
            lambda: gw.ok("get-extraction-status", {"jobId": job})["items"][0]["state"] == "completed",
            60,
            "extraction done",
        )
        return {u["userId"] for u in gw.pages("get-collected-users", {"jobId": job, "limit": 100})}

    assert extracted({}) == members - fleet.account_ids
    assert extracted({"includeFleet": True, "skipAlreadyCollected": False}) == members


# --- finding 2 -------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_restore_recounts_what_happened_after_the_backup(truth: Truth) -> None:
    gw, emu, fleet, ids = truth.gw, truth.emu, truth.fleet, truth.ids
    w, person, agent, other = emu.world, fleet.users[3], fleet.accounts[0], fleet.accounts[1]
    started = datetime.now(UTC) - timedelta(seconds=1)
    backup = gw.ok("backup-database", {"label": "truth"})
    assert backup["state"] == "completed", backup

    # After the backup: a person writes twice and once more after our answer.
    emu.do(w.post, person, agent, "hello after the backup")
    emu.do(w.post, person, agent, "anyone there?")
    sent = gw.ok(
        "send-message",
        {"accountId": ids[0], "peer": f"@{person.username}", "text": "yes!", "waitSeconds": 30},
    )
    assert sent["state"] == "sent", sent
    emu.do(w.post, person, agent, "great")

    def happened() -> tuple[int, int]:
        """(received, sent) by the fleet since `started`, in the emulator's record."""

        def read() -> tuple[int, int]:
            recent = [d for d in w.deliveries if d.date >= started.timestamp() and d.kind == "private"]
            return (
                sum(d.to_user_id in fleet.account_ids for d in recent),
                sum(d.from_user_id in fleet.account_ids for d in recent),
            )

        return emu.do(read)

    def counted() -> tuple[int, int]:
        t = gw.ok("get-message-stats", truth.window(started))["totals"]
        return t["received"], t["sent"]

    wait_until(lambda: counted() == happened(), 30, "analytics counted the messages after the backup")
    assert happened() == (3, 1)

    # The restore; while it runs (after tg-session's part) the second account is banned.
    result: dict[str, Any] = {}

    def restore() -> None:
        with GatewayClient(truth.stack) as client:
            result.update(client.ok("restore-database", {"confirm": True, "backupId": backup["backupId"]}))

    runner = threading.Thread(target=restore, name="restore")
    runner.start()
    try:
        truth.pushed.wait(
            "backup-progress",
            lambda d: d["kind"] == "restore" and d.get("service") == "tg-session",
            timeout=60,
        )
        emu.do(lambda: setattr(w.user(other.id), "banned", True))
        wait_until(
            lambda: gw.post("check-account-status", {"accountId": ids[1]}).status_code == 200,
            30,
            "the status check during the restore",
        )
    finally:
        runner.join(120)
    assert result.get("state") == "completed", result
    truth.pushed.wait(
        "account-status-changed", lambda d: d["accountId"] == ids[1] and d["state"] == "banned", timeout=30
    )

    def rebuilt() -> dict[str, Any] | None:
        status = gw.ok("get-analytics-rebuild", {})
        return (
            status if status["trigger"] == "restore" and status["state"] in ("completed", "failed") else None
        )

    status = wait_until(rebuilt, 60, "the rebuild after the restore")
    assert status["state"] == "completed", status
    assert gw.ok("get-accounts", {"ids": [ids[1]]})["items"][0]["state"] == "banned"
    agreed = wait_until(truth.states_agree, 30, "the dashboard's account states equal get-accounts")
    assert agreed.get("banned") == 1, agreed
    assert counted() == happened() == (3, 1)
