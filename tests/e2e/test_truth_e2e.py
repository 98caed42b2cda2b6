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

And the scripted session ("Done when", line 2),
`test_every_analytics_figure_equals_the_emulators_record_after_a_scripted_session`, with a fleet and
groups of its own: two fleet accounts by session string and a third by QR login; a watched
supergroup (one of our accounts created it, the other is a member); people write to the fleet, the fleet answers
(`send-message`), people answer back, people post in the group and join it, the fleet posts in it
(`send-group-message`), an account's owner types on a phone (origin external), an account joins a
second group (`join-group`), a member extraction, a job that fails for good (`template_error`), an
opt-out ("please STOP"). In between: the whole stack stopped (SIGTERM) and started again while people
keep writing, a backup, more traffic, a restore, more traffic (and at full size a second restart).

Then each figure of `get-dashboard-stats`, `get-message-stats`, `get-user-stats` and `get-group-stats`,
and the account states, is compared with what the emulator delivered (its deliveries and its
channels' members) and, for the two figures Telegram cannot know (a job that failed before reaching
it, the accounts' states), with the queue's and tg-session's own record; on a difference the test
prints a table of figure / analytics / emulator. It found analytics counting a supergroup's message
and a member's join once per fleet account in the group (group messages 16 for the emulator's 9,
members joined 4 for 2, received 33 for 26): now one fact per message of the chat and per join
(`tgm_analytics/stats/facts.py`).

What the emulator's record counts (the definitions the figures must meet):
- sent: every message a fleet account delivered, anywhere; `external` of them those typed elsewhere;
- received: every private message delivered to a fleet account, and every message in the watched
  group by someone other than its sender, ONCE however many of our accounts are members (one message
  the group received, not one per account that saw it); `fleet` of them the ones a fleet account wrote;
- replies: an inbound private message after the conversation's latest unanswered send (72 h window);
- new / active / replied users: people in a private conversation with the fleet / who wrote to it /
  who answered a send; collected: the members an extraction found, the fleet left out;
- group messages, active users, members joined (people who joined the watched group), groups joined.

