"""Which accounts are in which chat (`accounts/membership.py`): pick-accounts `memberOfChatId` answers
the members known from joins, creations, leaves and inbound group messages, on the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts.commands import accounts as A
from tgm_contracts.commands import telegram_ops as T
from tgm_contracts.rpc_session import PickAccounts

from .conftest import until
from .test_groups_extraction import logged_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ANN, BOB = "+15550200001", "+15550200002"


async def picked(r: Any, chat_id: int | None = None) -> set[str]:
    payload: dict[str, Any] = {"count": 10}
    if chat_id is not None:
        payload["memberOfChatId"] = chat_id
    reply = await r.request(PickAccounts.SUBJECT, payload)
    assert reply["ok"], reply
    return {a["id"] for a in reply["data"]["accounts"]}


async def test_join_create_and_leave_decide_who_is_picked_for_a_chat(replicas, tg_world):
    tg_world.add_user(ANN, first_name="Ann")
    bob_user = tg_world.add_user(BOB, first_name="Bob")
    owner = tg_world.add_user("+15550200009", first_name="Owner")
    lobby = tg_world.create_channel(owner, "Member Lobby", username="memberlobby")
    secret = tg_world.create_channel(owner, "Member Secret")
    invite = tg_world.export_invite(secret)
    lobby_id, secret_id = int(f"-100{lobby.id}"), int(f"-100{secret.id}")
    r = await replicas()
    ann, bob = await logged_in(r, tg_world, ANN), await logged_in(r, tg_world, BOB)
    assert await picked(r) == {ann["id"], bob["id"]}
    assert await picked(r, lobby_id) == set()  # nobody is known to be in it yet

    await r.ok(T.JoinGroup, {"accountId": ann["id"], "group": "@memberlobby"})
    assert await picked(r, lobby_id) == {ann["id"]}  # and not Bob, who did not join
    # Bob was made a member behind tg-session's back; join-group answers alreadyMember: recorded too.
    tg_world.join_channel(bob_user, secret, via_invite=True)
    again = await r.ok(T.JoinGroup, {"accountId": bob["id"], "group": f"https://t.me/+{invite}"})
    assert again["alreadyMember"] is True and again["chat"]["chatId"] == secret_id
    assert await picked(r, secret_id) == {bob["id"]} and await picked(r, lobby_id) == {ann["id"]}
    # Other filters still apply on top of the chat.
    reply = await r.request(PickAccounts.SUBJECT, {"memberOfChatId": lobby_id, "exclude": [ann["id"]]})
    assert reply["data"]["accounts"] == [] and reply["data"]["available"] == 0

    left = await r.ok(T.LeaveGroup, {"accountId": ann["id"], "group": "@memberlobby"})
    assert left["wasMember"] is True
    assert await picked(r, lobby_id) == set()
    assert await picked(r, secret_id) == {bob["id"]}

    made = await r.ok(T.CreateGroup, {"accountId": ann["id"], "title": "Ann's Own"})
    assert await picked(r, made["chat"]["chatId"]) == {ann["id"]}

    # A chat id no 64-bit integer holds is a clear error, not a crash.
    bad = await r.request(PickAccounts.SUBJECT, {"memberOfChatId": 2**70})
    assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR", bad

    # Deleting an account deletes its memberships (they are part of its document).
    await r.ok(A.RemoveAccount, {"confirm": True, "accountId": bob["id"]})
    assert await r.db["accounts"].count_documents({"member_chats": secret_id}) == 0
    assert await picked(r, secret_id) == set()


async def test_an_inbound_group_message_teaches_membership_once(replicas, tg_world, monitored, events):
    tg_world.add_user(ANN, first_name="Ann")
    bob_user = tg_world.add_user(BOB, first_name="Bob")
    owner = tg_world.add_user("+15550200019", first_name="Owner")
    quiet = tg_world.create_channel(owner, "Quiet Room", username="quietroom")
    loud = tg_world.create_channel(owner, "Loud Room", username="loudroom")
    quiet_id, loud_id = int(f"-100{quiet.id}"), int(f"-100{loud.id}")
    r = await replicas()
    ann, bob = await logged_in(r, tg_world, ANN), await logged_in(r, tg_world, BOB)
    memberships = r.svc.accounts.memberships
    assert await picked(r, quiet_id) == set() and await picked(r, loud_id) == set()
    # Bob is in both rooms without tg-session being told (no join-group): only traffic can teach it
    # (the join's own service message is traffic too, and may teach it before the posts below).
    for room in (quiet, loud):
        tg_world.join_channel(bob_user, room)
    await monitored(r, chat_ids=[loud_id])  # one watched room, one not: both teach
    unwatched = r.svc.metrics.unwatched.labels("message")
    seen_unwatched = unwatched._value.get()
    for i in range(3):
        tg_world.post(owner, quiet, f"quiet {i}")
        tg_world.post(owner, loud, f"loud {i}")
    await until(lambda: unwatched._value.get() >= seen_unwatched + 3)
    await events.wait("message-received", lambda d: d["text"] == "loud 2")
    # The membership may be recorded after the message is published: wait for the two writes.
    await until(lambda: memberships.learnt >= 2)
    assert await picked(r, quiet_id) == {bob["id"]} and await picked(r, loud_id) == {bob["id"]}
    assert memberships.learnt == 2  # six messages, two (account, chat) pairs: two writes
    assert (bob["id"], quiet_id) in memberships.known and ann["id"] not in {a for a, _ in memberships.known}
    # More traffic costs no write; a leave forgets the pair, and the next message teaches it again.
    tg_world.post(owner, quiet, "quiet again")
    await until(lambda: unwatched._value.get() >= seen_unwatched + 4)
    assert memberships.learnt == 2
    await r.ok(T.LeaveGroup, {"accountId": bob["id"], "group": "@loudroom"})
    assert await picked(r, loud_id) == set() and (bob["id"], loud_id) not in memberships.known
    # Bob leaves the quiet room from another device: the chat action about himself removes it.
    assert await picked(r, quiet_id) == {bob["id"]}
    tg_world.leave_channel(bob_user, quiet)

    async def not_in_quiet() -> bool:
        return await picked(r, quiet_id) == set()

    await until(not_in_quiet)
    assert (bob["id"], quiet_id) not in memberships.known
    # Someone else leaving a room Bob is in changes nothing of Bob's.
    other = tg_world.add_user("+15550200018", first_name="Other")
    tg_world.join_channel(other, loud)
    await r.ok(T.JoinGroup, {"accountId": bob["id"], "group": "@loudroom"})
    tg_world.leave_channel(other, loud)
    tg_world.post(owner, loud, "after the other left")
    await events.wait("message-received", lambda d: d["text"] == "after the other left")
    assert await picked(r, loud_id) == {bob["id"]}


async def test_the_groups_in_the_dialogs_at_connect_are_known(replicas, tg_world):
    """An account that was in a group before it was onboarded is known there once it connects (its
    dialogs are read at every connect), before anyone writes in the group."""
    ann_user = tg_world.add_user(ANN, first_name="Ann")
    owner = tg_world.add_user("+15550200029", first_name="Owner")
    before = tg_world.create_channel(owner, "Before Room", members=[ann_user])
    other = tg_world.create_channel(owner, "Other Room")
    before_id, other_id = int(f"-100{before.id}"), int(f"-100{other.id}")
    r = await replicas()
    ann = await logged_in(r, tg_world, ANN)

    async def known() -> bool:
        return await picked(r, before_id) == {ann["id"]}

    await until(known)
    assert await picked(r, other_id) == set()
