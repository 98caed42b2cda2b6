"""Group operations, member extraction (paced, resumable, filtered, exported), inbound joins."""

from __future__ import annotations

import base64
import csv
import io

import pytest
from tg_emulator.world.seed import generate_members
from tgm_contracts.commands import accounts as A
from tgm_contracts.commands import telegram_ops as T

from .conftest import until
from .paging import BASE, TIMES, in_order, read_all, refuses_bad_cursors

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PHONE = "+15550100001"


async def logged_in(r, world, phone: str = PHONE) -> dict:
    acc = await r.ok(A.AddAccount, {"phone": phone})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": world.last_code(phone)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    return acc


async def test_join_search_members_leave_create(replicas, tg_world, events, monitored):
    tg_world.add_user(PHONE, first_name="Ann")
    owner = tg_world.add_user("+15550100009", first_name="Owner")
    friend = tg_world.add_user("+15550100008", first_name="Friend", username="friend_f")
    lobby = tg_world.create_channel(owner, "Python Lobby", username="pylobby", members=[friend])
    secret = tg_world.create_channel(owner, "Secret Club")
    invite = tg_world.export_invite(secret)
    r = await replicas()
    acc = await logged_in(r, tg_world)
    found = await r.ok(T.SearchGroups, {"keyword": "pylob"})
    assert [c["username"] for c in found["items"]] == ["pylobby"] and found["accountId"] == acc["id"]
    joined = await r.ok(T.JoinGroup, {"accountId": acc["id"], "groupUrl": "https://t.me/pylobby"})
    assert joined["chat"]["title"] == "Python Lobby" and joined["alreadyMember"] is False
    assert joined["chat"]["chatId"] == int(f"-100{lobby.id}")
    await events.wait("group-joined", lambda d: d["title"] == "Python Lobby")
    again = await r.ok(T.JoinGroup, {"accountId": acc["id"], "group": "@pylobby"})
    assert again["alreadyMember"] is True
    by_invite = await r.ok(T.JoinGroup, {"accountId": acc["id"], "group": f"https://t.me/+{invite}"})
    assert by_invite["chat"]["title"] == "Secret Club"
    # A bare invite hash: one no username could be, and one shaped like a username that is none.
    hidden = tg_world.create_channel(owner, "Hidden Room")
    hidden.invites.add("9bcdefgh-jklmnop")
    bare = await r.ok(T.JoinGroup, {"accountId": acc["id"], "group": "9bcdefgh-jklmnop"})
    assert bare["chat"]["title"] == "Hidden Room" and bare["alreadyMember"] is False
    other = tg_world.create_channel(owner, "Other Room")
    other.invites.add("Abcdefghijklmnop")
    shaped = await r.ok(T.JoinGroup, {"accountId": acc["id"], "group": "Abcdefghijklmnop"})
    assert shaped["chat"]["title"] == "Other Room"
    dead = await r.call(T.JoinGroup, {"accountId": acc["id"], "group": "Zzzzzzzzzzzzzzzz"})
    assert dead["error"]["code"] == "NOT_FOUND" and "no invite with that hash" in dead["error"]["message"]
    expired = await r.call(T.JoinGroup, {"accountId": acc["id"], "group": "+0000dead0000dead"})
    assert expired["error"]["code"] == "NOT_FOUND" and "INVITE_HASH_INVALID" in expired["error"]["message"]
    members = await r.ok(T.GetGroupMembers, {"accountId": acc["id"], "group": "@pylobby", "limit": 2})
    assert members["total"] == 3 and len(members["items"]) == 2 and members["nextCursor"] == "2"
    rest = await r.ok(T.GetGroupMembers, {"accountId": acc["id"], "group": "@pylobby", "cursor": "2"})
    assert len(rest["items"]) == 1 and rest["nextCursor"] is None
    # Someone joins a group our account is in: member-joined, once automation watches the group
    # (a join in a group nobody watches is not published).
    outsider = tg_world.add_user("+15550100099", first_name="Outsider")
    tg_world.join_channel(outsider, lobby)
    await until(lambda: r.svc.metrics.unwatched.labels("join")._value.get() >= 1)
    await monitored(r, chat_ids=[int(f"-100{lobby.id}")])
    newbie = tg_world.add_user("+15550100007", first_name="Newbie")
    tg_world.join_channel(newbie, lobby)
    ev = await events.wait("member-joined", lambda d: d["user"]["userId"] == newbie.id)
    assert not [e for e in events.named("member-joined") if e["user"]["userId"] == outsider.id]
    assert ev["chatId"] == int(f"-100{lobby.id}")
    left = await r.ok(T.LeaveGroup, {"accountId": acc["id"], "group": "@pylobby"})
    assert left["wasMember"] is True
    created = await r.ok(
        T.CreateGroup,
        {"accountId": acc["id"], "title": "Our Group", "about": "ours", "members": ["@friend_f"]},
    )
    assert created["chat"]["kind"] == "supergroup" and created["invited"] == [friend.id]
    assert created["inviteLink"].startswith("https://t.me/+")
    listed = await r.ok(T.GetCreatedGroups, {"accountId": acc["id"]})
    assert listed["total"] == 1 and listed["items"][0]["chat"]["title"] == "Our Group"
    assert any(ch.title == "Our Group" and friend.id in ch.participants for ch in tg_world.channels.values())


