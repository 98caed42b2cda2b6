"""Every messaging command of campaign, and `blacklist-user`, through the gateway's HTTP API on the stack
as processes (nats-server, database, tg-session with the real Telethon, campaign, gateway) against the
Telegram emulator: each answers with real behaviour, checked against what the emulator delivered.
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


@pytest.mark.timeout(300)
def test_every_messaging_command_and_blacklist_user_through_the_gateway(
    emulator: EmulatorThread,
    start_stack: Callable[..., Stack],
    fast_pacing: dict[str, Any],
    seed_fleet: Callable[..., Any],
    connect_fleet: Callable[..., list[str]],
) -> None:
    w = emulator.world

    def more(fleet: Any) -> None:
        channel = w.create_channel(fleet.accounts[0], "Commands Group", username="cmdgroup")
        w.invite_to_channel(fleet.accounts[0], channel, fleet.accounts[1:])
        fleet.more["group"] = -1_000_000_000_000 - channel.id

    fleet = seed_fleet(emulator, "cmd", phone="+155507", user_name="Mia", extra=more)
    accounts, users, group = fleet.accounts, fleet.users, fleet.more["group"]
    stack = start_stack(services=("tg-session", "campaign"), emulator=emulator)
    gw = GatewayClient(stack)

    def delivered(to: Any = None, chat: int | None = None) -> list[str]:
        def read() -> list[str]:
            return [
                d.text
                for d in w.deliveries
                if d.from_user_id in fleet.account_ids
                and (to is None or d.to_user_id == to.id)
                and (chat is None or (d.chat_id is not None and -1_000_000_000_000 - d.chat_id == chat))
            ]

        return emulator.do(read)

    try:
        ids = connect_fleet(gw, fleet, dailySendLimit=100, warmupEnabled=False)
        gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
        emulator.do(lambda: [w.post(u, accounts[0], f"hi, I am {u.first_name}") for u in users])
        wait_until(
            lambda: len(gw.ok("get-private-messages", {"limit": 50})["items"]) >= 4, 60, "first messages"
        )

        # --- templates: add (with preview), save, get, toggle, remove/delete -------------------------
        added = gw.ok(
            "add-template",
            {
                "name": "welcome",
                "category": "greeting",
                "content": "{Hi|Hello} {first_name}, {offer}",
                "variables": [{"name": "offer", "default": "10% off"}],
                "preview": {"recipient": {"kind": "user", "firstName": "Ann"}, "samples": 3},
            },
        )
        tpl = added["template"]
        preview = added["preview"]
        assert preview["samples"] and all(x.endswith("Ann, 10% off") for x in preview["samples"]), preview
        assert preview["variants"] == 2 and preview["missingVariables"] == []
        saved = gw.ok(
            "save-chat-template",
            {
                "id": tpl["id"],
                "name": "welcome",
                "category": "greeting",
                "content": "Hello {first_name}: {offer}",
                "variables": [{"name": "offer", "default": "10% off"}],
            },
        )["template"]
        assert saved["content"] == "Hello {first_name}: {offer}"
        spare = gw.ok("save-chat-template", {"name": "spare", "content": "spare text"})["template"]
        listed = {t["id"] for t in gw.ok("get-chat-templates", {"category": "greeting"})["items"]}
        assert listed == {tpl["id"]}
        assert gw.ok("toggle-template-status", {"id": spare["id"], "isActive": False})["isActive"] is False
        assert spare["id"] not in {
            t["id"] for t in gw.ok("get-chat-templates", {"activeOnly": True})["items"]
        }
        assert gw.ok("remove-template", {"id": spare["id"]})["affected"] == 1
        assert gw.post("delete-chat-template", {"id": spare["id"]}).status_code == 404

        # --- the four immediate sends ------------------------------------------------------------
        r = gw.ok(
            "send-message",
            {"accountId": ids[0], "peer": users[0].id, "templateId": tpl["id"], "waitSeconds": 50},
        )
        assert r["state"] == "sent" and r["messageId"], r
        assert "Hello Mia0: 10% off" in delivered(to=users[0])
        r = gw.ok(
            "send-private-message",
            {"accountId": ids[0], "peer": users[1].id, "text": "private hello", "waitSeconds": 50},
        )
        assert r["state"] == "sent" and "private hello" in delivered(to=users[1])
        r = gw.ok("send-direct-message", {"peer": "@cmd_user_2", "text": "direct hello", "waitSeconds": 50})
        assert r["state"] == "sent" and r["accountId"] in ids and "direct hello" in delivered(to=users[2])
        r = gw.ok(
            "send-group-message",
            {"accountId": ids[1], "group": group, "text": "group hello", "waitSeconds": 50},
        )
        assert r["state"] == "sent" and "group hello" in delivered(chat=group), (r, delivered(chat=group))
        keyed = {
            "accountId": ids[0],
            "peer": users[1].id,
            "text": "x",
            "idempotencyKey": "k1",
            "waitSeconds": 50,
        }
        again = gw.ok("send-private-message", keyed)
        twice = gw.ok("send-private-message", keyed)  # the same key: the same job, not a second send
        assert twice["jobId"] == again["jobId"] and twice["duplicate"] is True
        assert delivered(to=users[1]).count("x") == 1

        # --- blacklist-user: never messaged again ----------------------------------------------------
        b = gw.ok("blacklist-user", {"userId": users[3].id, "reason": "asked"})
        assert b["blacklisted"] is True
        refused = gw.ok(
            "send-message", {"accountId": ids[0], "peer": users[3].id, "text": "no", "waitSeconds": 30}
        )
        assert refused["state"] == "skipped" and refused["reason"] == "blacklisted"
        assert "no" not in delivered(to=users[3])

        # --- queue, pause/resume, clear, status ----------------------------------------------------
        gw.ok("pause-queue", {"scope": "account", "accountId": ids[1], "reason": "e2e"})
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        q = gw.ok(
            "queue-message",
            {
                "accountId": ids[1],
                "text": "queued hello",
                # account 1 has never talked to them: by username (an id alone cannot be resolved)
                "recipients": [{"peer": "@cmd_user_0"}, {"peer": "@cmd_user_1"}],
                "idempotencyKey": "batch-1",
            },
        )
        assert q["created"] == 2
        far = gw.ok(
            "queue-message",
            {
                "accountId": ids[0],
                "text": "far future",
                "recipients": [{"peer": users[2].id}],
                "notBefore": later,
                "idempotencyKey": "batch-2",
            },
        )
        status = gw.ok("get-queue-status", {"accountId": ids[1]})
        mine = next(a for a in status["accounts"] if a["accountId"] == ids[1])
        assert mine["paused"] is True and mine["pending"] + mine["scheduled"] == 2, mine
        assert "queued hello" not in delivered()
        gw.ok("resume-queue", {"scope": "account", "accountId": ids[1]})
        wait_until(lambda: delivered().count("queued hello") == 2, 60, "queued messages after resume")
        cleared = gw.ok("clear-queue", {"confirm": True, "scope": "account", "accountId": ids[0]})
        assert cleared["cancelled"] == 1
        jobs = gw.ok("get-queue-status", {"includeJobs": True, "batchId": far["batchId"]})["jobs"]["items"]
        assert [j["state"] for j in jobs] == ["cancelled"]
        assert "far future" not in delivered()

        # --- history: from events, imported, conversations -----------------------------------------
        history = gw.ok("get-chat-history", {"accountId": ids[0], "peer": users[0].id, "limit": 50})["items"]
        texts = [m["text"] for m in history]
        assert "hi, I am Mia0" in texts and "Hello Mia0: 10% off" in texts, texts
        chat = {"accountId": ids[0], "peer": users[0].id}
        question = {
            "direction": "in",
            "text": "old question",
            "date": "2026-01-01T10:00:00Z",
            "messageId": 900001,
        }
        answer = {
            "direction": "out",
            "text": "old answer",
            "date": "2026-01-01T10:01:00Z",
            "messageId": 900002,
        }
        imported = gw.ok("save-chat-history", {**chat, "messages": [question, answer]})
        assert imported["saved"] == 2
        assert gw.ok("save-chat-history", {**chat, "messages": [question]})["duplicates"] == 1
        found = gw.ok("get-chat-history", {"accountId": ids[0], "peer": users[0].id, "search": "old"})[
            "items"
        ]
        assert sorted(m["text"] for m in found) == ["old answer", "old question"]
        convs = gw.ok("get-private-messages", {"accountId": ids[0], "limit": 50})["items"]
        assert len(convs) >= 4
    finally:
        gw.close()
