"""A send Telegram refuses in a group (`fleet/send.py`), on the emulator: the RPC error carries
Telegram's name in `details.telegramError`, which campaign's `messaging/outcomes.py` classifies
(`USER_BANNED_IN_CHANNEL` / `CHANNEL_PRIVATE` fail a post `chat_write_forbidden` at once,
`SLOWMODE_WAIT_X` requeues it after the chat's wait). Both peer forms campaign uses (marked id,
@username), on a connection that never saw the group (an ad campaign's case: the account was banned
before it was added) and on one that posted there before."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts.rpc_session import Send

from .test_groups_extraction import logged_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ANN = "+15550300001"
PRIVATE = ("TELEGRAM_ERROR", "CHANNEL_PRIVATE")
BANNED = ("TELEGRAM_ERROR", "USER_BANNED_IN_CHANNEL")


async def send(r: Any, account_id: str, job: str, peer: int | str, text: str = "ad") -> dict[str, Any]:
    return await r.request(Send.subject(account_id), {"jobId": job, "peer": peer, "text": text})


def refusal(reply: dict[str, Any]) -> tuple[str, str | None]:
    assert reply["ok"] is False, reply
    return reply["error"]["code"], (reply["error"].get("details") or {}).get("telegramError")


def marked(ch: Any) -> int:
    return int(f"-100{ch.id}")


async def test_never_seen_group_that_banned_or_removed_the_account(replicas, tg_world, events):
    ann_user = tg_world.add_user(ANN, first_name="Ann")
    owner = tg_world.add_user("+15550300009", first_name="Owner")
    banned = tg_world.create_channel(owner, "Ban Room", username="banroom")
    removed = tg_world.create_channel(owner, "Gone Room", username="goneroom")
    fine = tg_world.create_channel(owner, "Fine Room", username="fineroom")
    for ch in (banned, removed, fine):
        tg_world.invite_to_channel(owner, ch, [ann_user])
    tg_world.ban_in_channel(ann_user, banned)
    tg_world.leave_channel(ann_user, removed)
    r = await replicas()
    acc = (await logged_in(r, tg_world, ANN))["id"]

    # By marked id the account cannot address the group (a connection learns a channel's access
    # hash only from the chats it is in; the fresh one reads its dialogs first): CHANNEL_PRIVATE, as
    # Telegram answers a non-member. By name Telegram says why. Then by id again, now known.
    for n in range(2):
        assert refusal(await send(r, acc, f"ban-{n}", marked(banned))) == PRIVATE
    assert refusal(await send(r, acc, "ban-name", "@banroom")) == BANNED
    assert refusal(await send(r, acc, "ban-2", marked(banned))) == BANNED
    for n, peer in enumerate((marked(removed), "@goneroom")):
        assert refusal(await send(r, acc, f"gone-{n}", peer)) == PRIVATE
    ev = await events.wait("message-send-failed", lambda d: d["jobId"] == "ban-0")
    assert ev["errorCode"] == "TELEGRAM_ERROR" and ev["telegramError"] == "CHANNEL_PRIVATE"
    # A group the account is in, by id, still works on the same connection; a user id nobody knows
    # is still a lookup failure (NOT_FOUND), not a chat refusal.
    ok = await send(r, acc, "fine-0", marked(fine), "fine post")
    assert ok["ok"] and ok["data"]["peerId"] == marked(fine), ok
    assert refusal(await send(r, acc, "nobody", 987_654_321))[0] == "NOT_FOUND"
    assert [d.text for d in tg_world.deliveries if d.from_user_id == ann_user.id] == ["fine post"]
    doc = await r.db["accounts"].find_one({"_id": acc})
    assert doc["state"] == "active" and not (doc.get("flood_waits") or {}).get("send")


async def test_known_group_banned_removed_and_slow_mode(replicas, tg_world):
    ann_user = tg_world.add_user(ANN, first_name="Ann")
    owner = tg_world.add_user("+15550300009", first_name="Owner")
    other = tg_world.add_user("+15550300002", first_name="Other", username="other_o")
    banned = tg_world.create_channel(owner, "Ban Room", username="banroom")
    removed = tg_world.create_channel(owner, "Gone Room", username="goneroom")
    slow = tg_world.create_channel(owner, "Slow Room", username="slowroom", slowmode_seconds=30)
    for ch in (banned, removed, slow):
        tg_world.invite_to_channel(owner, ch, [ann_user])
    r = await replicas()
    acc = (await logged_in(r, tg_world, ANN))["id"]
    for ch in (banned, removed, slow):  # the connection learns the groups
        ok = await send(r, acc, f"first-{ch.id}", marked(ch), "hello")
        assert ok["ok"], ok
    tg_world.ban_in_channel(ann_user, banned)
    tg_world.leave_channel(ann_user, removed)

    for n, peer in enumerate((marked(banned), "@banroom")):
        assert refusal(await send(r, acc, f"ban-{n}", peer)) == BANNED
    for n, peer in enumerate((marked(removed), "@goneroom")):
        assert refusal(await send(r, acc, f"gone-{n}", peer)) == PRIVATE

    # Slow mode: Telegram's wait in the name and in retry_after, and it is the chat's wait, not the
    # account's: nothing recorded against the account, which still sends elsewhere at once.
    reply = await send(r, acc, "slow-1", marked(slow))
    code, tg = refusal(reply)
    assert code == "TELEGRAM_ERROR" and tg is not None and tg.startswith("SLOWMODE_WAIT_"), reply
    wait = int(tg.rsplit("_", 1)[1])
    assert 1 <= wait <= 30 and reply["error"]["retry_after"] == wait
    elsewhere = await send(r, acc, "after-slow", "@other_o", "still here")
    assert elsewhere["ok"], elsewhere
    assert [d.text for d in tg_world.deliveries if d.to_user_id == other.id] == ["still here"]
    doc = await r.db["accounts"].find_one({"_id": acc})
    assert doc["state"] == "active" and not (doc.get("flood_waits") or {}).get("send")
    assert not [d for d in tg_world.deliveries if d.text == "ad"]