async def test_extract_1000_members_with_filters_progress_and_export(replicas, tg_world, events):
    tg_world.add_user(PHONE, first_name="Ann")
    owner = tg_world.add_user("+15550100009", first_name="Owner")
    big = tg_world.create_channel(owner, "Big Group", username="biggroup")
    generate_members(tg_world, big, 1000)
    banned_name = tg_world.add_user("+15550100006", first_name="Gone")
    tg_world.invite_to_channel(owner, big, [banned_name])
    banned_name.deleted = True  # deleted accounts are filtered out by default
    r = await replicas(extraction_page_size=200)
    acc = await logged_in(r, tg_world)
    await r.ok(T.JoinGroup, {"accountId": acc["id"], "group": "@biggroup"})
    job = await r.ok(T.ExtractMembers, {"accountId": acc["id"], "group": "@biggroup"})
    assert job["state"] == "queued"
    done = await events.wait("extraction-finished", lambda d: d["jobId"] == job["jobId"], timeout=60)
    assert done["state"] == "completed"
    progress = [e for e in events.named("extraction-progress") if e["jobId"] == job["jobId"]]
    assert len(progress) >= 5 and progress[-1]["progress"] == 1.0
    assert [p["scanned"] for p in progress] == sorted(p["scanned"] for p in progress)
    status = (await r.ok(T.GetExtractionStatus, {"jobId": job["jobId"]}))["items"][0]
    # 1,000 generated + owner + our account + a deleted user = 1,003 scanned; the deleted user and our
    # own account (a fleet account: not a member to reach, its phone must not leave in the export)
    # are dropped.
    assert status["scanned"] == 1003 and status["collected"] == 1001 and status["skipped"] == 2
    page = await r.ok(T.GetCollectedUsers, {"jobId": job["jobId"], "limit": 500})
    assert page["total"] == 1001 and len(page["items"]) == 500 and page["nextCursor"]
    rest = await r.ok(
        T.GetCollectedUsers, {"jobId": job["jobId"], "limit": 500, "cursor": page["nextCursor"]}
    )
    assert len(rest["items"]) == 500 and rest["nextCursor"]  # a keyset cursor: the next page after the last
    last = await r.ok(
        T.GetCollectedUsers, {"jobId": job["jobId"], "limit": 500, "cursor": rest["nextCursor"]}
    )
    assert len(last["items"]) == 1 and last["nextCursor"] is None
    pages = page["items"] + rest["items"] + last["items"]
    assert len({u["id"] for u in pages}) == 1001
    exported = await r.ok(T.ExportCollectedUsers, {"jobId": job["jobId"], "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(exported["contentBase64"]).decode("utf-8-sig"))))
    assert exported["rows"] == len(rows) == 1001 and {"user_id", "first_name"} <= set(rows[0])
    ours = tg_world.user_by_phone(PHONE)
    assert str(ours.id) not in {row["user_id"] for row in rows}
    xlsx = await r.ok(
        T.ExportCollectedUsers, {"jobId": job["jobId"], "format": "xlsx", "columns": ["user_id"]}
    )
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(base64.b64decode(xlsx["contentBase64"])))
    assert wb.active.max_row == 1002  # header + 1,001
    # A second run skips users collected before; asked to include the fleet, it finds only our account.
    again = await r.ok(
        T.ExtractMembers,
        {"accountId": acc["id"], "group": "@biggroup", "limit": 10, "filters": {"includeFleet": True}},
    )
    fin = await events.wait("extraction-finished", lambda d: d["jobId"] == again["jobId"], timeout=60)
    assert fin["collected"] == 1
    found = await r.ok(T.GetCollectedUsers, {"jobId": again["jobId"]})
    assert [u["userId"] for u in found["items"]] == [ours.id]


async def test_extraction_resumes_on_another_replica_and_can_be_cancelled(replicas, tg_world, events):
    tg_world.add_user(PHONE, first_name="Ann")
    owner = tg_world.add_user("+15550100009", first_name="Owner")
    big = tg_world.create_channel(owner, "Big Group", username="biggroup")
    generate_members(tg_world, big, 600)
    r1 = await replicas("r1", extraction_page_size=100, extraction_page_delay_seconds=0.3)
    acc = await logged_in(r1, tg_world)
    await r1.ok(T.JoinGroup, {"accountId": acc["id"], "group": "@biggroup"})
    job = await r1.ok(
        T.ExtractMembers, {"accountId": acc["id"], "group": "@biggroup", "filters": {"excludeBots": False}}
    )
    await events.wait("extraction-progress", lambda d: d["jobId"] == job["jobId"] and d["scanned"] >= 200)
    await r1.rt.stop()  # the replica goes away mid-job
    r2 = await replicas("r2", extraction_page_size=100, extraction_page_delay_seconds=0.0)
    done = await events.wait("extraction-finished", lambda d: d["jobId"] == job["jobId"], timeout=60)
    # 600 + the owner + our own account scanned; our account (a fleet account) is not collected
    assert done["state"] == "completed" and done["collected"] == 601 and done["scanned"] == 602
    assert await r2.svc.repos.collected.count({"job_id": job["jobId"]}) == 601
    slow = await r2.ok(
        T.ExtractMembers,
        {"accountId": acc["id"], "group": "@biggroup", "filters": {"skipAlreadyCollected": False}},
    )
    cancelled = await r2.ok(T.CancelExtraction, {"jobId": slow["jobId"]})
    assert cancelled["state"] == "cancelled"
    again = await r2.call(T.CancelExtraction, {"jobId": slow["jobId"]})
    assert again["error"]["code"] == "CONFLICT"


async def test_get_created_groups_pages_by_keyset_newest_first(replicas):
    """Seven created groups, ties on created_at, three a page: each once, newest first, ties by id."""
    r = await replicas()
    rows = [
        {
            "_id": f"cg_{i}",
            "account_id": "acc_1",
            "kind": "supergroup",
            "chat": {"chat_id": -1000 - i, "kind": "supergroup", "title": f"Group {i}"},
            "created_at": t,
        }
        for i, t in zip([4, 1, 6, 0, 3, 5, 2], TIMES, strict=True)
    ]
    await r.db["created_groups"].insert_many([dict(d) for d in rows])
    expected = in_order(rows, lambda d: d["created_at"], desc=True)
    assert await read_all(r, T.GetCreatedGroups, {}, "id") == expected
    assert (
        await read_all(r, T.GetCreatedGroups, {"accountId": "acc_1", "kind": "supergroup"}, "id") == expected
    )
    await refuses_bad_cursors(r, T.GetCreatedGroups, {})


async def test_get_collected_users_pages_by_keyset_in_any_sort(replicas):
    """Seven collected users, read three a page in each sort and order: each once, in (sort field,
    id) order, rows without the field (no username, never seen online: missing or null) lowest; a
    cursor of another sort or order, or one it did not give out, is a VALIDATION_ERROR."""
    r = await replicas()
    names = ["bo", None, "al", "bo", "MISSING", "cy", None]
    online = [BASE, "MISSING", None, BASE, TIMES[3], "MISSING", TIMES[6]]
    rows = []
    for n, (i, t) in enumerate(zip([4, 1, 6, 0, 3, 5, 2], TIMES, strict=True)):
        d = {"_id": f"job_1:{100 + i}", "user_id": 100 + i, "source_chat_id": -1001, "job_id": "job_1"}
        d["collected_at"] = t
        if names[n] != "MISSING":
            d["username"] = names[n]
        if online[n] != "MISSING":
            d["last_online_at"] = online[n]
        rows.append(d)
    await r.db["collected_users"].insert_many([dict(d) for d in rows])
    for sort in ("collected_at", "username", "last_online_at"):
        for order in ("desc", "asc"):
            expected = in_order(rows, lambda d, f=sort: d.get(f), desc=order == "desc")
            got = await read_all(r, T.GetCollectedUsers, {"sort": sort, "order": order}, "id")
            assert got == expected, (sort, order)
    jobs = await read_all(r, T.GetCollectedUsers, {"jobId": "job_1", "order": "asc"}, "id", limit=2)
    assert jobs == in_order(rows, lambda d: d["collected_at"], desc=False)
    await refuses_bad_cursors(r, T.GetCollectedUsers, {})
    first = await r.ok(T.GetCollectedUsers, {"sort": "username", "limit": 3})
    for other in ({"sort": "collected_at"}, {"sort": "username", "order": "asc"}):
        reply = await r.call(T.GetCollectedUsers, {**other, "cursor": first["nextCursor"]})
        assert reply["error"]["code"] == "VALIDATION_ERROR", (other, reply)
