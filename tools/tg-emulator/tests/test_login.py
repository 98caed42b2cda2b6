"""Login flows with the real Telethon: first connect, code, 2FA, QR, saved sessions, revocation."""

from __future__ import annotations

import pytest
from telethon import errors, functions
from tg_emulator.testing import w

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PHONE = "+15550100001"


async def test_first_connect_creates_auth_key(tg_world, tg_client_factory):
    assert tg_world.auth_keys == {}
    client = await tg_client_factory()
    assert client.is_connected()
    assert not await w(client.is_user_authorized())
    # One key per handshake; 1 time in 256 g^ab starts with a zero byte, Telethon rejects that key
    # (see handshake.auth_key_bytes) and makes a second, leaving the first unused, as on Telegram.
    assert 1 <= len(tg_world.auth_keys) <= 2
    keys = {rec.key.key: rec for rec in tg_world.auth_keys.values()}
    assert client.session.auth_key.key in keys
    assert all(rec.user_id is None for rec in keys.values())
    config = await w(client(functions.help.GetConfigRequest()))
    assert config.this_dc == 2
    assert (await w(client(functions.help.GetNearestDcRequest()))).nearest_dc == 2


async def test_code_login(tg_world, tg_client_factory):
    alice = tg_world.add_user(PHONE, first_name="Alice", username="alice_a")
    client = await tg_client_factory()
    sent = await w(client.send_code_request(PHONE))
    code = tg_world.last_code(PHONE)
    assert code and len(code) == 5
    with pytest.raises(errors.PhoneCodeInvalidError):
        await w(
            client.sign_in(
                PHONE, "00000" if code != "00000" else "11111", phone_code_hash=sent.phone_code_hash
            )
        )
    me = await w(client.sign_in(PHONE, code, phone_code_hash=sent.phone_code_hash))
    assert me.id == alice.id and me.is_self and me.first_name == "Alice"
    assert (await w(client.get_me())).username == "alice_a"
    assert [r.user_id for r in tg_world.sessions_of(alice)] == [alice.id]


async def test_expired_code(tg_world, tg_client_factory):
    tg_world.add_user(PHONE, first_name="Alice")
    client = await tg_client_factory()
    sent = await w(client.send_code_request(PHONE))
    tg_world.advance(tg_world.limits.code_ttl + 1)
    with pytest.raises(errors.PhoneCodeExpiredError):
        await w(client.sign_in(PHONE, tg_world.last_code(PHONE), phone_code_hash=sent.phone_code_hash))


async def test_sign_up_unknown_phone(tg_world, tg_client_factory):
    client = await tg_client_factory()
    sent = await w(client.send_code_request("+15550109999"))
    code = tg_world.last_code("+15550109999")
    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await w(client.sign_in("+15550109999", code))
    # Telethon's sign_up() refuses to run (third-party sign-ups are banned), the raw call works.
    auth = await w(client(functions.auth.SignUpRequest("+15550109999", sent.phone_code_hash, "Newbie", "")))
    assert auth.user.first_name == "Newbie"
    assert tg_world.user("15550109999").id == auth.user.id
    assert await w(client.is_user_authorized())


