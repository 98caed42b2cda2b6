"""Messages, groups and channels through the real Telethon."""

from __future__ import annotations

import pytest
from telethon import errors, functions, types
from tg_emulator.limits import RateLimit
from tg_emulator.testing import Inbox, w
from tg_emulator.world.seed import generate_members

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def people(tg_world):
    alice = tg_world.add_user("+15550200001", first_name="Alice", username="alice_w")
    bob = tg_world.add_user("+15550200002", first_name="Bob", username="bob_w")
    carol = tg_world.add_user("+15550200003", first_name="Carol", username="carol_w")
    return alice, bob, carol


async def connect(tg_emulator, factory, user):
    client = await factory(tg_emulator.session_for(user))
    await w(client.get_me())  # a high-level call, so the server starts pushing updates
    return client


async def test_resolve_username(tg_emulator, tg_client_factory, people):
    alice, bob, _ = people
    client = await connect(tg_emulator, tg_client_factory, alice)
    entity = await w(client.get_entity("bob_w"))
    assert isinstance(entity, types.User) and entity.id == bob.id and entity.access_hash == bob.access_hash
    with pytest.raises(errors.UsernameNotOccupiedError):
        await w(client(functions.contacts.ResolveUsernameRequest("nobody_here")))
    with pytest.raises(errors.UsernameInvalidError):
        await w(client(functions.contacts.ResolveUsernameRequest("x")))


