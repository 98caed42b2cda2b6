"""Peers an account saw are remembered across connections (`fleet/peers.py`), on the emulator:
an account sees a user's message in a group, tg-session restarts (a new runtime, a new Telethon
connection with an empty entity cache), and a send to that user's bare id still goes out; without
the remembered rows the same send is the NOT_FOUND it was before; an account that never saw the
user still gets that clean NOT_FOUND; removing an account deletes its rows."""

from __future__ import annotations

from typing import Any

import pytest
from tgm_contracts.commands import accounts as A
from tgm_contracts.rpc_session import Send

from .conftest import until
from .test_groups_extraction import logged_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

LISTENER = "+15550600001"
STRANGER = "+15550600002"


async def send(r: Any, account_id: str, job: str, peer: int | str, text: str) -> dict[str, Any]:
    return await r.request(Send.subject(account_id), {"jobId": job, "peer": peer, "text": text})


async def connected(r: Any, account_id: str) -> None:
    await until(lambda: (live := r.svc.pool.get(account_id)) is not None and live.connected, timeout=20)


async def test_a_user_seen_in_a_group_is_reachable_by_id_after_a_restart(
    replicas: Any, tg_world: Any, mongo_server: Any, monitored: Any, events: Any
) -> None:
    listener = tg_world.add_user(LISTENER, first_name="Lena")
    tg_world.add_user(STRANGER, first_name="Sam")
    owner = tg_world.add_user("+15550600009", first_name="Owner")
    carol = tg_world.add_user("+15550600003", first_name="Carol", username="Carol_C")
    room = tg_world.create_channel(owner, "Peers Room", username="peersroom")
    tg_world.invite_to_channel(owner, room, [listener, carol])

    r1 = await replicas("r1")
    lena = (await logged_in(r1, tg_world, LISTENER))["id"]
    sam = (await logged_in(r1, tg_world, STRANGER))["id"]
    peers = r1.db["peers"]
    await monitored(r1, chat_ids=[int(f"-100{room.id}")])
    tg_world.post(carol, room, "anyone selling a used bike?")
    # Someone writes after her, so the group's top message (what a new connection reads in its
    # dialogs) is not hers: as in any busy group.
    tg_world.post(owner, room, "welcome, everyone")
    await events.wait("message-received", lambda d: d.get("text") == "welcome, everyone")

    async def row_of(account_id: str, peer_id: int) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await peers.find_one({"account_id": account_id, "peer_id": peer_id})
        return doc

    async def carol_saved() -> bool:
        return await row_of(lena, carol.id) is not None

    await until(carol_saved, timeout=15)  # flushed within a second or so of the message
    row = await row_of(lena, carol.id)
    assert row is not None
    assert row["_id"] == f"{lena}:{carol.id}" and row["access_hash"] == carol.access_hash
    assert row["username"] == "carol_c" and row["name"] == "Carol" and row["seen_at"] is not None
    assert await row_of(lena, int(f"-100{room.id}")) is not None  # the group itself too
    assert await row_of(sam, carol.id) is None  # per account: Sam never saw her
    indexes = await peers.index_information()
    ttl = [i for i in indexes.values() if i.get("expireAfterSeconds")]
    assert ttl and ttl[0]["key"] == [("seen_at", 1)] and ttl[0]["expireAfterSeconds"] == 90 * 86400

    # The catch-up state is stored past both messages, so the next connection does not fetch them
    # again (that would teach it her hash by chance).
    live = r1.svc.pool.get(lena)
    assert live is not None and live.client is not None and r1.svc.pool.catch_up is not None
    await r1.svc.pool.catch_up.run(lena, live.client)

    # Without the remembered rows a new connection cannot address her (the bug this fixes): the
    # dialogs it reads as a fallback hold the group, not its members.
    await r1.rt.stop()  # its last flush is done; the runtime's database handle is closed now
    direct = mongo_server.client()
    stored = direct[r1.db.name]["peers"]
    saved = list(stored.find({"account_id": lena}))
    stored.delete_many({"account_id": lena})
    r2 = await replicas("r1")
    await connected(r2, lena)
    reply = await send(r2, lena, "peer-before", carol.id, "hello Carol")
    assert reply["ok"] is False and reply["error"]["code"] == "NOT_FOUND", reply

    # With them (a restart: a new runtime and a new Telethon connection), the bare id works.
    await r2.rt.stop()
    stored.delete_many({"account_id": lena})
    stored.insert_many(saved)
    direct.close()
    r3 = await replicas("r1")
    peers = r3.db["peers"]
    await connected(r3, lena)
    await connected(r3, sam)
    reply = await send(r3, lena, "peer-after", carol.id, "hi Carol, I have a bike")
    assert reply["ok"] is True and reply["data"]["peerId"] == carol.id, reply
    assert [d.text for d in tg_world.deliveries if d.to_user_id == carol.id] == ["hi Carol, I have a bike"]
    assert r3.svc.pool.peers is not None and r3.svc.pool.peers.counts["loaded"] >= len(saved)
    # Another account that never saw her: the clean lookup failure it gets today.
    reply = await send(r3, sam, "peer-stranger", carol.id, "hello from nowhere")
    assert reply["ok"] is False and reply["error"]["code"] == "NOT_FOUND", reply
    assert not [d for d in tg_world.deliveries if d.text == "hello from nowhere"]

    # Removing an account deletes its rows (and only its).
    assert await peers.count_documents({"account_id": sam}) > 0  # its own connection's peers
    await r3.ok(A.RemoveAccount, {"confirm": True, "accountId": lena, "logout": False})
    assert await peers.count_documents({"account_id": lena}) == 0
    await r3.svc.pool.peers.flush()  # nothing of the removed account comes back
    assert await peers.count_documents({"account_id": lena}) == 0
    assert await peers.count_documents({"account_id": sam}) > 0