async def test_code_login_with_2fa(tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Carol", password="correct horse", password_hint="horse")
    client = await tg_client_factory()
    await w(client.send_code_request(PHONE))
    with pytest.raises(errors.SessionPasswordNeededError):
        await w(client.sign_in(PHONE, tg_world.last_code(PHONE)))
    assert not await w(client.is_user_authorized())
    with pytest.raises(errors.PasswordHashInvalidError):
        await w(client.sign_in(password="wrong horse"))
    me = await w(client.sign_in(password="correct horse"), 15)
    assert me.id == u.id
    assert await w(client.is_user_authorized())


async def _logged_in(tg_emulator, factory, user):
    return await factory(tg_emulator.session_for(user))


async def test_qr_login(tg_emulator, tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Dave")
    phone_app = await _logged_in(tg_emulator, tg_client_factory, u)
    client = await tg_client_factory()
    qr = await w(client.qr_login())
    assert qr.url.startswith("tg://login?token=")
    # The logged-in app scans the code: auth.acceptLoginToken pushes updateLoginToken to the client.
    await w(phone_app(functions.auth.AcceptLoginTokenRequest(token=qr.token)))
    user = await w(qr.wait(5))
    assert user.id == u.id
    assert (await w(client.get_me())).id == u.id


async def test_qr_login_with_2fa(tg_emulator, tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Erin", password="s3cret")
    client = await tg_client_factory()
    qr = await w(client.qr_login())
    tg_world.accept_login_token(u, qr.token)  # the world can 'scan' too
    with pytest.raises(errors.SessionPasswordNeededError):
        await w(qr.wait(5))
    me = await w(client.sign_in(password="s3cret"), 15)
    assert me.id == u.id


async def test_reconnect_from_saved_string_session(tg_emulator, tg_world, tg_client_factory):
    from telethon.sessions import StringSession

    u = tg_world.add_user(PHONE, first_name="Fay")
    client = await tg_client_factory()
    await w(client.send_code_request(PHONE))
    await w(client.sign_in(PHONE, tg_world.last_code(PHONE)))
    saved = StringSession.save(client.session)
    await w(client.disconnect())
    again = await tg_client_factory(saved)
    assert await w(again.is_user_authorized())
    assert (await w(again.get_me())).id == u.id


async def test_revoked_session(tg_emulator, tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Gus")
    session = tg_emulator.session_for(u)
    client = await tg_client_factory(session)
    assert await w(client.is_user_authorized())
    assert tg_world.revoke(user=u) == 1
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await w(client(functions.updates.GetStateRequest()))
    await w(client.disconnect())
    # The saved session still holds the auth key, but it no longer logs anyone in.
    again = await tg_client_factory(session)
    assert not await w(again.is_user_authorized())
    assert await w(again.get_me()) is None


async def test_log_out(tg_emulator, tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Hal")
    client = await _logged_in(tg_emulator, tg_client_factory, u)
    assert await w(client.log_out())
    assert tg_world.sessions_of(u) == []


async def test_banned_and_frozen_accounts(tg_emulator, tg_world, tg_client_factory):
    banned = tg_world.add_user("+15550100002", first_name="Ban")
    frozen = tg_world.add_user("+15550100003", first_name="Ice", username="frozen_one")
    c1 = await _logged_in(tg_emulator, tg_client_factory, banned)
    c2 = await _logged_in(tg_emulator, tg_client_factory, frozen)
    banned.banned = True
    frozen.frozen = True
    with pytest.raises(errors.UserDeactivatedBanError):
        await w(c1(functions.updates.GetStateRequest()))
    # Reads still work on a frozen account, writes answer FROZEN_METHOD_INVALID.
    assert (await w(c2.get_me())).id == frozen.id
    with pytest.raises(errors.FrozenMethodInvalidError):
        await w(c2.send_message("me", "hello"))


async def test_auth_key_duplicated(tg_emulator, tg_world, tg_client_factory):
    u = tg_world.add_user(PHONE, first_name="Ivy")
    session = tg_emulator.session_for(u)
    first = await tg_client_factory(session)
    assert (await w(first.get_me())).id == u.id
    second = tg_emulator.client(session)
    with pytest.raises(errors.AuthKeyDuplicatedError):
        await w(second.connect())
    await w(second.disconnect())
    # As on Telegram, the key can no longer be used after being seen twice at once.
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await w(first(functions.updates.GetStateRequest()))


async def test_resend_code_and_password_info(tg_world, tg_client_factory):
    tg_world.add_user(PHONE, first_name="Jo")
    client = await tg_client_factory()
    sent = await w(client.send_code_request(PHONE))
    first = tg_world.last_code(PHONE)
    again = await w(client(functions.auth.ResendCodeRequest(PHONE, sent.phone_code_hash)))
    assert again.phone_code_hash == sent.phone_code_hash
    me = await w(client.sign_in(PHONE, tg_world.last_code(PHONE), phone_code_hash=sent.phone_code_hash))
    assert me.first_name == "Jo" and first  # the resent code is the one that works
    info = await w(client(functions.account.GetPasswordRequest()))
    assert info.has_password is False