async def test_two_clients_exchange_private_messages(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _ = people
    ca = await connect(tg_emulator, tg_client_factory, alice)
    cb = await connect(tg_emulator, tg_client_factory, bob)
    inbox_a, inbox_b = Inbox(ca, incoming=True), Inbox(cb, incoming=True)

    sent = await w(ca.send_message("bob_w", "hi Bob"))
    ev = await inbox_b.wait_for("hi Bob")
    assert ev.sender_id == alice.id and ev.is_private and not ev.out

    await w(ev.reply("hi Alice"))
    ev2 = await inbox_a.wait_for("hi Alice")
    assert ev2.sender_id == bob.id
    assert ev2.message.reply_to_msg_id == sent.id  # reply ids are translated between message boxes

    log = tg_world.deliveries
    assert [(d.from_user_id, d.to_user_id, d.text) for d in log] == [
        (alice.id, bob.id, "hi Bob"),
        (bob.id, alice.id, "hi Alice"),
    ]
    assert all(d.random_id is not None for d in log)
    history = await w(cb.get_messages(alice.id, limit=10))
    assert [m.text for m in history] == ["hi Alice", "hi Bob"]


async def test_messages_received_while_offline_arrive_by_difference(
    tg_emulator, tg_world, tg_client_factory, people
):
    alice, bob, _ = people
    session = tg_emulator.session_for(bob)
    cb = await tg_client_factory(session)
    await w(cb.get_me())
    state = await w(cb(functions.updates.GetStateRequest()))
    tg_world.post(alice, bob, "while you were away")
    diff = await w(cb(functions.updates.GetDifferenceRequest(pts=state.pts, date=state.date, qts=0)))
    assert [m.message for m in diff.new_messages] == ["while you were away"]
    assert diff.state.pts == state.pts + 1
    empty = await w(cb(functions.updates.GetDifferenceRequest(pts=diff.state.pts, date=state.date, qts=0)))
    assert isinstance(empty, types.updates.DifferenceEmpty)


async def test_dialogs_and_read_history(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, carol = people
    tg_world.post(bob, alice, "one")
    tg_world.post(carol, alice, "two")
    tg_world.post(bob, alice, "three")
    ca = await connect(tg_emulator, tg_client_factory, alice)
    dialogs = await w(ca.get_dialogs())
    assert [d.entity.id for d in dialogs] == [bob.id, carol.id]
    assert [d.unread_count for d in dialogs] == [2, 1]
    await w(ca.send_read_acknowledge(bob.id))
    dialogs = await w(ca.get_dialogs())
    assert dialogs[0].unread_count == 0
    # Bob's box now shows his messages as read.
    assert bob.dialogs[("user", alice.id)].read_outbox_max_id == bob.history[("user", alice.id)][-1]


async def test_random_id_dedupe_and_duplicate_detection(tg_emulator, tg_world, tg_client_factory, people):
    alice, _bob, _ = people
    ca = await connect(tg_emulator, tg_client_factory, alice)
    peer = await w(ca.get_input_entity("bob_w"))
    req = functions.messages.SendMessageRequest(peer=peer, message="once", random_id=424242)
    await w(ca(req))
    # RANDOM_ID_DUPLICATE is a 500 on Telegram, so Telethon retries it and then gives up.
    with pytest.raises(ValueError, match="unsuccessful"):
        await w(ca(functions.messages.SendMessageRequest(peer=peer, message="once", random_id=424242)), 15)
    assert len(tg_world.deliveries) == 1
    assert tg_world.duplicate_attempts[0]["random_id"] == 424242
    await w(ca.send_message(peer, "once"))  # same text, new random_id: an application-level duplicate
    groups = tg_world.find_duplicates(by="text")
    assert len(groups) == 1 and [d["text"] for d in groups[0]] == ["once", "once"]
    assert tg_world.find_duplicates(by="random_id") == []


async def test_create_megagroup_and_chat(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _ = people
    ca = await connect(tg_emulator, tg_client_factory, alice)
    cb = await connect(tg_emulator, tg_client_factory, bob)
    result = await w(
        ca(functions.channels.CreateChannelRequest(title="Team", about="our team", megagroup=True))
    )
    channel = result.chats[0]
    assert isinstance(channel, types.Channel) and channel.megagroup and channel.creator
    ch = tg_world.channels[channel.id]
    assert ch.megagroup and list(ch.participants) == [alice.id]
    await w(ca(functions.channels.InviteToChannelRequest(channel, [await ca.get_input_entity("bob_w")])))
    assert bob.id in ch.participants
    inbox_b = Inbox(cb, incoming=True)
    await w(ca.send_message(channel, "welcome to the team"))
    ev = await inbox_b.wait_for("welcome to the team")
    assert ev.chat_id == -1000000000000 - channel.id and ev.sender_id == alice.id
    full = await w(ca(functions.channels.GetFullChannelRequest(channel)))
    assert full.full_chat.participants_count == 2 and full.full_chat.about == "our team"

    invited = await w(
        ca(functions.messages.CreateChatRequest(users=[await ca.get_input_entity("bob_w")], title="Small"))
    )
    chat = invited.updates.chats[0]
    assert isinstance(chat, types.Chat) and chat.participants_count == 2
    await w(ca.send_message(chat, "basic group hello"))
    await inbox_b.wait_for("basic group hello")
    assert tg_world.deliveries[-1].kind == "chat" and tg_world.deliveries[-1].chat_id == chat.id


async def test_join_and_leave_group(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _carol = people
    public = tg_world.create_channel(alice, "Public Lobby", username="public_lobby")
    private = tg_world.create_channel(alice, "Private Room")
    code = tg_world.export_invite(private)
    cb = await connect(tg_emulator, tg_client_factory, bob)

    entity = await w(cb.get_entity("public_lobby"))
    await w(cb(functions.channels.JoinChannelRequest(entity)))
    assert bob.id in public.participants
    with pytest.raises(errors.UserAlreadyParticipantError):
        await w(cb(functions.channels.JoinChannelRequest(entity)))
    await w(cb.send_message(entity, "joined!"))
    assert tg_world.deliveries[-1].chat_id == public.id
    await w(cb(functions.channels.LeaveChannelRequest(entity)))
    assert bob.id not in public.participants
    with pytest.raises(errors.ChannelPrivateError):
        await w(cb.send_message(entity, "still here?"))

    invite = await w(cb(functions.messages.CheckChatInviteRequest(code)))
    assert isinstance(invite, types.ChatInvite) and invite.title == "Private Room" and invite.megagroup
    joined = await w(cb(functions.messages.ImportChatInviteRequest(code)))
    assert joined.chats[0].id == private.id and bob.id in private.participants
    again = await w(cb(functions.messages.CheckChatInviteRequest(code)))
    assert isinstance(again, types.ChatInviteAlready)
    with pytest.raises(errors.InviteHashInvalidError):
        await w(cb(functions.messages.ImportChatInviteRequest("nope1234")))


async def test_list_members_across_pages(tg_emulator, tg_world, tg_client_factory, people):
    alice, _, _ = people
    ch = tg_world.create_channel(alice, "Big Group", username="big_group")
    generate_members(tg_world, ch, 259)
    ca = await connect(tg_emulator, tg_client_factory, alice)
    entity = await w(ca.get_entity("big_group"))
    raw = await w(
        ca(functions.channels.GetParticipantsRequest(entity, types.ChannelParticipantsRecent(), 0, 1000, 0))
    )
    assert raw.count == 260 and len(raw.participants) == 200  # Telegram's cap per call
    members = await w(ca.get_participants(entity), 15)
    assert len(members) == 260 and len({m.id for m in members}) == 260
    assert members.total == 260
    found = await w(ca.get_participants(entity, search="Member25"))
    assert {m.first_name for m in found} >= {"Member25", "Member250"}


async def test_flood_wait_from_rate_limit(tg_emulator, tg_world, tg_client_factory, people):
    alice, _bob, _ = people
    tg_world.limits.private_chat_messages = RateLimit(2, 30)
    ca = await connect(tg_emulator, tg_client_factory, alice)
    await w(ca.send_message("bob_w", "1"))
    await w(ca.send_message("bob_w", "2"))
    with pytest.raises(errors.FloodWaitError) as err:
        await w(ca.send_message("bob_w", "3"))
    assert err.value.seconds == 30
    tg_world.advance(20)
    # Telethon remembers flood waits on its own (in real time) and would not even send the request.
    ca._flood_waited_requests.clear()
    with pytest.raises(errors.FloodWaitError) as err:
        await w(ca.send_message("bob_w", "3"))
    assert err.value.seconds == 10
    tg_world.advance(10)
    ca._flood_waited_requests.clear()
    await w(ca.send_message("bob_w", "3"))
    assert [d.text for d in tg_world.deliveries] == ["1", "2", "3"]


async def test_flood_wait_injected(tg_emulator, tg_world, tg_client_factory, people):
    alice, _, _ = people
    ca = await connect(tg_emulator, tg_client_factory, alice)
    tg_world.faults.fail_next("contacts.resolveUsername", "FLOOD_WAIT_17")
    with pytest.raises(errors.FloodWaitError) as err:
        await w(ca(functions.contacts.ResolveUsernameRequest("bob_w")))
    assert err.value.seconds == 17
    ca._flood_waited_requests.clear()
    assert (await w(ca(functions.contacts.ResolveUsernameRequest("bob_w")))).users[0].username == "bob_w"


async def test_peer_flood(tg_emulator, tg_world, tg_client_factory, people):
    alice, _bob, carol = people
    strangers = [
        tg_world.add_user(f"+1555030000{i}", first_name=f"S{i}", username=f"stranger_{i}") for i in range(3)
    ]
    tg_world.add_contact(alice, carol)
    tg_world.limits.non_contact_messages = RateLimit(2, 86400)
    ca = await connect(tg_emulator, tg_client_factory, alice)
    for s in strangers[:2]:
        await w(ca.send_message(s.username, "hello stranger"))
    with pytest.raises(errors.PeerFloodError):
        await w(ca.send_message(strangers[2].username, "hello stranger"))
    await w(ca.send_message("carol_w", "contacts are fine"))


async def test_slowmode_and_channel_limits(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _ = people
    ch = tg_world.create_channel(alice, "Slow", username="slow_room", members=[bob], slowmode_seconds=60)
    cb = await connect(tg_emulator, tg_client_factory, bob)
    await w(cb.send_message("slow_room", "first"))
    with pytest.raises(errors.SlowModeWaitError) as err:
        await w(cb.send_message("slow_room", "second"))
    assert 59 <= err.value.seconds <= 60
    other = tg_world.create_channel(alice, "Other", username="other_room")
    tg_world.limits.max_channels = 1
    with pytest.raises(errors.ChannelsTooMuchError):
        await w(cb(functions.channels.JoinChannelRequest(await cb.get_input_entity("other_room"))))
    assert bob.id not in other.participants and bob.id in ch.participants


async def test_user_privacy_restricted(tg_emulator, tg_world, tg_client_factory, people):
    alice, _bob, carol = people
    carol.privacy_invites = "nobody"
    ch = tg_world.create_channel(alice, "Closed")
    ca = await connect(tg_emulator, tg_client_factory, alice)
    entity = await w(ca.get_entity(types.PeerChannel(ch.id)))
    with pytest.raises(errors.UserPrivacyRestrictedError):
        await w(ca(functions.channels.InviteToChannelRequest(entity, [await ca.get_input_entity("carol_w")])))
    invited = await w(
        ca(
            functions.messages.CreateChatRequest(
                users=[await ca.get_input_entity("bob_w"), await ca.get_input_entity("carol_w")],
                title="Mixed",
            )
        )
    )
    assert [m.user_id for m in invited.missing_invitees] == [carol.id]


async def test_profile_username_search_contacts(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, carol = people
    tg_world.add_contact(alice, bob, mutual=True)
    ca = await connect(tg_emulator, tg_client_factory, alice)
    me = await w(ca(functions.account.UpdateProfileRequest(first_name="Alicia", about="hello")))
    assert me.first_name == "Alicia" and alice.about == "hello"
    me = await w(ca(functions.account.UpdateUsernameRequest("alicia_new")))
    assert me.username == "alicia_new" and tg_world.resolve_username("alicia_new") == ("user", alice.id)
    assert tg_world.resolve_username("alice_w") is None
    with pytest.raises(errors.UsernameOccupiedError):
        await w(ca(functions.account.UpdateUsernameRequest("bob_w")))
    full = await w(ca(functions.users.GetFullUserRequest(await ca.get_input_entity("bob_w"))))
    assert full.users[0].id == bob.id
    contacts = await w(ca(functions.contacts.GetContactsRequest(hash=0)))
    assert [c.user_id for c in contacts.contacts] == [bob.id] and contacts.contacts[0].mutual
    found = await w(ca(functions.contacts.SearchRequest(q="carol", limit=10)))
    assert [p.user_id for p in found.results] == [carol.id]
    found = await w(ca(functions.contacts.SearchRequest(q="Bob", limit=10)))
    assert [p.user_id for p in found.my_results] == [bob.id]


async def test_channel_difference_and_dialog_paging(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _ = people
    ch = tg_world.create_channel(alice, "Busy", username="busy_group", members=[bob])
    cb = await connect(tg_emulator, tg_client_factory, bob)
    entity = await w(cb.get_input_entity("busy_group"))
    full = await w(cb(functions.channels.GetFullChannelRequest(entity)))
    pts = full.full_chat.pts
    for i in range(3):
        tg_world.post(alice, ch, f"news {i}")
    diff = await w(
        cb(
            functions.updates.GetChannelDifferenceRequest(
                entity, types.ChannelMessagesFilterEmpty(), pts, 100
            )
        )
    )
    assert [m.message for m in diff.new_messages] == ["news 0", "news 1", "news 2"]
    assert diff.final and diff.pts == ch.pts
    empty = await w(
        cb(
            functions.updates.GetChannelDifferenceRequest(
                entity, types.ChannelMessagesFilterEmpty(), diff.pts, 100
            )
        )
    )
    assert isinstance(empty, types.updates.ChannelDifferenceEmpty)

    for i in range(5):
        other = tg_world.add_user(f"+1555060000{i}", first_name=f"P{i}")
        tg_world.post(other, bob, f"dm {i}")
    # Five private dialogs plus the group, fetched two at a time.
    dialogs = await w(cb.get_dialogs(limit=None))
    assert len(dialogs) == 6 and len({d.id for d in dialogs}) == 6
    raw = await w(
        cb(
            functions.messages.GetDialogsRequest(
                offset_date=None, offset_id=0, offset_peer=types.InputPeerEmpty(), limit=2, hash=0
            )
        )
    )
    assert isinstance(raw, types.messages.DialogsSlice) and raw.count == 6 and len(raw.dialogs) == 2


async def test_sessions_list_and_terminate(tg_emulator, tg_world, tg_client_factory, people):
    alice, _, _ = people
    first = await connect(tg_emulator, tg_client_factory, alice)
    second = await connect(tg_emulator, tg_client_factory, alice)
    auths = await w(first(functions.account.GetAuthorizationsRequest()))
    assert len(auths.authorizations) == 2 and sum(a.current for a in auths.authorizations) == 1
    other = next(a for a in auths.authorizations if not a.current)
    assert await w(first(functions.account.ResetAuthorizationRequest(other.hash)))
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await w(second(functions.updates.GetStateRequest()))


async def test_message_by_phone_after_import(tg_emulator, tg_world, tg_client_factory, people):
    alice, bob, _ = people
    ca = await connect(tg_emulator, tg_client_factory, alice)
    contact = types.InputPhoneContact(client_id=1, phone="+1 555 020 0002", first_name="Bob", last_name="")
    imported = await w(ca(functions.contacts.ImportContactsRequest([contact])))
    assert [c.user_id for c in imported.imported] == [bob.id]
    await w(ca.send_message("+15550200002", "found you by phone"))
    assert tg_world.deliveries[-1].to_user_id == bob.id
