"""The whole system as separate processes (nats-server, secantusd, six services, the gateway), driven
only through the gateway: what an operator does on day one, and what happens when parts die.

`tgm-stack up` itself (banner, key, graceful-shutdown exit code, up again) is covered by
tools/stack/tests/test_real_stack.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

SERVICES = ("gateway", "tg-session", "campaign", "ai", "analytics", "tailchat")


def healthy(gw: GatewayClient) -> bool:
    try:
        return bool(gw.post("get-system-info").json()["data"]["healthy"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def test_ipc_get_system_info_reports_every_service(stack: Stack, gw: GatewayClient) -> None:
    r = gw.ipc("get-system-info", {}, request_id="r1")
    body = r.json()
    assert r.status_code == 200
    assert body["event"] == "get-system-info-result" and body["requestId"] == "r1"
    assert set(body["data"]["services"]) == set(SERVICES)
    assert all(s["status"] == "up" for s in body["data"]["services"].values()), body["data"]["services"]
    key_file = stack.data_dir / "admin.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # tg-session's figures are its kept per-state tallies: the same as get-accounts' (whatever
    # earlier tests of the module added)
    counts = gw.post("get-initial-state").json()["data"]["counts"]
    fleet = gw.post("get-accounts", {"limit": 1}).json()["data"]
    assert counts["accounts"] == fleet["total"], (counts, fleet)
    assert counts["activeAccounts"] == fleet["byState"].get("active", 0), (counts, fleet)


def test_error_envelopes_and_statuses(gw: GatewayClient) -> None:
    assert gw.post("no-such-command").status_code == 404
    bad = gw.post("search-knowledge", {"query": 5, "topK": "lots"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad.json()["error"]["details"]
    r = gw.post("get-settings", anonymous=True)
    assert r.status_code == 401
    created = gw.create_key("e2e-viewer", "viewer")
    r = gw.post("add-knowledge", {"question": "q", "answer": "a"}, key=created["key"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"


def test_killed_service_is_unavailable_then_works_again(stack: Stack, gw: GatewayClient) -> None:
    assert gw.post("get-knowledge-stats").status_code == 200
    stack.kill("ai")
    r = gw.post("get-knowledge-stats")
    assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE"
    info = gw.post("get-system-info").json()["data"]
    assert info["services"]["ai"]["status"] == "down" and info["healthy"] is False
    stack.restart("ai")
    wait_until(lambda: gw.post("get-knowledge-stats").status_code == 200, 60, "ai answering again")
    wait_until(lambda: healthy(gw), 30, "a healthy system")


def test_services_reconnect_after_a_nats_restart(stack: Stack, gw: GatewayClient) -> None:
    stack.stop_infra_nats()
    r = gw.post("get-settings")
    assert r.status_code == 503
    stack.start_infra_nats()
    wait_until(lambda: healthy(gw), 90, "a healthy system after the nats restart")
    assert gw.post("get-knowledge-stats").status_code == 200


def test_backup_then_destructive_change_then_restore(gw: GatewayClient) -> None:
    item = {
        "question": "What are the opening hours?",
        "answer": "We are open 9:00 to 18:00, Monday to Friday.",
    }
    assert gw.post("add-knowledge", {"items": [item]}).status_code == 200
    gw.post("save-settings", {"settings": {"compliance": {"perRecipientDailyCap": 2}}})
    backup = gw.post("backup-database", {"label": "e2e"}).json()["data"]
    assert backup["state"] == "completed", backup
    assert Path(backup["archive"]).exists()

    assert gw.post("clear-knowledge", {"confirm": True}).status_code == 200
    gw.post("reset-settings", {"confirm": True})
    assert gw.post("get-knowledge-stats").json()["data"]["totalItems"] == 0

    restored = gw.post("restore-database", {"confirm": True, "backupId": backup["backupId"]}).json()["data"]
    assert restored["state"] == "completed", restored
    assert gw.post("get-knowledge-stats").json()["data"]["totalItems"] >= 1
    found = gw.post("search-knowledge", {"query": "opening hours"}).json()["data"]
    assert any("9:00" in str(h["item"]) for h in found["hits"]), found
    got = gw.post("get-settings", {"sections": ["compliance"]}).json()["data"]
    assert got["settings"]["compliance"]["perRecipientDailyCap"] == 2


def test_settings_survive_a_full_restart(stack: Stack, gw: GatewayClient) -> None:
    r = gw.post(
        "save-settings",
        {"settings": {"general": {"language": "en"}, "pacing": {"perAccountPerHour": 150}}},
    )
    assert r.status_code == 200, r.text
    stack.stop()
    stack.start()
    got = gw.post("get-settings").json()["data"]["settings"]
    assert got["general"]["language"] == "en" and got["pacing"]["perAccountPerHour"] == 150


def test_campaign_contacts_commands_answer_through_the_gateway(gw: GatewayClient) -> None:
    lead = gw.ok("add-lead", {"userId": 424242, "firstName": "Eve", "tags": ["e2e"]})
    lid = lead["id"]
    assert gw.post("add-lead", {"userId": 424242}).json()["error"]["code"] == "CONFLICT"
    assert [x["id"] for x in gw.ok("get-leads", {"tags": ["e2e"]})["items"]] == [lid]
    assert gw.ok("update-lead", {"leadId": lid, "notes": "from e2e"})["notes"] == "from e2e"
    assert (
        gw.ok("update-lead-stage", {"leadId": lid, "stage": "contacted", "reason": "e2e"})["stage"]
        == "contacted"
    )
    assert gw.ok("update-funnel-stage", {"leadIds": [lid], "stage": "replied"})["affected"] == 1
    assert gw.ok("assign-lead", {"leadIds": [lid], "assignee": "ops"})["affected"] == 1
    details = gw.ok("get-lead-details", {"leadId": lid})
    assert [h["toStage"] for h in details["stageHistory"]] == ["new", "contacted", "replied"]
    stats = gw.ok("get-funnel-stats")
    assert stats["total"] >= 1 and {s["stage"] for s in stats["stages"]} >= {"new", "replied"}
    assert lid in [u["leadId"] for u in gw.ok("get-funnel-users", {"stage": "replied"})["items"]]
    assert gw.ok("track-user", {"userId": 424242, "valueLevel": "high"})["leadId"] == lid
    assert gw.ok("get-tracked-users", {"valueLevel": "high"})["items"][0]["userId"] == 424242
    kinds = [a["kind"] for a in gw.ok("get-user-activity", {"leadId": lid})["items"]]
    assert kinds == ["stage_change", "stage_change", "lead_captured"]
    assert gw.ok("untrack-user", {"userId": 424242})["affected"] == 1
    assert gw.ok("delete-lead", {"leadId": lid})["affected"] == 1
    r = gw.post("get-lead-details", {"leadId": lid})
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
