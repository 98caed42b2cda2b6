"""Catch-up of missed updates on the real thing (emulator, nats-server, database): what arrives while
no replica holds the account (private messages, a watched supergroup, a basic group) is fetched at
the next connect, once; and after differenceTooLong the recent history stands in for it."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import nats
import pytest
from tgm_contracts.commands import accounts as A

from .conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RECEIVED = "tgm.tg-session.evt.message-received.v1"


async def received(url: str, tag: str) -> list[dict[str, Any]]:
    """Every stored message-received whose text carries `tag` (the stream is shared by tests)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(RECEIVED, stream="TGM_EVENTS")
        got: list[dict[str, Any]] = []
        while True:
            try:
                batch = await sub.fetch(200, timeout=1)
            except nats.errors.TimeoutError:
                break
            for m in batch:
                d = json.loads(m.data)
                if tag in d.get("text", ""):
                    got.append(d)
                await m.ack()
        return got
    finally:
        await nc.close()


async def _login(r: Any, tg_world: Any, phone: str) -> str:
    acc = await r.ok(A.AddAccount, {"phone": phone})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(phone)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    return str(acc["id"])


async def test_missed_while_down_arrive_once_at_the_next_connect(
    replicas: Any, tg_world: Any, nats_server: Any, monitored: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    r = await replicas("r1")
    me = tg_world.add_user("+15550100401", first_name="Listener")
    bob = tg_world.add_user("+15550100402", first_name="Bob")
    owner = tg_world.add_user("+15550100403", first_name="Owner")
    room = tg_world.create_channel(owner, "Room", username="catchuproom")
    tg_world.invite_to_channel(owner, room, [me, bob])
    basic, _, _ = tg_world.create_chat(owner, "Basic", [me, bob])
    room_id, basic_id = int(f"-100{room.id}"), -basic.id
    account_id = await _login(r, tg_world, "+15550100401")
    await monitored(r, chat_ids=[room_id, basic_id])
    states = r.db["update_states"]
    await until(lambda: _has_state(states, account_id))

    tg_world.post(bob, me, f"live {tag}")
    tg_world.post(bob, room, f"live room {tag}")
    await until(lambda: _count(nats_server.url, tag, 2), timeout=60)  # live: slow only under load
    # the sweep after live messages stores the state they reached
    await until(lambda: _state_at(states, account_id, me.pts), timeout=10)

    await r.rt.stop()
    missed = [f"offline {i} {tag}" for i in range(3)] + [f"please STOP {tag}"]
    for text in missed:
        tg_world.post(bob, me, text)
    tg_world.post(bob, room, f"offline room {tag}")
    tg_world.post(bob, basic, f"offline basic {tag}")

    r2 = await replicas("r1")
    expected = {f"live {tag}", f"live room {tag}", *missed, f"offline room {tag}", f"offline basic {tag}"}
    await until(lambda: _count(nats_server.url, tag, len(expected)), timeout=30)
    got = await received(nats_server.url, tag)
    texts = Counter(d["text"] for d in got)
    assert set(texts) == expected and all(n == 1 for n in texts.values()), texts
    by_text = {d["text"]: d for d in got}
    assert by_text[f"offline room {tag}"]["chatId"] == room_id
    assert by_text[f"offline basic {tag}"]["chatId"] == basic_id
    assert by_text[f"please STOP {tag}"]["chatKind"] == "private"
    assert len({d["eventId"] for d in got}) == len(got)
    assert r2.svc.pool.catch_up is not None and r2.svc.pool.catch_up.runs.get("ok", 0) >= 1
    states = r2.db["update_states"]
    await until(lambda: _state_at(states, account_id, me.pts), timeout=10)
    doc = await states.find_one({"_id": account_id})
    assert doc["pts"] == me.pts and doc["channels"][str(room.id)] == room.pts

    # differenceTooLong: the recent history of the active dialogs stands in for the difference
    await r2.rt.stop()
    default_gap = tg_world.difference_too_long
    tg_world.difference_too_long = 2
    try:
        long_gap = [f"long gap {i} {tag}" for i in range(4)]
        for text in long_gap:
            tg_world.post(bob, me, text)
        r3 = await replicas("r1")
        await until(lambda: _count(nats_server.url, tag, len(expected) + 4), timeout=30)
        texts = Counter(d["text"] for d in await received(nats_server.url, tag))
        assert set(texts) == expected | set(long_gap) and all(n == 1 for n in texts.values()), texts
        assert r3.svc.pool.catch_up is not None and r3.svc.pool.catch_up.runs.get("too_long") == 1
        await until(lambda: _state_at(r3.db["update_states"], account_id, me.pts), timeout=10)
    finally:  # the emulator's world is shared by the session's tests: leave it as it was
        tg_world.difference_too_long = default_gap


async def _has_state(states: Any, account_id: str) -> bool:
    return await states.find_one({"_id": account_id}) is not None


async def _state_at(states: Any, account_id: str, pts: int) -> bool:
    doc = await states.find_one({"_id": account_id})
    return doc is not None and doc.get("pts") == pts


async def _count(url: str, tag: str, n: int) -> bool:
    return len(await received(url, tag)) >= n
