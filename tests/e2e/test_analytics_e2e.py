"""Analytics end to end: the stack as processes (nats-server, database, tg-session, campaign, analytics,
gateway) driven only through the gateway's HTTP API, with the Telegram emulator in this process.

Two accounts; two users write first, then the fleet sends three messages through campaign's
`send-message` (tg-session delivers them with the real Telethon), and two of the three users answer.
The statistics, computed by analytics only from the events on TGM_EVENTS, must show exactly that:
3 sent, 4 received (2 first messages + 2 answers), 2 replies (rate 0.6667), 2 connected accounts,
and the sends per account in get-analytics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(240)
def test_sends_and_replies_show_in_the_statistics(
    emulator: EmulatorThread, start_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> None:
    w = emulator.world
    people: dict[str, Any] = {}

    def build() -> None:
        people["accounts"] = [w.add_user(f"+1555090{i:04d}", first_name=f"Agent{i}") for i in range(2)]
        people["users"] = [
            w.add_user(f"+1555091{j:04d}", first_name=f"User{j}", username=f"stats_user_{j}")
            for j in range(3)
        ]
        people["sessions"] = [emulator.emu.session_for(a) for a in people["accounts"]]

    emulator.do(build)
    accounts, users = people["accounts"], people["users"]
    stack = start_stack(services=("tg-session", "campaign", "analytics"), emulator=emulator)
    with GatewayClient(stack) as gw:
        started = datetime.now(UTC) - timedelta(minutes=1)
        creds = gw.ok("get-api-credentials")["items"]
        gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 100, "test": False})
        ids = [
            gw.ok(
                "add-account",
                {
                    "phone": f"+1555090{i:04d}",
                    "sessionString": s,
                    "dailySendLimit": 100,
                    "warmupEnabled": False,
                },
            )["id"]
            for i, s in enumerate(people["sessions"])
        ]
        wait_until(
            lambda: all(
                a["connected"] and a["state"] == "active"
                for a in gw.ok("get-accounts", {"ids": ids})["items"]
            ),
            90,
            "accounts connected",
        )
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
        # users 0 and 1 write first to account 0 (received, not replies)
        emulator.do(lambda: [w.post(users[j], accounts[0], f"hello from {j}") for j in (0, 1)])
        wait_until(
            lambda: len(gw.ok("get-private-messages", {"limit": 50})["items"]) >= 2, 60, "first messages in"
        )
        # account 1 has never seen user 2: it sends by username (a first contact)
        sends = [(ids[0], users[0].id), (ids[0], users[1].id), (ids[1], "@stats_user_2")]
        for account_id, peer in sends:
            result = gw.ok(
                "send-message",
                {"accountId": account_id, "peer": peer, "text": "our offer", "waitSeconds": 50},
            )
            assert result["state"] == "sent", result
        # users 0 and 2 answer
        emulator.do(
            lambda: [
                w.post(users[0], accounts[0], "yes please"),
                w.post(users[2], accounts[1], "tell me more"),
            ]
        )
        window = {"since": started.isoformat(), "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}

        def totals() -> dict[str, Any] | None:
            t = gw.ok("get-message-stats", {**window, "bucket": "hour"})["totals"]
            return t if t["sent"] >= 3 and t["repliesReceived"] >= 2 and t["received"] >= 4 else None

        figures = wait_until(totals, 60, "statistics caught up")
        assert figures == {
            "sent": 3,
            "received": 4,
            "failed": 0,
            "floodWaits": 0,
            "repliesReceived": 2,
            "replyRate": 0.6667,
            "failedAttempts": 0,
            "sentByOrigin": {"queue": 3, "automation": 0, "external": 0},
            "receivedByOrigin": {"people": 4, "fleet": 0},
        }

        def both_connected() -> dict[str, Any] | None:
            # the accounts' figures come from their status events, which may land after the sends'
            d = gw.ok("get-dashboard-stats", {**window, "bucket": "hour"})
            return d if d["accounts"]["connected"] == 2 else None

        dashboard = wait_until(both_connected, 30, "both accounts connected in the dashboard")
        assert dashboard["accounts"]["total"] == 2 and dashboard["accounts"]["connected"] == 2
        assert dashboard["accounts"]["byState"] == {"active": 2}
        assert dashboard["messages"]["sent"] == 3 and dashboard["messages"]["repliesReceived"] == 2
        assert sum(b["sent"] for b in dashboard["buckets"]) == 3
        series = gw.ok("get-analytics", {**window, "metrics": ["messages_sent"], "groupBy": "account"})[
            "series"
        ]
        assert sorted((s["key"], s["total"]) for s in series) == sorted([(ids[0], 2.0), (ids[1], 1.0)])
        users_stats = gw.ok("get-user-stats", window)["totals"]
        assert (users_stats["newUsers"], users_stats["activeUsers"], users_stats["repliedUsers"]) == (3, 3, 2)
