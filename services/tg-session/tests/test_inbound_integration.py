"""Inbound automation side on the real thing: a tg-session replica on a private nats-server (so the
test may stop and restart it), the emulator and the database. Group messages are published only of
the chats the KV value names; messages that arrive while NATS is down are kept and reach the stream
exactly once when it is back; the KV watch comes back by itself after the restart."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import nats
import pytest
from tgm_contracts.commands import accounts as A

from .conftest import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PHONE = "+15550100301"
RECEIVED = "tgm.tg-session.evt.message-received.v1"


async def stream_texts(url: str) -> list[tuple[int, str]]:
    """(chat id, text) of every message-received stored in TGM_EVENTS, once per stored message."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(RECEIVED, stream="TGM_EVENTS")
        got: list[tuple[int, str]] = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                break
            for m in batch:
                d = json.loads(m.data)
                got.append((d["chatId"], d["text"]))
                await m.ack()
        return got
    finally:
        await nc.close()


async def test_watched_groups_only_and_nothing_lost_across_a_nats_restart(
    replicas: Any, tg_world: Any, make_nats_server: Any, monitored: Any
) -> None:
    srv = make_nats_server()
    r = await replicas("r1", nats_url=srv.url)
    me = tg_world.add_user(PHONE, first_name="Listener")
    bob = tg_world.add_user("+15550100302", first_name="Bob")
    owner = tg_world.add_user("+15550100303", first_name="Owner")
    watched_ch = tg_world.create_channel(owner, "Watched", username="watchedgrp")
    quiet_ch = tg_world.create_channel(owner, "Quiet", username="quietgrp")
    for ch in (watched_ch, quiet_ch):
        tg_world.invite_to_channel(owner, ch, [me, bob])
    watched, quiet = int(f"-100{watched_ch.id}"), int(f"-100{quiet_ch.id}")
    acc = await r.ok(A.AddAccount, {"phone": PHONE})
    await r.ok(A.LoginAccount, {"accountId": acc["id"]})
    await r.ok(A.VerifyCode, {"accountId": acc["id"], "phoneCode": tg_world.last_code(PHONE)})
    await until(lambda: r.svc.pool.get(acc["id"]) is not None and r.svc.pool.get(acc["id"]).connected)
    assert r.svc.inbound.watched.known and not r.svc.inbound.watched.active  # no key yet

    await monitored(r, chat_ids=[watched])
    unwatched = r.svc.metrics.unwatched.labels("message")
    tg_world.post(bob, quiet_ch, "quiet 1")
    tg_world.post(bob, watched_ch, "watched 1")
    tg_world.post(bob, me, "private 1")
    await until(lambda: unwatched._value.get() >= 1)

    async def texts() -> set[str]:
        return {t for _, t in await stream_texts(srv.url)}

    await until(lambda: _has(texts, {"watched 1", "private 1"}), timeout=20)

    # NATS goes away: what arrives meanwhile is kept (database), in order
    srv.stop()
    await until(lambda: not r.rt.nc.is_connected)
    for i in range(3):
        tg_world.post(bob, me, f"offline private {i}")
    tg_world.post(bob, watched_ch, "offline watched")
    tg_world.post(bob, quiet_ch, "offline quiet")
    await until(lambda: r.svc.inbound.outbox.depth == 4, timeout=40)
    assert await r.db["inbound_outbox"].count_documents({}) == 4

    # NATS is back: re-published, each stored once however many publishes reached the server
    srv.start()
    await until(lambda: r.svc.inbound.outbox.depth == 0, timeout=40)
    assert r.svc.metrics.outbox_republished._value.get() >= 4
    stored = Counter(t for _, t in await stream_texts(srv.url))
    expected = {"watched 1", "private 1", "offline watched", *(f"offline private {i}" for i in range(3))}
    assert set(stored) == expected, stored
    assert all(n == 1 for n in stored.values()), stored

    # the KV watch came back with NATS: watching the quiet group by username applies live
    await monitored(r, chat_ids=[watched], usernames=["QuietGrp"])
    tg_world.post(bob, quiet_ch, "quiet 2")
    await until(lambda: _has(texts, {"quiet 2"}), timeout=20)
    assert r.svc.inbound.watched.chat(quiet)  # learnt by id from the message


async def _has(texts: Any, wanted: set[str]) -> bool:
    return wanted <= await texts()
