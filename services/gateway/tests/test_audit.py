"""The audit trail (issue 13 finding 8): every change and every refusal through the gateway is
recorded with who ran it, and admins read it newest first at `GET /api/v1/audit`; reads a viewer may
run are not recorded, payloads never are, and viewers and operators cannot read the trail."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts import Role
from tgm_testing.procs import wait_for_async

from .conftest import System

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.asyncio(loop_scope="module"),
]


async def trail(system: System, key: str, **params: Any) -> dict[str, Any]:
    async with system.client(key) as c:
        r = await c.get("/api/v1/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_changes_and_refusals_are_recorded_and_reads_are_not(system: System) -> None:
    viewer, operator = await system.key(Role.VIEWER), await system.key(Role.OPERATOR)
    async with system.client(system.admin_key) as admin:
        assert (await admin.post("/api/v1/commands/run-migrations", json={})).status_code == 200
        made = await admin.post("/api/v1/keys", json={"name": "audited", "role": "viewer"})
        assert made.status_code == 201
        assert (await admin.delete(f"/api/v1/keys/{made.json()['data']['id']}")).status_code == 200
    async with system.client(viewer) as c:
        assert (await c.post("/api/v1/commands/get-system-info", json={})).status_code == 200
        secret = {"settings": {"ai": {"openai": {"apiKey": "sk-never-in-the-trail"}}}}
        assert (await c.post("/api/v1/commands/save-settings", json=secret)).status_code == 403
        assert (await c.get("/api/v1/audit")).status_code == 403
    async with system.client(operator) as c:
        assert (await c.get("/api/v1/audit")).status_code == 403
    async with system.client() as c:
        assert (await c.get("/api/v1/audit")).status_code == 401

    page = await trail(system, system.admin_key, limit=500)
    entries = page["items"]
    assert entries == sorted(entries, key=lambda e: e["at"], reverse=True)
    seen = [(e["command"], e["code"], e["role"]) for e in entries]
    assert ("run-migrations", "OK", "admin") in seen
    assert ("create-api-key", "OK", "admin") in seen and ("revoke-api-key", "OK", "admin") in seen
    assert ("save-settings", "FORBIDDEN", "viewer") in seen
    assert ("GET /api/v1/audit", "FORBIDDEN", "operator") in seen
    assert not any(e["command"] == "get-system-info" for e in entries)  # a viewer's read
    assert "sk-never-in-the-trail" not in repr(entries)
    refused = next(e for e in entries if e["command"] == "save-settings")
    assert refused["keyName"] == "test-viewer" and refused["ms"] is not None and refused["keyId"]

    # Filters and pages: one entry a page, the cursor continues without repeats.
    only = await trail(system, system.admin_key, command="run-migrations")
    assert {e["command"] for e in only["items"]} == {"run-migrations"}
    first = await trail(system, system.admin_key, limit=1)
    second = await trail(system, system.admin_key, limit=1, cursor=first["nextCursor"])
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert second["items"][0]["at"] <= first["items"][0]["at"]
    async with system.client(system.admin_key) as c:
        bad = await c.get("/api/v1/audit", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
        huge = await c.get("/api/v1/audit", params={"limit": 10**30})
        assert huge.status_code == 422


async def test_the_trail_is_written_in_batches_and_expires(system: System) -> None:
    audit = system.gateway.dispatcher.audit
    async with system.client(system.admin_key) as c:
        assert (await c.post("/api/v1/commands/run-migrations", json={})).status_code == 200
    # The periodic flush writes it without anyone reading the trail.
    collection = system.runtime.db["audit"]
    await wait_for_async(lambda: audit.pending() == 0, 10)
    doc = await collection.find_one({"command": "run-migrations"}, sort=[("at", -1)])
    assert doc is not None and (doc["expire_at"] - doc["at"]).days == 90
    indexes = {i["name"]: i async for i in await collection.list_indexes()}
    assert indexes["ttl"]["expireAfterSeconds"] == 0
