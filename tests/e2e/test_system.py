"""The whole system as separate processes (nats-server, secantusd, five services, the gateway), driven
only through the gateway: what an operator does on day one, and what happens when parts die.

`tgm-stack up` itself (banner, key, graceful-shutdown exit code, up again) is covered by
tools/stack/tests/test_real_stack.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tgm_stack import Stack
from tgm_testing.procs import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

SERVICES = ("gateway", "tg-session", "campaign", "ai", "analytics")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    s = Stack(tmp_path_factory.mktemp("e2e") / "data", gateway_port=0)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def call(stack: Stack, command: str, payload: dict | None = None, key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/api/v1/commands/{command}",
        json=payload or {},
        headers={"authorization": f"Bearer {key or stack.admin_key}"},
        timeout=60,
    )


def healthy(stack: Stack) -> bool:
    try:
        return bool(call(stack, "get-system-info").json()["data"]["healthy"])
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def test_ipc_get_system_info_reports_five_services(stack: Stack) -> None:
    r = httpx.post(
        f"{stack.gateway_url}/api/v1/ipc",
        json={"command": "get-system-info", "payload": {}, "requestId": "r1"},
        headers={"authorization": f"Bearer {stack.admin_key}"},
        timeout=30,
    )
    body = r.json()
    assert r.status_code == 200
    assert body["event"] == "get-system-info-result" and body["requestId"] == "r1"
    assert set(body["data"]["services"]) == set(SERVICES)
    assert all(s["status"] == "up" for s in body["data"]["services"].values()), body["data"]["services"]
    key_file = stack.data_dir / "admin.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_error_envelopes_and_statuses(stack: Stack) -> None:
    assert call(stack, "no-such-command").status_code == 404
    bad = call(stack, "search-knowledge", {"query": 5, "topK": "lots"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert bad.json()["error"]["details"]
    r = httpx.post(f"{stack.gateway_url}/api/v1/commands/get-settings", json={}, timeout=10)
    assert r.status_code == 401
    created = httpx.post(
        f"{stack.gateway_url}/api/v1/keys",
        json={"name": "e2e-viewer", "role": "viewer"},
        headers={"authorization": f"Bearer {stack.admin_key}"},
        timeout=10,
    ).json()["data"]
    r = call(stack, "add-knowledge", {"question": "q", "answer": "a"}, key=created["key"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"


def test_killed_service_is_unavailable_then_works_again(stack: Stack) -> None:
    assert call(stack, "get-knowledge-stats").status_code == 200
    stack.kill("ai")
    r = call(stack, "get-knowledge-stats")
    assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE"
    info = call(stack, "get-system-info").json()["data"]
    assert info["services"]["ai"]["status"] == "down" and info["healthy"] is False
    stack.restart("ai")
    wait_for(lambda: call(stack, "get-knowledge-stats").status_code == 200, timeout=60)
    wait_for(lambda: healthy(stack), timeout=30)


def test_services_reconnect_after_a_nats_restart(stack: Stack) -> None:
    stack.stop_infra_nats()
    r = call(stack, "get-settings")
    assert r.status_code == 503
    stack.start_infra_nats()
    wait_for(lambda: healthy(stack), timeout=90, interval=0.5)
    assert call(stack, "get-knowledge-stats").status_code == 200


def test_backup_then_destructive_change_then_restore(stack: Stack) -> None:
    item = {
        "question": "What are the opening hours?",
        "answer": "We are open 9:00 to 18:00, Monday to Friday.",
    }
    assert call(stack, "add-knowledge", {"items": [item]}).status_code == 200
    call(stack, "save-settings", {"settings": {"compliance": {"perRecipientDailyCap": 2}}})
    backup = call(stack, "backup-database", {"label": "e2e"}).json()["data"]
    assert backup["state"] == "completed", backup
    assert Path(backup["archive"]).exists()

    assert call(stack, "clear-knowledge").status_code == 200
    call(stack, "reset-settings")
    assert call(stack, "get-knowledge-stats").json()["data"]["totalItems"] == 0

    restored = call(stack, "restore-database", {"backupId": backup["backupId"]}).json()["data"]
    assert restored["state"] == "completed", restored
    assert call(stack, "get-knowledge-stats").json()["data"]["totalItems"] >= 1
    found = call(stack, "search-knowledge", {"query": "opening hours"}).json()["data"]
    assert any("9:00" in str(h["item"]) for h in found["hits"]), found
    got = call(stack, "get-settings", {"sections": ["compliance"]}).json()["data"]
    assert got["settings"]["compliance"]["perRecipientDailyCap"] == 2


def test_settings_survive_a_full_restart(stack: Stack) -> None:
    r = call(
        stack,
        "save-settings",
        {"settings": {"general": {"language": "en"}, "pacing": {"perAccountPerHour": 150}}},
    )
    assert r.status_code == 200, r.text
    stack.stop()
    stack.start()
    got = call(stack, "get-settings").json()["data"]["settings"]
    assert got["general"]["language"] == "en" and got["pacing"]["perAccountPerHour"] == 150


def test_campaign_contacts_commands_answer_through_the_gateway(stack: Stack) -> None:
    def ok(command: str, payload: dict | None = None) -> dict:
        r = call(stack, command, payload)
        assert r.status_code == 200 and r.json()["ok"], (command, r.text)
        return r.json()["data"]

    lead = ok("add-lead", {"userId": 424242, "firstName": "Eve", "tags": ["e2e"]})
    lid = lead["id"]
    assert call(stack, "add-lead", {"userId": 424242}).json()["error"]["code"] == "CONFLICT"
    assert [x["id"] for x in ok("get-leads", {"tags": ["e2e"]})["items"]] == [lid]
    assert ok("update-lead", {"leadId": lid, "notes": "from e2e"})["notes"] == "from e2e"
    assert (
        ok("update-lead-stage", {"leadId": lid, "stage": "contacted", "reason": "e2e"})["stage"]
        == "contacted"
    )
    assert ok("update-funnel-stage", {"leadIds": [lid], "stage": "replied"})["affected"] == 1
    assert ok("assign-lead", {"leadIds": [lid], "assignee": "ops"})["affected"] == 1
    details = ok("get-lead-details", {"leadId": lid})
    assert [h["toStage"] for h in details["stageHistory"]] == ["new", "contacted", "replied"]
    stats = ok("get-funnel-stats")
    assert stats["total"] >= 1 and {s["stage"] for s in stats["stages"]} >= {"new", "replied"}
    assert lid in [u["leadId"] for u in ok("get-funnel-users", {"stage": "replied"})["items"]]
    assert ok("track-user", {"userId": 424242, "valueLevel": "high"})["leadId"] == lid
    assert ok("get-tracked-users", {"valueLevel": "high"})["items"][0]["userId"] == 424242
    kinds = [a["kind"] for a in ok("get-user-activity", {"leadId": lid})["items"]]
    assert kinds == ["stage_change", "stage_change", "lead_captured"]
    assert ok("untrack-user", {"userId": 424242})["affected"] == 1
    assert ok("delete-lead", {"leadId": lid})["affected"] == 1
    r = call(stack, "get-lead-details", {"leadId": lid})
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