All four share one stack and one emulator world, in this order (each restore rolls back the data of
the tests before it; the session, last, restarts the stack). Scale: `TGM_E2E_CAMPAIGN_SCALE` (0.1 in
`make test`: 4 people in the session, two rounds, one restart; 85 to 120 s for the module on a
shared 2-core machine, 25 to 45 s of it the stack's first start and as much its restart); full size (`make test-soak`) 12 people, four rounds,
two restarts.
"""

from __future__ import annotations

import base64
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import EventFeed, GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCALE = float(os.environ.get("TGM_E2E_CAMPAIGN_SCALE", "1"))
PEOPLE = max(4, round(12 * SCALE))
FULL = SCALE >= 0.5
#: An inbound private message answers the conversation's latest unanswered send within this long.
REPLY_WINDOW = 72 * 3600
CHANNEL_BASE = -1_000_000_000_000


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

    def rebuilt_after(self, gw: GatewayClient, since: datetime) -> dict[str, Any]:
        """The status of the rebuild a restore started after `since`, once it is over."""

        def over() -> dict[str, Any] | None:
            st = gw.ok("get-analytics-rebuild", {})
            begun = st["startedAt"] and datetime.fromisoformat(st["startedAt"]) >= since
            return (
                st
                if begun and st["trigger"] == "restore" and st["state"] in ("completed", "failed")
                else None
            )

        status: dict[str, Any] = wait_until(over, 60, "the rebuild after the restore")
        return status

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


@pytest.mark.timeout(300)
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
    asked = datetime.now(UTC)

    def restore() -> None:
        with GatewayClient(truth.stack) as client:
            r = client.post(
                "restore-database", {"confirm": True, "backupId": backup["backupId"]}, timeout=240
            )
            result.update(r.json().get("data") or {"error": r.text})

    runner = threading.Thread(target=restore, name="restore")
    runner.start()
    try:
        wait_until(
            lambda: (
                not runner.is_alive()
                or truth.pushed.named(
                    "backup-progress", lambda d: d["kind"] == "restore" and d.get("service") == "tg-session"
                )
            ),
            120,
            "tg-session's part of the restore done",
        )
        assert runner.is_alive() or result.get("state") == "completed", result.get("error", result)
        emu.do(lambda: setattr(w.user(other.id), "banned", True))
        wait_until(
            lambda: gw.post("check-account-status", {"accountId": ids[1]}).status_code == 200,
            30,
            "the status check during the restore",
        )
    finally:
        runner.join(240)
    assert result.get("state") == "completed", result.get("error", result)
    truth.pushed.wait(
        "account-status-changed", lambda d: d["accountId"] == ids[1] and d["state"] == "banned", timeout=30
    )

    status = truth.rebuilt_after(gw, asked)
    assert status["state"] == "completed", status
    assert gw.ok("get-accounts", {"ids": [ids[1]]})["items"][0]["state"] == "banned"
    agreed = wait_until(truth.states_agree, 30, "the dashboard's account states equal get-accounts")
    assert agreed.get("banned") == 1, agreed
    assert counted() == happened() == (3, 1)


# --- the scripted session (Done when, line 2) ------------------------------------------------------------


class Session:
    """The stack as the operator drives it, and the emulator's world the session happens in."""

    def __init__(self, emu: EmulatorThread, stack: Stack, fleet: Any, truth: Truth) -> None:
        self.emu, self.w, self.stack, self.fleet, self.truth = emu, emu.world, stack, fleet, truth
        self.group, self.lobby = fleet.more["group"], fleet.more["lobby"]
        self.chat = CHANNEL_BASE - self.group.id
        self.ids: list[str] = []
        self.fleet_ids: set[int] = set(fleet.account_ids)
        self.external: list[str] = []  # texts our accounts "typed elsewhere"
        self.members_at_start: set[int] = set()
        self.lobby_at_start: set[int] = set()
        self.gw: GatewayClient
        self.pushed: EventFeed
        self._open()

    def _open(self) -> None:
        self.gw = GatewayClient(self.stack)
        self.pushed = self.gw.events(["tgm.tg-session.evt.>"])

    def close(self) -> None:
        self.pushed.close()
        self.gw.close()

    def restart(self, while_down: Callable[[], None]) -> None:
        """SIGTERM the whole stack, let `while_down` happen in Telegram, start it again; wait until
        every account is connected again."""
        self.close()
        self.stack.stop()
        while_down()
        self.stack.start()
        self._open()
        self.connected()

    def connected(self) -> None:
        wait_until(
            lambda: all(
                a["connected"] and a["state"] == "active"
                for a in self.gw.ok("get-accounts", {"ids": self.ids})["items"]
            ),
            90,
            "every account connected",
        )

    # --- what happens in Telegram ----------------------------------------------------------------

    def post(self, sender: Any, to: Any, text: str) -> None:
        self.emu.do(self.w.post, sender, to, text)

    def typed_elsewhere(self, account: Any, to: Any, text: str) -> None:
        self.external.append(text)
        self.post(account, to, text)

    def send(self, account: int, to: Any, text: str) -> None:
        r = self.gw.ok(
            "send-message",
            {"accountId": self.ids[account], "peer": f"@{to.username}", "text": text, "waitSeconds": 40},
        )
        assert r["state"] == "sent", r

    def round(self, n: int) -> None:
        """One round of traffic: everyone writes, the fleet answers half, they answer back; the group."""
        people, agents = self.fleet.users, self.fleet.accounts
        answered = [j for j in range(len(people)) if j % 4 < 2]  # half of them, on both accounts
        for j, u in enumerate(people):
            self.post(u, agents[j % 2], f"hello {j} r{n}")
        for j in answered:
            self.send(j % 2, people[j], f"thanks for writing, r{n}")
        for j in answered:
            self.post(people[j], agents[j % 2], f"you are welcome r{n}")
        self.post(people[1], self.group, f"in the group r{n}")
        self.post(people[0], self.group, f"me too r{n}")
        g = self.gw.ok(
            "send-group-message",
            {"accountId": self.ids[0], "group": self.chat, "text": f"welcome all r{n}", "waitSeconds": 40},
        )
        assert g["state"] == "sent", g
        self.typed_elsewhere(agents[1], people[-1], f"from my phone r{n}")
        newcomer = people[len(people) // 2 + n]
        self.emu.do(self.w.join_channel, newcomer, self.group)
        self.post(newcomer, self.group, f"hi, new here r{n}")

    def while_down(self, n: int) -> Callable[[], None]:
        def happen() -> None:
            people, agents = self.fleet.users, self.fleet.accounts
            self.post(people[0], agents[0], f"while you were down d{n}")
            self.post(people[1], agents[1], f"are you there? d{n}")
            self.post(people[1], self.group, f"quiet in here d{n}")

        return happen

    # --- the emulator's record -------------------------------------------------------------------

    def record(self, since: float) -> dict[str, Any]:
        """Every figure as the emulator's deliveries and members tell it (see the module docstring)."""

        def read() -> dict[str, Any]:
            ds = [d for d in self.w.deliveries if d.date >= since]
            members = set(self.group.participants)
            return {"ds": ds, "members": members, "lobby": set(self.lobby.participants)}

        got = self.emu.do(read)
        fleet = self.fleet_ids
        ds = got["ds"]
        private = [d for d in ds if d.kind == "private"]
        in_group = [d for d in ds if d.kind == "channel" and d.chat_id == self.group.id]
        sent = [d for d in ds if d.from_user_id in fleet]
        received = [d for d in private if d.to_user_id in fleet] + in_group  # (a fleet member always sees it)
        external = Counter(self.external)
        typed = sum(1 for d in sent if external[d.text] > 0)
        replies: list[Any] = []
        armed: dict[tuple[int, int], Any] = {}
        for d in sorted(private, key=lambda d: d.seq):
            if d.from_user_id in fleet and d.to_user_id not in fleet:
                armed[(d.from_user_id, d.to_user_id)] = d
            elif d.to_user_id in fleet and d.from_user_id not in fleet:
                s = armed.pop((d.to_user_id, d.from_user_id), None)
                if s is not None and d.date - s.date <= REPLY_WINDOW:
                    replies.append(d)
        talked = {d.to_user_id for d in private if d.from_user_id in fleet} | {
            d.from_user_id for d in private if d.to_user_id in fleet
        }
        return {
            "sent": len(sent),
            "sentByOrigin": {"queue": len(sent) - typed, "automation": 0, "external": typed},
            "received": len(received),
            "receivedByOrigin": {
                "people": sum(d.from_user_id not in fleet for d in received),
                "fleet": sum(d.from_user_id in fleet for d in received),
            },
            "repliesReceived": len(replies),
            "replyRate": round(len(replies) / len(sent), 4) if sent else None,
            "floodWaits": 0,
            "failedAttempts": 0,
            "newUsers": len(talked - fleet),
            "activeUsers": len({d.from_user_id for d in private if d.to_user_id in fleet} - fleet),
            "repliedUsers": len({d.from_user_id for d in replies}),
            "groupMessages": len(in_group),
            "groupActiveUsers": len({d.from_user_id for d in in_group}),
            "membersJoined": len(got["members"] - self.members_at_start - fleet),
            "groupsJoined": len((got["lobby"] - self.lobby_at_start) & fleet),
            "membersInGroup": got["members"],
        }


@pytest.fixture
def session(
    truth: Truth, seed_fleet: Callable[..., Any], connect_fleet: Callable[..., list[str]]
) -> Iterator[Session]:
    """The scripted session's own fleet and groups, on the module's stack (after the tests above)."""
    emulator = truth.emu
    w = emulator.world

    def more(fleet: Any) -> None:
        half = fleet.users[: len(fleet.users) // 2]
        fleet.more["group"] = w.create_channel(
            fleet.accounts[0], "Session Group", username="sessiongroup", members=[fleet.accounts[1], *half]
        )
        fleet.more["lobby"] = w.create_channel(
            fleet.users[-1], "Session Lobby", username="sessionlobby", members=fleet.users[:2]
        )
        fleet.more["quinn"] = w.add_user("+15551390001", first_name="Quinn", username="sess_quinn")

    fleet = seed_fleet(emulator, "sess", phone="+155513", users=PEOPLE, user_name="Person", extra=more)
    s = Session(emulator, truth.stack, fleet, truth)
    try:
        s.ids = connect_fleet(s.gw, fleet, dailySendLimit=1000, warmupEnabled=False)
        # a person hears from us once a round (four rounds at full size)
        s.gw.ok("save-settings", {"settings": {"compliance": {"perRecipientDailyCap": 20}}})
        yield s
    finally:
        s.close()


def _compare(rows: list[tuple[str, Any, Any]]) -> str | None:
    """None when every figure agrees, else the table of all of them (differences marked)."""
    if all(a == e for _, a, e in rows):
        return None
    width = max(len(n) for n, _, _ in rows)
    lines = [f"{'figure':<{width}}  {'analytics':>24}  {'emulator':>24}"]
    for name, a, e in rows:
        mark = "" if a == e else "   <-- differs"
        lines.append(f"{name:<{width}}  {a!s:>24}  {e!s:>24}{mark}")
    return "\n".join(lines)


@pytest.mark.timeout(420)
def test_every_analytics_figure_equals_the_emulators_record_after_a_scripted_session(
    session: Session,
) -> None:
    s, w = session, session.w
    gw = s.gw
    quinn = s.fleet.more["quinn"]

    # A third account by QR login.
    qr = gw.ok("qr-login-create", {"label": "quinn via qr"})
    s.emu.do(w.accept_login_token, quinn, token_of(qr["qrUrl"]))
    done = s.pushed.wait(
        "qr-login-updated", lambda d: d["sessionId"] == qr["sessionId"] and d["state"] == "success"
    )
    s.ids.append(done["accountId"])
    s.fleet_ids.add(quinn.id)
    s.connected()

    # The group is watched before the session's clock starts (the probes are before it).
    words = gw.ok("add-keyword-set", {"name": "session words", "keywords": ["zanzibar"]})
    gw.ok("add-group", {"group": "@sessiongroup", "name": "Session", "keywordSetIds": [words["id"]]})
    monitoring = gw.ok("start-monitoring", {})
    assert monitoring["active"] is True, monitoring
    probes: list[str] = []

    def watched() -> bool:
        probes.append(f"probe {len(probes)}")
        s.post(s.fleet.users[0], s.group, probes[-1])
        return any(d["chatId"] == s.chat for d in s.pushed.named("message-received"))

    wait_until(watched, 30, "tg-session publishes the group's messages", interval=1.0)
    # Telegram dates are whole seconds: the session starts at the next whole second but one.
    start = math.floor(time.time()) + 2
    wait_until(lambda: time.time() >= start, 5, "the session's first second", interval=0.05)
    s.members_at_start = s.emu.do(lambda: set(s.group.participants))
    s.lobby_at_start = s.emu.do(lambda: set(s.lobby.participants))

    # --- round one, a job that fails for good, a restart -----------------------------------------
    s.round(0)
    tpl = gw.ok("add-template", {"name": "session offer", "content": "Hi {first_name}, {offer}"})["template"]
    people = s.fleet.users
    failed = gw.ok(
        "send-message",
        {"accountId": s.ids[0], "peer": f"@{people[0].username}", "templateId": tpl["id"], "waitSeconds": 30},
    )
    assert failed["state"] == "failed" and failed["reason"] == "template_error", failed
    s.post(people[2], quinn, "hello to the QR account")
    s.restart(s.while_down(0))
    gw = s.gw

    # --- the lobby joined, an extraction, a backup, more traffic, a restore -------------------------
    gw.ok("join-group", {"accountId": s.ids[1], "group": "@sessionlobby"})
    job = gw.ok("extract-members", {"accountId": s.ids[0], "group": "@sessiongroup"})["jobId"]
    wait_until(
        lambda: gw.ok("get-extraction-status", {"jobId": job})["items"][0]["state"] == "completed",
        60,
        "extraction done",
    )
    collected = {u["userId"] for u in gw.pages("get-collected-users", {"jobId": job, "limit": 100})}
    assert collected == s.emu.do(lambda: set(s.group.participants)) - s.fleet_ids
    backup = gw.ok("backup-database", {"label": "scripted session"})
    assert backup["state"] == "completed", backup.get("error")

    s.round(1)
    s.post(people[3], s.fleet.accounts[1], "please STOP writing to me")
    s.pushed.wait("message-received", lambda d: "please STOP" in (d.get("text") or ""))
    asked = datetime.now(UTC)
    restored = gw.ok("restore-database", {"confirm": True, "backupId": backup["backupId"]})
    assert restored["state"] == "completed", restored.get("error")
    assert s.truth.rebuilt_after(gw, asked)["state"] == "completed"
    s.connected()
    s.post(people[1], s.fleet.accounts[0], "after the restore")
    s.send(0, people[1], "welcome back")
    if FULL:
        s.round(2)
        s.restart(s.while_down(1))
        s.round(3)

    # --- every figure ------------------------------------------------------------------------------
    window = {
        "since": datetime.fromtimestamp(start, UTC).isoformat(),
        "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    seen: dict[str, str | None] = {}

    def agree() -> bool:
        gw = s.gw
        truth = s.record(start)
        dash = gw.ok("get-dashboard-stats", window)
        msgs = gw.ok("get-message-stats", window)["totals"]
        users = gw.ok("get-user-stats", window)["totals"]
        groups = gw.ok("get-group-stats", window)
        accounts = gw.ok("get-accounts", {"limit": 100})
        rows_q = gw.ok("get-queue-status", {})["accounts"]
        queue = {"failed": sum(r["failed"] for r in rows_q if r["accountId"] in s.ids)}
        tg_states = s.emu.do(
            lambda: Counter(
                "banned" if w.user(a["profile"]["telegramId"]).banned else "active" for a in accounts["items"]
            )
        )
        row = next((g for g in groups["groups"] if g["chatId"] == s.chat), {})
        rows: list[tuple[str, Any, Any]] = []
        for key in ("sent", "received", "repliesReceived", "replyRate", "floodWaits", "failedAttempts"):
            rows.append((f"message-stats {key}", msgs[key], truth[key]))
            rows.append((f"dashboard messages.{key}", dash["messages"][key], truth[key]))
        for key in ("sentByOrigin", "receivedByOrigin"):
            rows.append((f"message-stats {key}", msgs[key], truth[key]))
            rows.append((f"dashboard messages.{key}", dash["messages"][key], truth[key]))
        rows += [
            ("message-stats failed (queue's failed, these accounts)", msgs["failed"], queue["failed"]),
            ("dashboard messages.failed (queue's failed)", dash["messages"]["failed"], queue["failed"]),
            ("message-stats failed (jobs that failed here)", msgs["failed"], 1),
            ("user-stats newUsers", users["newUsers"], truth["newUsers"]),
            ("user-stats activeUsers", users["activeUsers"], truth["activeUsers"]),
            ("user-stats repliedUsers", users["repliedUsers"], truth["repliedUsers"]),
            ("user-stats optedOut", users["optedOut"], 1),
            ("user-stats blacklisted", users["blacklisted"], 0),
            ("user-stats collected", users["collected"], len(collected)),
            ("dashboard membersExtracted", dash["membersExtracted"], len(collected)),
            ("group-stats messages", groups["totals"]["messages"], truth["groupMessages"]),
            ("group-stats membersJoined", groups["totals"]["membersJoined"], truth["membersJoined"]),
            ("group-stats groupsJoined", groups["totals"]["groupsJoined"], truth["groupsJoined"]),
            ("group-stats groupsLeft", groups["totals"]["groupsLeft"], 0),
            ("dashboard groupsJoined", dash["groupsJoined"], truth["groupsJoined"]),
            ("group row messages", row.get("messages"), truth["groupMessages"]),
            ("group row activeUsers", row.get("activeUsers"), truth["groupActiveUsers"]),
            ("group row membersJoined", row.get("membersJoined"), truth["membersJoined"]),
            (
                "dashboard accounts.byState (get-accounts)",
                dash["accounts"]["byState"],
                {k: v for k, v in accounts["byState"].items() if v},
            ),
            ("dashboard accounts.byState (emulator)", dash["accounts"]["byState"], dict(tg_states)),
            ("dashboard accounts.connected", dash["accounts"]["connected"], tg_states["active"]),
        ]
        seen["table"] = _compare(rows)
        return seen["table"] is None

    try:
        wait_until(agree, 60, "every figure equal to the emulator's record", interval=1.0)
    except Exception:
        pytest.fail(f"analytics differs from the emulator's record:\n{seen.get('table')}", pytrace=False)
