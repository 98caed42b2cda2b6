"""Account management commands, the account calls other services use, and secrets at rest."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_contracts.commands import accounts as A
from tgm_contracts.rpc_session import DescribeAccounts, GetHistory, MarkRead, PickAccounts, ResolvePeer

from .conftest import API_HASH, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PHONE = "+15550100001"


async def test_settings_groups_tags_personas_and_bulk(replicas):
    r = await replicas()
    a = await r.ok(
        A.AddAccount, {"phone": "+886 912 345 678", "label": "a", "group": "Sales", "role": "Sender"}
    )
    b = await r.ok(A.AddAccount, {"phone": "+15550100002", "tags": ["x"], "device": {"platform": "ios"}})
    assert a["phone"] == "+886912345678" and a["role"] == "sender" and a["group"] == "Sales"
    assert b["device"]["platform"] == "ios" and b["device"]["deviceModel"].startswith("iPhone")
    dup = await r.call(A.AddAccount, {"phone": "+886912345678"})
    assert dup["error"]["code"] == "CONFLICT"
    bad = await r.call(A.AddAccount, {"phone": "12"})
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    groups = await r.ok(A.GetGroups, {})
    assert [(g["name"], g["accountCount"]) for g in groups["groups"]] == [("Sales", 1)]
    saved = await r.ok(
        A.SaveGroups,
        {
            "groups": [
                {"id": groups["groups"][0]["id"], "name": "Sales EU", "color": "#ff0000"},
                {"name": "Support"},
            ]
        },
    )
    assert sorted(g["name"] for g in saved["groups"]) == ["Sales EU", "Support"]
    assert (await r.ok(A.GetAccounts, {"group": "Sales EU"}))["total"] == 1
    res = await r.ok(A.BulkAssignGroup, {"accountIds": [a["id"], b["id"], "acc_missing"], "group": "Support"})
    assert res["affected"] == 2 and res["failed"][0]["code"] == "NOT_FOUND" and res["ok"] is False
    await r.ok(A.BulkAssignRole, {"accountIds": [a["id"], b["id"]], "role": "listener"})
    await r.ok(
        A.BatchUpdateAccounts,
        {"accountIds": [a["id"], b["id"]], "updates": {"tags": {"mode": "add", "tags": ["y"]}}},
    )
    tags = await r.ok(A.GetTags, {})
    assert {(t["name"], t["accountCount"]) for t in tags["tags"]} == {("x", 1), ("y", 2)}
    await r.ok(A.SaveTags, {"tags": [{"name": "z", "renameFrom": "y", "color": "#00ff00"}, {"name": "x"}]})
    assert (await r.ok(A.GetAccounts, {"tag": "z"}))["total"] == 2
    await r.ok(A.SaveTags, {"tags": ["z"]})  # the earlier client's plain list; replace drops "x"
    assert (await r.ok(A.GetAccounts, {"tag": "x"}))["total"] == 0
    personas = await r.ok(
        A.SavePersonas, {"personas": [{"name": "Friendly", "tone": "friendly", "speakingStyle": "short"}]}
    )
    pid = personas["personas"][0]["id"]
    assert personas["personas"][0]["speakingStyle"] == "short"
    upd = await r.ok(
        A.UpdateAccount, {"accountId": a["id"], "personaId": pid, "label": "renamed", "dailySendLimit": 30}
    )
    assert upd["personaId"] == pid and upd["label"] == "renamed" and upd["dailySendLimit"] == 30
    assert (await r.ok(A.GetPersonas, {}))["personas"][0]["accountCount"] == 1
    page = await r.ok(A.GetAccounts, {"role": "listener", "limit": 1, "sort": "phone"})
    assert page["total"] == 2 and len(page["items"]) == 1 and page["byState"] == {"new": 2}
    assert page["items"][0]["id"] == b["id"]  # +1555… sorts before +886…
    # A keyset cursor: the next page starts after the last account, and the last page says so.
    rest = await r.ok(
        A.GetAccounts, {"role": "listener", "limit": 1, "sort": "phone", "cursor": page["nextCursor"]}
    )
    assert [i["id"] for i in rest["items"]] == [a["id"]] and rest["nextCursor"] is None
    other = await r.call(A.GetAccounts, {"role": "listener", "sort": "label", "cursor": page["nextCursor"]})
    assert other["error"]["code"] == "VALIDATION_ERROR"  # a cursor of another sort order is refused
    # The whole fleet in creation order (the kept list), both ways, page by page.
    first = await r.ok(A.GetAccounts, {"limit": 1})
    second = await r.ok(A.GetAccounts, {"limit": 1, "cursor": first["nextCursor"]})
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [a["id"], b["id"]]
    assert second["nextCursor"] is None and second["total"] == 2
    newest = await r.ok(A.GetAccounts, {"limit": 1, "order": "desc"})
    older = await r.ok(A.GetAccounts, {"limit": 1, "order": "desc", "cursor": newest["nextCursor"]})
    assert [newest["items"][0]["id"], older["items"][0]["id"]] == [b["id"], a["id"]]
    assert (await r.ok(A.GetAccounts, {"text": "renamed"}))["items"][0]["id"] == a["id"]
    gone = await r.ok(A.BulkDeleteAccounts, {"confirm": True, "accountIds": [b["id"]]})
    assert gone["affected"] == 1
    assert [i["id"] for i in (await r.ok(A.GetAccounts, {}))["items"]] == [a["id"]]  # a delete shows at once
    await r.ok(A.RemoveAccount, {"confirm": True, "accountId": a["id"]})
    assert (await r.ok(A.GetAccounts, {}))["total"] == 0
    assert (await r.call(A.RemoveAccount, {"confirm": True, "accountId": a["id"]}))["error"][
        "code"
    ] == "NOT_FOUND"


async def test_profile_push_pull_status_and_account_calls(replicas, tg_world):
    me = tg_world.add_user(PHONE, first_name="Old", username="old_name")
    friend = tg_world.add_user("+15550100002", first_name="Friend", username="friend_f")
    r = await replicas()
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    view = await r.ok(
        A.UpdateAccountData, {"accountId": acc["id"], "updates": {"firstName": "New", "bio": "hello"}}
    )
    assert view["profile"]["firstName"] == "New" and view["profile"]["bio"] == "hello"
    assert me.first_name == "New" and me.about == "hello"
    view = await r.ok(A.UpdateAccountData, {"accountId": acc["id"], "username": "new_name"})
    assert me.username == "new_name" and view["profile"]["username"] == "new_name"
    taken = await r.call(A.UpdateAccountData, {"accountId": acc["id"], "username": "friend_f"})
    assert taken["error"]["details"]["telegramError"] == "USERNAME_OCCUPIED"
    me.last_name = "Changed"
    synced = await r.ok(A.SyncAccountInfo, {"accountId": acc["id"]})
    assert synced["profile"]["lastName"] == "Changed" and synced["profile"]["telegramId"] == me.id
    report = await r.ok(A.CheckAccountStatus, {"accountId": acc["id"]})
    assert report["state"] == "active" and report["connected"] is True and report["latencyMs"] > 0
    resolved = await r.request(ResolvePeer.subject(acc["id"]), {"peer": "t.me/friend_f"})
    assert resolved["data"]["peerId"] == friend.id and resolved["data"]["kind"] == "user"
    missing = await r.request(ResolvePeer.subject(acc["id"]), {"peer": "@nobody_here"})
    assert missing["error"]["code"] == "NOT_FOUND"
    tg_world.post(friend, me, "one")
    tg_world.post(friend, me, "two")
    hist = await r.request(GetHistory.subject(acc["id"]), {"peer": "@friend_f", "limit": 10})
    assert [m["text"] for m in hist["data"]["messages"]] == ["two", "one"]
    read = await r.request(MarkRead.subject(acc["id"]), {"peer": "@friend_f"})
    assert read["ok"] and tg_world.unread_in(me, ("user", friend.id)) == 0
    picked = await r.request(PickAccounts.SUBJECT, {"count": 5})
    assert [p["id"] for p in picked["data"]["accounts"]] == [acc["id"]]
    described = await r.request(DescribeAccounts.SUBJECT, {"accountIds": [acc["id"], "acc_nope"]})
    assert (
        described["data"]["missing"] == ["acc_nope"]
        and described["data"]["accounts"][0]["telegramId"] == me.id
    )
    # A device profile really reaches Telegram.
    auth = next(rec.authorization for rec in tg_world.sessions_of(me))
    assert auth.device_model == view["device"]["deviceModel"]


async def test_no_plaintext_secret_in_the_database(replicas, tg_emulator, tg_world, proxies):
    proxy = await proxies("socks5", "puser", "proxy-pass-93871")
    u = tg_world.add_user(PHONE, first_name="Sec", password="2fa-pass-55512")
    other = tg_world.add_user("+15550100002", first_name="Imp")
    imported = tg_emulator.session_for(other)
    r = await replicas()
    hash2 = "aa11bb22cc33dd44ee55ff6677889900"
    await r.ok(
        A.AddAccount,
        {
            "phone": "+15550100002",
            "sessionString": imported,
            "apiId": 4242,
            "apiHash": hash2,
            "proxy": proxy.url(),
        },
    )
    acc = await r.ok(A.AddAccount, {"phone": PHONE, "proxy": proxy.url()})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(
        A.VerifyCode,
        {
            "accountId": acc["id"],
            "phoneCode": tg_world.last_code(PHONE),
            "twoFactorPassword": "2fa-pass-55512",
        },
    )
    await until(lambda: sum(1 for live in r.svc.pool.live.values() if live.connected) == 2)
    from telethon.sessions import StringSession

    # The live session strings, as Telethon would save them, and their auth keys.
    secrets = {imported, API_HASH, hash2, "proxy-pass-93871", "2fa-pass-55512"}
    for live in r.svc.pool.live.values():
        text = live.client.session_string()
        secrets.add(text)
        secrets.add(StringSession(text).auth_key.key.hex())
    dump = ""
    for name in await r.db.list_collection_names():
        async for doc in r.db[name].find({}):
            dump += json.dumps(doc, default=str)
    assert "enc:v1:" in dump
    for secret in secrets:
        assert secret not in dump, f"a secret is stored in clear ({len(secret)} chars)"
    assert u.id  # the account really logged in with 2FA


async def test_concurrent_first_pages_share_one_read_and_see_this_replicas_writes(replicas):
    r = await replicas()
    made = [await r.ok(A.AddAccount, {"phone": f"+1555030{i:04d}", "label": f"s{i}"}) for i in range(6)]
    repo = r.svc.repos.accounts
    ranges: list[Any] = []
    find = repo.watched._col.find

    def counting(query: Any, *args: Any, **kwargs: Any) -> Any:
        if "created_at" in query:
            ranges.append(query)
        return find(query, *args, **kwargs)

    repo.watched._col.find = counting
    try:
        await repo.in_created_order(None, 4, False)  # the kept creation order is read first
        ranges.clear()
        pages = await asyncio.gather(*(repo.in_created_order(None, 4, False) for _ in range(8)))
        assert all([d["_id"] for d in p] == [m["id"] for m in made[:4]] for p in pages)
        assert len(ranges) == 1  # callers of the same page while its read ran shared it
        assert len({id(p) for p in pages}) == 8  # each caller has a list of its own to cut
        # A write of this replica is seen by every read that starts after it ended, even one that
        # starts while an earlier read of the same page is still under way.
        early = asyncio.ensure_future(repo.in_created_order(None, 4, False))
        await asyncio.sleep(0)  # that read is under way
        await r.ok(A.UpdateAccount, {"accountId": made[0]["id"], "label": "renamed"})
        late = await repo.in_created_order(None, 4, False)
        await early
        assert late[0]["label"] == "renamed"
        page = await r.ok(A.GetAccounts, {"limit": 3})
        assert page["items"][0]["label"] == "renamed" and page["total"] == 6
    finally:
        repo.watched._col.find = find


async def test_another_replicas_add_shows_after_a_background_read_no_page_waits_for(replicas, monkeypatch):
    """The creation order and the tallies past their age are read again in the background: the page
    that finds them old is answered from what is kept (another replica's add not yet in it), the
    next one after that read has it (accounts/store.py). r1's store is called directly (a command
    could be served by either replica)."""
    from tgm_session.accounts import store

    one = await replicas("r1")
    await one.ok(A.AddAccount, {"phone": "+15550400001"})
    repo = one.svc.repos.accounts

    async def another_replicas_add() -> None:  # the same collection, not through r1's store
        doc = await repo.watched._col.find_one({})
        doc.update(_id="acc_other", phone="+15550400002", created_at=datetime.now(UTC))
        await repo.watched._col.insert_one(doc)

    async def page() -> tuple[list[str], int]:
        docs = await repo.in_created_order(None, 10, False)
        return [d["phone"] for d in docs], sum((await repo.tally({})).values())

    async def page_is(expected: tuple[list[str], int]) -> bool:
        return await page() == expected

    assert await page() == (["+15550400001"], 1)  # r1 keeps the order and the tallies
    await another_replicas_add()
    assert await page() == (["+15550400001"], 1)  # kept, and not old yet: nothing read again

    monkeypatch.setattr(store, "FRESH_SECONDS", 0.0)
    monkeypatch.setattr(store, "ORDER_FRESH_SECONDS", 0.0)
    reads: list[str] = []
    find, aggregate = repo.watched._col.find, repo.watched._col.aggregate

    def counting_find(query: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append("find " + ",".join(sorted(query)))
        return find(query, *args, **kwargs)

    def counting_aggregate(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append("aggregate")
        return aggregate(pipeline, *args, **kwargs)

    repo.watched._col.find, repo.watched._col.aggregate = counting_find, counting_aggregate
    try:
        assert await page() == (["+15550400001"], 1)  # answered from what r1 kept, reads asked for
        await repo.refresh_wanted()  # what the replica's accounts-refresh job does each second
        # the page's own range read, and the two reads it asked for (the order, the tallies)
        assert {"aggregate", "find ", "find created_at"} <= set(reads)
        await until(lambda: page_is((["+15550400001", "+15550400002"], 2)), timeout=10)
    finally:
        repo.watched._col.find, repo.watched._col.aggregate = find, aggregate


async def test_every_replica_hears_an_add_and_reads_its_kept_order_again(replicas):
    """What `get-accounts` keeps is made old by any replica's `account-added`, `account-removed` and
    `account-status-changed` (heard by every replica): an account added through either shows on
    both long before FRESH_SECONDS (the replicas' accounts-refresh job reads within a second), with
    no page waiting for the read."""
    from tgm_session.accounts import store

    one, two = await replicas("r1"), await replicas("r2")
    await one.ok(A.AddAccount, {"phone": "+15550500001"})
    repos = [one.svc.repos.accounts, two.svc.repos.accounts]

    async def seen(repo: Any) -> tuple[int, int]:
        docs = await repo.in_created_order(None, 10, False)
        return len(docs), sum((await repo.tally({})).values())

    async def both_see(n: int) -> bool:
        return [await seen(repo) for repo in repos] == [(n, n), (n, n)]

    # each replica keeps the order and the tallies (r2's whole-fleet tally may be one its pool's fleet
    # gauge kept from before the add: made old by the event, read again within a second)
    await until(lambda: both_see(1), timeout=10)
    assert store.FRESH_SECONDS >= 60 and store.ORDER_FRESH_SECONDS >= 600  # heard, not waited for
    await one.ok(A.AddAccount, {"phone": "+15550500002"})  # served by one; both hear the event

    await until(lambda: both_see(2), timeout=10)
    removed = (await one.ok(A.GetAccounts, {"limit": 10}))["items"][0]["id"]
    await two.ok(A.RemoveAccount, {"accountId": removed, "confirm": True})

    await until(lambda: both_see(1), timeout=10)
