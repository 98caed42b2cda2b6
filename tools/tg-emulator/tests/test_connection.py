"""Connection-level behaviour: dropped connections, dropped calls, latency, protocol details."""

from __future__ import annotations

import asyncio
import time

import pytest
from telethon import errors, functions
from tg_emulator.testing import Inbox, w

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_injected_disconnect_is_recovered(tg_emulator, tg_world, tg_client_factory):
    alice = tg_world.add_user("+15550300001", first_name="Alice")
    bob = tg_world.add_user("+15550300002", first_name="Bob", username="bob_conn")
    ca = await tg_client_factory(tg_emulator.session_for(alice))
    cb = await tg_client_factory(tg_emulator.session_for(bob))
    await w(ca.get_me())
    await w(cb.get_me())
    inbox = Inbox(cb, incoming=True)
    keys_before = len(tg_world.auth_keys)

    assert tg_world.hub.drop(user_id=bob.id) == 1
    # Telethon notices, reconnects with the same auth key, and keeps receiving updates.
    await _wait_until(lambda: tg_world.hub.user_online(bob.id))
    await w(ca.send_message("bob_conn", "after the drop"))
    await inbox.wait_for("after the drop")
    assert len(tg_world.auth_keys) == keys_before  # no new handshake was needed
    assert (await w(cb.get_me())).id == bob.id


async def test_dropped_call_is_resent_after_reconnect(tg_emulator, tg_world, tg_client_factory):
    alice = tg_world.add_user("+15550300001", first_name="Alice")
    client = await tg_client_factory(tg_emulator.session_for(alice))
    await w(client.get_me())
    tg_world.faults.drop_next("updates.getState")
    state = await w(client(functions.updates.GetStateRequest()), 10)
    assert state.pts == alice.pts
    assert tg_world.faults.fired[-1]["method"] == "updates.getState"


async def test_fail_next_n_calls_then_recover(tg_emulator, tg_world, tg_client_factory):
    alice = tg_world.add_user("+15550300001", first_name="Alice")
    client = await tg_client_factory(tg_emulator.session_for(alice))
    tg_world.faults.fail_next("users.getFullUser", "USER_ID_INVALID", count=2)
    me = await w(client.get_input_entity("me"))
    for _ in range(2):
        with pytest.raises(errors.UserIdInvalidError):
            await w(client(functions.users.GetFullUserRequest(me)))
    full = await w(client(functions.users.GetFullUserRequest(me)))
    assert full.full_user.id == alice.id


async def test_latency_is_added(tg_emulator, tg_world, tg_client_factory):
    alice = tg_world.add_user("+15550300001", first_name="Alice")
    client = await tg_client_factory(tg_emulator.session_for(alice))
    tg_world.faults.set_latency(0.3, "updates.getState")
    t0 = time.monotonic()
    await w(client(functions.updates.GetStateRequest()))
    assert time.monotonic() - t0 >= 0.3
    tg_world.faults.set_latency(0, "updates.getState")
    t0 = time.monotonic()
    await w(client(functions.updates.GetStateRequest()))
    assert time.monotonic() - t0 < 0.3


async def test_unknown_auth_key_is_reported_as_404(tg_emulator, tg_world, tg_client_factory):
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    alice = tg_world.add_user("+15550300001", first_name="Alice")
    session = StringSession(tg_emulator.session_for(alice))
    tg_world.auth_keys.clear()  # the server 'forgets' every key
    session.auth_key = AuthKey(session.auth_key.key)
    client = tg_emulator.client(session)
    try:
        # A bare -404 transport error: Telethon reports the forgotten key instead of guessing.
        with pytest.raises(errors.AuthKeyNotFound):
            await w(client.connect(), 10)
    finally:
        await w(client.disconnect())


async def test_many_requests_in_one_container(tg_emulator, tg_world, tg_client_factory):
    alice = tg_world.add_user("+15550300001", first_name="Alice")
    for i in range(5):
        tg_world.add_user(f"+1555031000{i}", first_name=f"U{i}", username=f"user_many_{i}")
    client = await tg_client_factory(tg_emulator.session_for(alice))
    # Concurrent requests go out batched in msg_containers; each gets its own rpc_result.
    results = await w(
        asyncio.gather(
            *(client(functions.contacts.ResolveUsernameRequest(f"user_many_{i}")) for i in range(5))
        )
    )
    assert [r.users[0].username for r in results] == [f"user_many_{i}" for i in range(5)]
    # A big answer (gzip_packed on the wire) still parses.
    big = await w(client(functions.contacts.SearchRequest(q="user_many", limit=50)))
    assert len(big.results) == 5
