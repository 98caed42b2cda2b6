"""Pure logic of the remembered peers: `PeerSession` (rows by id, lookups, the bound, what it notes
as seen) and `KnownPeers` batching (only rows not saved yet are written, a day later an unchanged
row again, nothing for a removed account, a failed write kept for the next flush)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telethon import types, utils
from tgm_session.fleet import peers as peers_mod
from tgm_session.fleet.peers import KnownPeer, KnownPeers
from tgm_session.telegram.peer_session import PeerSession

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

ROOM = utils.get_peer_id(types.PeerChannel(55))  # a channel's marked id: -100 then its id


def user(uid: int, h: int, username: str | None = None, first: str = "U", phone: str | None = None) -> Any:
    return types.User(id=uid, access_hash=h, username=username, first_name=first, phone=phone)


def chats(*items: Any) -> Any:
    users = [i for i in items if isinstance(i, types.User)]
    others = [i for i in items if not isinstance(i, types.User)]
    return types.contacts.ResolvedPeer(peer=types.PeerUser(0), users=users, chats=others)


def test_session_keeps_one_row_per_peer_and_finds_it_every_way() -> None:
    s = PeerSession()
    channel = types.Channel(
        id=55, title="Room", photo=types.ChatPhotoEmpty(), date=None, access_hash=9, megagroup=True
    )
    s.process_entities(chats(user(7, 111, "Carol_C", "Carol", "15550001"), channel))
    assert s.get_input_entity(7) == types.InputPeerUser(7, 111)  # bare id, as campaign sends it
    assert s.get_input_entity("@carol_c") == types.InputPeerUser(7, 111)
    assert s.get_input_entity("+15550001") == types.InputPeerUser(7, 111)
    assert s.get_input_entity(ROOM) == types.InputPeerChannel(55, 9)
    # A new hash and username replace the row: the old name no longer finds it.
    s.process_entities(chats(user(7, 222, "carol_new", "Carol")))
    assert s.get_input_entity(7) == types.InputPeerUser(7, 222) and len(s) == 2
    with pytest.raises(ValueError):
        s.get_input_entity("@carol_c")
    # min users carry no usable hash: not kept.
    s.process_entities(chats(types.User(id=8, access_hash=5, min=True, first_name="M")))
    with pytest.raises(ValueError):
        s.get_input_entity(8)
    seen = {row[0]: row for row in s.take_seen()}
    assert seen[7] == (7, 222, "carol_new", None, "Carol") and ROOM in seen and 8 not in seen
    assert s.take_seen() == []


def test_session_loaded_rows_are_not_seen_and_the_least_recent_go_first() -> None:
    s = PeerSession(max_rows=3)
    assert s.load([(1, 10, "a", None, "A"), (2, 20, None, None, "B"), (3, 30, None, None, "C")]) == 3
    assert s.take_seen() == []
    s.process_entities(chats(user(1, 10, "a", "A")))  # 1 is the most recent now
    s.process_entities(chats(user(4, 40)))  # evicts 2, the least recently seen
    assert s.get_input_entity(1) == types.InputPeerUser(1, 10)
    assert s.get_input_entity(4) == types.InputPeerUser(4, 40)
    with pytest.raises(ValueError):
        s.get_input_entity(2)
    assert len(s) == 3


class FakePeersRepo:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], tuple[tuple[Any, ...], datetime]] = {}
        self.writes: list[tuple[str, int]] = []
        self.fail = False

    async def save(self, account_id: str, rows: list[Any], at: datetime) -> int:
        if self.fail:
            raise ConnectionError("database away")
        self.writes.append((account_id, len(rows)))
        for r in rows:
            self.rows[(account_id, r[0])] = (tuple(r), at)
        return len(rows)

    async def load(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        docs = [
            {
                "peer_id": k[1],
                "access_hash": v[0][1],
                "username": v[0][2],
                "phone": v[0][3],
                "name": v[0][4],
                "seen_at": v[1],
            }
            for k, v in self.rows.items()
            if k[0] == account_id
        ]
        return sorted(docs, key=lambda d: d["seen_at"], reverse=True)[:limit]

    async def trim(self, account_id: str, older_than: datetime) -> int:
        return 0

    async def forget(self, account_id: str) -> int:
        gone = [k for k in self.rows if k[0] == account_id]
        for k in gone:
            del self.rows[k]
        return len(gone)


class FakeAccountsRepo:
    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    async def find(self, query: dict[str, Any], projection: Any = None) -> list[dict[str, Any]]:
        return [{"_id": i} for i in query["_id"]["$in"] if i in self.ids]


class FakeRepos:
    def __init__(self, ids: set[str]) -> None:
        self.peers = FakePeersRepo()
        self.accounts = FakeAccountsRepo(ids)


class FakeClient:
    """An account client that remembers peers (as the Telethon adapter does)."""

    def __init__(self) -> None:
        self.session = PeerSession()

    def learn_peers(self, peers: Any) -> int:
        return self.session.load(peers)

    def new_peers(self) -> list[KnownPeer]:
        return [KnownPeer(*r) for r in self.session.take_seen()]


async def test_flush_writes_only_what_is_not_saved_and_reloads_it() -> None:
    repos = FakeRepos({"a1"})
    known = KnownPeers(repos)  # type: ignore[arg-type]
    c1 = FakeClient()
    assert await known.attach("a1", c1) == 0
    c1.session.process_entities(chats(user(7, 111, "carol"), user(8, 222)))
    assert await known.flush() == 2
    c1.session.process_entities(chats(user(7, 111, "carol")))  # seen again, unchanged
    assert await known.flush() == 0
    c1.session.process_entities(chats(user(7, 333, "carol")))  # a new hash
    assert await known.flush() == 1 and repos.peers.rows[("a1", 7)][0][1] == 333
    assert repos.peers.writes == [("a1", 2), ("a1", 1)]

    # A new connection (reconnect, restart) gets the rows before it connects.
    c2 = FakeClient()
    assert await known.attach("a1", c2) == 2
    assert c2.session.get_input_entity(7) == types.InputPeerUser(7, 333)
    c2.session.process_entities(chats(user(8, 222)))  # loaded and unchanged: not written again
    assert await known.flush() == 0


async def test_a_day_later_an_unchanged_row_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    repos = FakeRepos({"a1"})
    known = KnownPeers(repos)  # type: ignore[arg-type]
    c = FakeClient()
    await known.attach("a1", c)
    c.session.process_entities(chats(user(7, 111)))
    assert await known.flush() == 1
    later = datetime.now(UTC).timestamp() + peers_mod.TOUCH_AFTER_SECONDS + 1
    monkeypatch.setattr(peers_mod.time, "time", lambda: later)
    c.session.process_entities(chats(user(7, 111)))
    assert await known.flush() == 1


async def test_failures_are_retried_and_removed_accounts_never_written() -> None:
    repos = FakeRepos({"a1", "a2"})
    known = KnownPeers(repos)  # type: ignore[arg-type]
    c1, c2 = FakeClient(), FakeClient()
    await known.attach("a1", c1)
    await known.attach("a2", c2)
    c1.session.process_entities(chats(user(7, 111)))
    repos.peers.fail = True
    assert await known.flush() == 0  # never raises
    repos.peers.fail = False
    assert await known.flush() == 1 and ("a1", 7) in repos.peers.rows

    repos.accounts.ids.discard("a2")  # removed on another replica meanwhile
    c2.session.process_entities(chats(user(9, 999)))
    await known.detach("a2")
    assert not [k for k in repos.peers.rows if k[0] == "a2"]
    assert await known.forget("a1") == 1 and not repos.peers.rows
    c1.session.process_entities(chats(user(10, 1)))
    assert await known.flush() == 0  # forgotten: its client is not collected any more


async def test_a_client_without_peer_memory_is_not_attached() -> None:
    known = KnownPeers(FakeRepos({"a1"}))  # type: ignore[arg-type]
    assert await known.attach("a1", object()) == 0
    assert await known.flush() == 0


def test_max_age_is_ninety_days() -> None:
    from tgm_session.fleet.peer_store import MAX_ROWS, max_age

    assert max_age() == timedelta(days=90) and MAX_ROWS == 100_000
