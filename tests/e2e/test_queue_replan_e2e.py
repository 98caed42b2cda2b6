"""Held jobs re-plan when what held them changes, and templates know what the product knows (issue 12,
findings 5 and 6), on the stack as processes (tg-session with the real Telethon, campaign, gateway)
against the Telegram emulator, checked against what the emulator delivered.

- a queued message held by quiet hours goes out as soon as `save-settings` moves the timezone, and
  again when it moves the hours, not when the old rule would have lifted (two hours later);
- a send held by the warm-up cap on first contacts goes out as soon as that person writes first;
- `{first_name}` of a user campaign never met comes from tg-session's member extraction; a user
  nobody knows keeps the job waiting (`missing_variable`, not a permanent failure) until they write.
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


def _hhmm(delta_hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=delta_hours)).strftime("%H:%M")


@pytest.mark.timeout(240)
def test_held_jobs_replan_on_settings_and_first_contact_and_templates_know_extracted_names(
    emulator: EmulatorThread,
    start_stack: Callable[..., Stack],
    fast_pacing: dict[str, Any],
    seed_fleet: Callable[..., Any],
    connect_fleet: Callable[..., list[str]],
) -> None:
    w = emulator.world

    def more(fleet: Any) -> None:
        fleet.more["nadia"] = w.add_user("+15550919001", first_name="Nadia", username="replan_nadia")
        fleet.more["uma"] = w.add_user("+15550919002", first_name="Uma", username="replan_uma")
        channel = w.create_channel(fleet.accounts[0], "Replan Members", username="replanmembers")
        w.invite_to_channel(fleet.accounts[0], channel, [fleet.more["nadia"]])

    fleet = seed_fleet(
        emulator, "replan", phone="+155509", agent_name="Replan", user_name="Stranger", extra=more
    )
    accounts, users, nadia, uma = fleet.accounts, fleet.users, fleet.more["nadia"], fleet.more["uma"]
    stack = start_stack(services=("tg-session", "campaign"), emulator=emulator)
    gw = GatewayClient(stack)

    def delivered(to: Any) -> list[str]:
        def read() -> list[str]:
            return [
                d.text for d in w.deliveries if d.from_user_id in fleet.account_ids and d.to_user_id == to.id
            ]

        return emulator.do(read)

    def job(job_id: str) -> dict[str, Any]:
        return gw.ok("get-queue-status", {"includeJobs": True, "jobId": job_id})["jobs"]["items"][0]

    def held_by(job_id: str, reason: str) -> dict[str, Any]:
        return wait_until(
            lambda: (j := job(job_id))["state"] == "scheduled" and j["reason"] == reason and j,
            30,
            f"job held by {reason}",
        )

    try:
        ids = connect_fleet(gw, fleet, lambda i: {"warmupEnabled": i == 1})
        # Quiet hours around now in UTC; the warm-up allows one stranger on day 0 (7 * 1 / (6 + 1)).
        quiet = {"quietHoursStart": _hhmm(-1), "quietHoursEnd": _hhmm(2), "timezone": "UTC"}
        pacing = {**fast_pacing, **quiet, "perAccountDailyNonContacts": 7, "warmupDays": 6}
        gw.ok("save-settings", {"settings": {"pacing": pacing}})

        # --- finding 5: quiet hours moved by the timezone, then by the hours ----------------------
        def queue(text: str, to: Any) -> str:
            q = gw.ok(
                "queue-message",
                {"accountId": ids[0], "text": text, "recipients": [{"peer": f"@{to.username}"}]},
            )
            return str(q["jobs"][0]["jobId"])

        first = queue("after the timezone moved", users[0])
        held = held_by(first, "quiet_hours")
        assert datetime.fromisoformat(held["notBefore"]) > datetime.now(UTC) + timedelta(minutes=90), held
        gw.ok("save-settings", {"settings": {"pacing": {"timezone": "Etc/GMT-12"}}})  # local time: +12 h
        wait_until(lambda: "after the timezone moved" in delivered(users[0]), 30, "sent after the zone moved")

        gw.ok("save-settings", {"settings": {"pacing": {"timezone": "UTC"}}})
        second = queue("after the hours moved", users[1])
        held_by(second, "quiet_hours")
        gw.ok(
            "save-settings",
            {"settings": {"pacing": {"quietHoursStart": _hhmm(3), "quietHoursEnd": _hhmm(4)}}},
        )
        wait_until(lambda: "after the hours moved" in delivered(users[1]), 30, "sent after the hours moved")
        assert job(second)["state"] == "sent"

        # --- finding 5: the warm-up's first-contact cap lifts when that person writes first ---------
        gw.ok("save-settings", {"settings": {"pacing": {"quietHoursStart": None, "quietHoursEnd": None}}})
        one = gw.ok(
            "send-private-message",
            {
                "accountId": ids[1],
                "peer": f"@{users[2].username}",
                "text": "first stranger",
                "waitSeconds": 40,
            },
        )
        assert one["state"] == "sent", one
        two = gw.ok(
            "send-private-message",
            {
                "accountId": ids[1],
                "peer": f"@{users[3].username}",
                "text": "second stranger",
                "waitSeconds": 20,
            },
        )
        assert two["state"] == "scheduled" and "warmup (1/1)" in (two["lastError"] or ""), two
        emulator.do(lambda: w.post(users[3], accounts[1], "hello, I write first"))
        wait_until(lambda: "second stranger" in delivered(users[3]), 30, "sent once the person wrote first")

        # --- finding 6: {first_name} from tg-session's extraction; unknown: waits, not failed ------
        extraction = gw.ok("extract-members", {"accountId": ids[0], "group": "@replanmembers"})
        wait_until(
            lambda: (
                gw.ok("get-extraction-status", {"jobId": extraction["jobId"]})["items"][0]["state"]
                == "completed"
            ),
            60,
            "extraction done",
        )
        tpl = gw.ok("add-template", {"name": "facts", "content": "Hi {first_name}!"})["template"]
        sent = gw.ok(
            "send-message",
            {"accountId": ids[0], "peer": f"@{nadia.username}", "templateId": tpl["id"], "waitSeconds": 40},
        )
        assert sent["state"] == "sent", sent
        assert "Hi Nadia!" in delivered(nadia)

        waiting = gw.ok(
            "send-message",
            {"accountId": ids[0], "peer": f"@{uma.username}", "templateId": tpl["id"], "waitSeconds": 5},
        )
        assert waiting["state"] == "scheduled" and waiting["reason"] == "missing_variable", waiting
        assert "{first_name}" in waiting["lastError"] and "default" in waiting["lastError"], waiting
        assert delivered(uma) == []
        emulator.do(lambda: w.post(uma, accounts[0], "hi, Uma here"))
        wait_until(lambda: "Hi Uma!" in delivered(uma), 30, "sent once Uma's name is known")
    finally:
        gw.close()
