"""World, limits and protocol helpers without sockets."""

from __future__ import annotations

import pytest
from tg_emulator.errors import RpcFail, code_for
from tg_emulator.handlers.messages import page_ids
from tg_emulator.limits import Faults, Limits, RateLimit, RateLimiter
from tg_emulator.protocol import tl
from tg_emulator.protocol.connection import method_name
from tg_emulator.world import World
from tg_emulator.world.seed import world_from

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def test_error_codes():
    assert code_for("FLOOD_WAIT_42") == 420
    assert code_for("AUTH_KEY_DUPLICATED") == 406
    assert code_for("SOMETHING_NEW") == 400
    with pytest.raises(ValueError):
        RpcFail("not an error")


def test_rate_limiter_sliding_window():
    rl, lim = RateLimiter(), RateLimit(2, 10)
    rl.hit(("k",), lim, 100.0)
    rl.hit(("k",), lim, 101.0)
    with pytest.raises(RpcFail) as err:
        rl.check(("k",), lim, 102.5)
    assert err.value.message == "FLOOD_WAIT_8"
    rl.check(("k",), lim, 110.0)  # the first event left the window
    rl.hit(("k",), lim, 110.0)
    with pytest.raises(RpcFail) as err:
        rl.check(("k",), lim, 110.5, error="PEER_FLOOD")
    assert err.value.message == "PEER_FLOOD"


def test_limits_from_dict_and_validation():
    lim = Limits.from_dict(
        {"account_messages": {"count": 5, "window": 1}, "group_messages": None, "max_channels": 3}
    )
    assert lim.account_messages == RateLimit(5, 1) and lim.group_messages is None and lim.max_channels == 3
    with pytest.raises(ValueError):
        Limits.from_dict({"no_such_limit": 1})
    with pytest.raises(ValueError):
        Limits.from_dict({"account_messages": {"count": 0, "window": 1}})
    assert Limits.unlimited().account_messages is None


def test_faults_fire_count_times():
    f = Faults()
    f.fail_next("messages.sendMessage", "PEER_FLOOD", 2)
    assert f.take("messages.getHistory", None) is None
    assert f.take("messages.sendMessage", 1).error == "PEER_FLOOD"
    assert f.take("messages.sendMessage", 1) is not None
    assert f.take("messages.sendMessage", 1) is None
    with pytest.raises(ValueError):
        f.fail_next("x", "bad error")


def test_ids_and_access_hashes_are_stable():
    a = world_from({"seed": 5, "users": [{"phone": "+15550500001"}]})
    b = world_from({"seed": 5, "users": [{"phone": "+15550500001"}]})
    ua, ub = a.user("15550500001"), b.user("15550500001")
    assert (ua.id, ua.access_hash) == (ub.id, ub.access_hash)
    c = world_from({"seed": 6, "users": [{"phone": "+15550500001"}]})
    assert c.user("15550500001").access_hash != ua.access_hash


def test_usernames_and_lookup():
    w = World()
    u = w.add_user("+1 555 050 0002", first_name="X", username="Some_Name")
    assert w.user("@some_name") is u and w.user("+15550500002") is u and w.user(u.id) is u
    with pytest.raises(RpcFail, match="USERNAME_OCCUPIED"):
        w.add_user("+15550500003", username="some_name")
    with pytest.raises(RpcFail, match="USERNAME_INVALID"):
        w.add_user("+15550500004", username="ab")
    assert w.user_by_phone("+15550500004") is None  # nothing half-created
    with pytest.raises(KeyError):
        w.user("@missing_user")


def test_difference_pages_and_state():
    w = World()
    a, b = w.add_user("+15550500005"), w.add_user("+15550500006")
    for i in range(5):
        w.post(a, b, f"m{i}")
    diff = w.difference(b, 0, limit=3)
    assert type(diff).__name__ == "DifferenceSlice" and diff.intermediate_state.pts == 3
    rest = w.difference(b, 3)
    assert [m.message for m in rest.new_messages] == ["m3", "m4"] and rest.state.pts == b.pts == 5
    assert type(w.difference(b, 99)).__name__ == "DifferenceTooLong"
    assert w.unread_total(b) == 5


def test_history_paging_like_telegram():
    ids = list(range(1, 11))
    kw = dict(offset_date=None, max_id=0, min_id=0)
    assert page_ids(ids, lambda i: 0, offset_id=0, add_offset=0, limit=3, **kw) == [10, 9, 8]
    assert page_ids(ids, lambda i: 0, offset_id=8, add_offset=0, limit=3, **kw) == [7, 6, 5]
    assert page_ids(ids, lambda i: 0, offset_id=5, add_offset=-3, limit=3, **kw) == [7, 6, 5]
    assert page_ids(
        ids, lambda i: 0, offset_id=0, add_offset=0, limit=10, offset_date=None, max_id=4, min_id=1
    ) == [
        3,
        2,
    ]


def test_tl_helpers():
    body = tl.container([(1, 1, b"abcd"), (3, 2, b"efgh1234")])
    assert tl.split_container(body) == [(1, 1, b"abcd"), (3, 2, b"efgh1234")]
    data = b"x" * 5000
    assert tl.unpack_gzip(tl.gzip_packed(data)) == data
    assert tl.serialize(True) == tl.tl_bool(True)
    assert len(tl.serialize(tl.LongVector([1, 2]))) == 8 + 16
    from telethon.tl import functions

    assert method_name(functions.messages.SendMessageRequest(None, "x")) == "messages.sendMessage"
    assert method_name(functions.InvokeWithLayerRequest(1, None)) == "invokeWithLayer"


def test_a_bot_user_serializes_and_reads_back():
    """`bot` and `bot_info_version` share a flag bit: a bot without the version cannot be serialized,
    which broke member listings that contain a bot."""
    from telethon.extensions import BinaryReader
    from tg_emulator.world.render import user as render_user

    w = World()
    bot = w.add_user("+15550600001", first_name="Helper", username="helper_bot", bot=True)
    rendered = render_user(bot, None, w)
    back = BinaryReader(bytes(rendered)).tgread_object()
    assert back.bot is True and back.username == "helper_bot"


def test_auth_keys_are_256_bytes_even_with_leading_zeros() -> None:
    # Telethon saves a StringSession key as 256 bytes padded at the END: a key with its leading zero
    # stripped would come back as a different key (AUTH_KEY_NOT_FOUND after a reload, 1 key in 256).
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession
    from tg_emulator.protocol.crypto import AuthKeyData
    from tg_emulator.protocol.handshake import auth_key_bytes

    gab = int.from_bytes(b"\x00" + bytes(range(1, 256)), "big")  # starts with a zero byte
    key = auth_key_bytes(gab)
    assert len(key) == 256 and key[0] == 0

    stripped = key.lstrip(b"\x00")
    s = StringSession()
    s.set_dc(2, "127.0.0.1", 443)
    s.auth_key = AuthKey(stripped)
    reloaded = StringSession(s.save()).auth_key.key
    assert AuthKeyData(reloaded).key_id != AuthKeyData(stripped).key_id  # why the server keeps 256
