"""The API credential pool and the developer-site credential scrape (auto and manual code)."""

from __future__ import annotations

import pytest
from tgm_contracts.commands import accounts as A
from tgm_contracts.commands import telegram_ops as T

from .conftest import API_HASH, until
from .paging import TIMES, in_order, read_all, refuses_bad_cursors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PHONE = "+15550100001"
HASH2 = "fedcba9876543210fedcba9876543210"


async def test_pool_assigns_caps_tests_and_deletes(replicas, tg_world):
    tg_world.apps.update({1: API_HASH, 777: HASH2})  # the world checks apps now
    r = await replicas()
    listed = await r.ok(T.GetApiCredentials, {})
    seeded = listed["items"][0]
    assert seeded["apiId"] == 1 and seeded["apiHashMasked"] == "********" + API_HASH[-4:]
    bad = await r.call(T.SaveApiCredential, {"apiId": 778, "apiHash": HASH2})
    assert (
        bad["error"]["code"] == "TELEGRAM_ERROR"
        and bad["error"]["details"]["telegramError"] == "API_ID_INVALID"
    )
    small = await r.ok(
        T.SaveApiCredential, {"apiId": 777, "apiHash": HASH2, "maxAccounts": 1, "name": "small"}
    )
    dup = await r.call(T.SaveApiCredential, {"apiId": 777, "apiHash": HASH2, "test": False})
    assert dup["error"]["code"] == "CONFLICT"
    a1 = await r.ok(A.AddAccount, {"phone": "+15550100001", "apiCredentialId": small["id"]})
    assert a1["apiId"] == 777
    full = await r.call(A.AddAccount, {"phone": "+15550100002", "apiCredentialId": small["id"]})
    assert full["error"]["code"] == "CONFLICT"
    a2 = await r.ok(A.AddAccount, {"phone": "+15550100002"})
    assert a2["apiCredentialId"] == seeded["id"]  # the least used one with room
    tested = await r.ok(T.TestApiCredential, {"id": small["id"]})
    assert tested["ok"] is True and tested["latencyMs"] > 0
    wrong = await r.ok(T.TestApiCredential, {"apiId": 777, "apiHash": API_HASH})
    assert wrong["ok"] is False and wrong["error"] == "API_ID_INVALID"
    refused = await r.call(T.DeleteApiCredential, {"id": small["id"]})
    assert refused["error"]["code"] == "CONFLICT"
    moved = await r.ok(T.DeleteApiCredential, {"id": small["id"], "reassignTo": seeded["id"]})
    assert moved["deleted"] is True and moved["reassignedAccounts"] == 1
    after = await r.ok(T.GetApiCredentials, {})
    assert [c["accountsInUse"] for c in after["items"]] == [2] and after["inUse"] == 2


async def test_scrape_reads_the_code_from_the_accounts_messages_and_creates_the_app(
    replicas, tg_world, devsite, events
):
    u = tg_world.add_user(PHONE, first_name="Sam")
    r = await replicas(devsite_url=devsite.url)
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    run = await r.ok(A.CredentialStartScrape, {"accountId": acc["id"], "appTitle": "My Fleet App"})
    done = await events.wait(
        "credential-scrape-updated", lambda d: d["state"] in ("completed", "failed"), timeout=30
    )
    assert done["state"] == "completed", (await r.ok(A.CredentialGetStatus, {"scrapeId": run["scrapeId"]}))[
        "log"
    ]
    app = devsite.app_of(u)
    assert app is not None and app.title == "My Fleet App" and done["apiId"] == app.api_id
    status = await r.ok(A.CredentialGetStatus, {"accountId": acc["id"]})
    assert status["createdApp"] is True and status["apiHashMasked"] == "********" + app.api_hash[-4:]
    assert app.api_hash not in str(status)
    view = (await r.ok(A.GetAccounts, {"ids": [acc["id"]]}))["items"][0]
    assert view["apiId"] == app.api_id and view["apiCredentialId"] == status["credentialId"]
    # The code message was an inbound message, but its text never went into an event.
    got = [e for e in events.named("message-received") if e["senderId"] == 777000]
    assert got and all("my.telegram.org" not in e["text"] for e in got)
    everything = await r.ok(A.CredentialGetAll, {"accountId": acc["id"]})
    assert everything["total"] == 1


async def test_scrape_with_a_code_given_by_hand_reads_an_existing_app(replicas, tg_world, devsite):
    u = tg_world.add_user(PHONE, first_name="Sam")
    existing = devsite.add_app(u)
    r = await replicas(devsite_url=devsite.url)
    acc = await r.ok(A.AddAccount, {"phone": PHONE})  # not logged in: the code comes by hand
    auto = await r.call(A.CredentialStartScrape, {"accountId": acc["id"]})
    assert auto["error"]["code"] == "CONFLICT"
    run = await r.ok(A.CredentialStartScrape, {"accountId": acc["id"], "codeSource": "manual"})

    async def waiting() -> bool:
        return (await r.ok(A.CredentialGetStatus, {"scrapeId": run["scrapeId"]}))["state"] == "waiting_code"

    await until(waiting)
    wrong = await r.ok(A.CredentialSubmitCode, {"accountId": acc["id"], "code": "WrongCode1"})
    assert wrong["state"] == "failed" and "Invalid confirmation code" in wrong["error"]
    run = await r.ok(A.CredentialStartScrape, {"accountId": acc["id"], "codeSource": "manual"})
    await until(waiting)
    done = await r.ok(A.CredentialSubmitCode, {"accountId": acc["id"], "code": devsite.last_code(PHONE)})
    assert done["state"] == "completed" and done["apiId"] == existing.api_id and done["createdApp"] is False
    third = await r.ok(A.CredentialStartScrape, {"accountId": acc["id"], "codeSource": "manual"})
    cancelled = await r.ok(A.CredentialCancelScrape, {"scrapeId": third["scrapeId"]})
    assert cancelled["state"] == "cancelled"


async def test_credential_get_all_pages_by_keyset_newest_first(replicas):
    """Seven runs, three at one instant and two at another, read three a page: each once, newest
    first, equal start times by id; a cursor it did not give out is a VALIDATION_ERROR."""
    r = await replicas()
    rows = [
        {"_id": f"scr_{i}", "account_id": "acc_1", "phone": PHONE, "state": "completed", "started_at": t}
        for i, t in zip([4, 1, 6, 0, 3, 5, 2], TIMES, strict=True)
    ]
    await r.db["credential_scrapes"].insert_many([dict(d) for d in rows])
    expected = in_order(rows, lambda d: d["started_at"], desc=True)
    assert await read_all(r, A.CredentialGetAll, {}, "scrapeId") == expected
    assert await read_all(r, A.CredentialGetAll, {"accountId": "acc_1"}, "scrapeId", limit=2) == expected
    await refuses_bad_cursors(r, A.CredentialGetAll, {})
