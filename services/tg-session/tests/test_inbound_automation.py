"""The inbound side of automation: the watched-chats filter (KV value -> which group updates are
published), following the KV key (initial get, watch, stale watch, errors), and the outbox (events
NATS refused are kept and re-published in order, exactly once).

Unit tests use fakes for the KV and for publish; the outbox tests run on the real database server
(component: one collection, seconds)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from tgm_contracts import Event
from tgm_contracts.events_session import MemberJoined, MessageEdited, MessageReceived, MessageSent
from tgm_contracts.models.session import TelegramUser
from tgm_session.fleet.inbound import Inbound
from tgm_session.fleet.outbox import Outbox
from tgm_session.fleet.outbox_store import OutboxRepo
from tgm_session.fleet.watched import WatchedChats
from tgm_session.metrics import SessionMetrics
from tgm_session.ports import InboundJoin, InboundMessage
from tgm_testing.procs import wait_for_async

pytestmark = [pytest.mark.timeout(30)]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUP = -1001234567890
OTHER = -1009999999999


def value(
    active: bool = True, ids: list[int] | None = None, names: list[str] | None = None, rev: int = 1
) -> bytes:
    return json.dumps(
        {
            "active": active,
            "chatIds": ids or [],
            "usernames": names or [],
            "revision": rev,
            "updatedAt": NOW.isoformat(),
        }
    ).encode()


def msg(chat_id: int, kind: str = "supergroup", **kw: Any) -> InboundMessage:
    fields: dict[str, Any] = dict(
        chat_kind=kind,
        chat_id=chat_id,
        chat_title="A group",
        chat_username=None,
        message_id=kw.pop("message_id", 1),
        sender_id=42,
        sender=None,
        text="hello",
        date=NOW,
        reply_to_message_id=None,
        media_kind=None,
        mentioned=False,
        outgoing=False,
        forwarded=False,
        grouped_id=None,
    )
    fields.update(kw)
    return InboundMessage(**fields)


# --- the filter ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_nothing_of_groups_before_the_first_answer_then_exactly_the_watched_chats() -> None:
    w = WatchedChats(SessionMetrics())
    assert not w.known and not w.group(GROUP, None) and not w.chat(GROUP)
    w.apply(None)  # no key yet: an answer, nothing watched
    assert w.known and not w.group(GROUP, None)
    assert w.apply(value(ids=[GROUP], names=["@PyLobby", " other "]))
    assert w.group(GROUP, None) and w.chat(GROUP)
    assert not w.group(OTHER, None) and not w.chat(OTHER)
    assert w.usernames == {"pylobby", "other"}
    # by username, case ignored; then known by id, so its joins match too
    assert not w.chat(-1005)
    assert w.group(-1005, "PyLobby") and w.chat(-1005) and w.learned == {"pylobby": -1005}
    assert not w.group(-1006, "nobody")
    # monitoring stopped: no group at all, whatever the lists say
    assert w.apply(value(active=False, ids=[GROUP], names=["pylobby"], rev=2))
    assert not w.group(GROUP, None) and not w.chat(-1005) and not w.group(-1005, "pylobby")
    # started again without the username: the learnt id no longer counts
    assert w.apply(value(ids=[GROUP], rev=3))
    assert w.group(GROUP, None) and not w.chat(-1005) and w.revision == 3


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"not json",
        b"[]",
        b'{"active": "maybe"}',
        b'{"active": true, "chatIds": ["x"], "updatedAt": "2026"}',
    ],
)
def test_a_value_that_does_not_parse_keeps_the_last_good_set(bad: bytes) -> None:
    w = WatchedChats()
    assert not w.apply(bad) and not w.known  # never read a good one: still nothing of groups
    w.apply(value(ids=[GROUP]), 5)
    assert not w.apply(bad, 6)
    assert w.group(GROUP, None) and w.kv_revision == 5


class Published:
    """A publish that refuses while `down`, recording what it took."""

    def __init__(self) -> None:
        self.down = False
        self.taken: list[Event] = []
        self.refused = 0

    async def __call__(self, event: Event) -> bool:
        if self.down:
            self.refused += 1
            return False
        self.taken.append(event)
        return True

    def names(self) -> list[str]:
        return [e.NAME for e in self.taken]


@pytest.fixture
async def outbox_repo(mongo_server: Any, fresh_db_name: str) -> Any:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_server.uri, tz_aware=True)
    try:
        yield OutboxRepo(client[fresh_db_name])
    finally:
        await client.close()


async def make_inbound(repo: OutboxRepo, publish: Published, replica: str = "r1") -> Inbound:
    metrics = SessionMetrics()
    outbox = Outbox(repo, publish, metrics, replica)
    await outbox.start()
    watched = WatchedChats(metrics)
    watched.apply(value(ids=[GROUP], names=["named"]))
    return Inbound(outbox, metrics, lambda a, c, m: False, watched)


@pytest.mark.component
async def test_inbound_publishes_private_always_groups_and_joins_only_when_watched(outbox_repo: Any) -> None:
    pub = Published()
    inbound = await make_inbound(outbox_repo, pub)
    await inbound.message("a1", msg(42, "private", text="dm"))
    await inbound.message("a1", msg(GROUP, text="watched"))
    await inbound.message("a1", msg(OTHER, text="unwatched"))
    await inbound.message("a1", msg(OTHER, kind="channel", text="unwatched channel"))
    await inbound.message("a1", msg(-1007, kind="group", chat_username="Named", text="by name"))
    await inbound.message("a1", msg(GROUP, edited=True, edit_date=NOW, text="edit watched"))
    await inbound.message("a1", msg(OTHER, edited=True, edit_date=NOW, text="edit unwatched"))
    await inbound.message("a1", msg(42, "private", edited=True, edit_date=NOW, text="edit dm"))
    await inbound.message("a1", msg(OTHER, outgoing=True, text="ours elsewhere"))
    user = TelegramUser(user_id=7, first_name="New")
    for chat in (GROUP, OTHER, -1007):
        await inbound.join("a1", InboundJoin(chat, "t", [user], None, "join", NOW))
    texts = [(e.NAME, getattr(e, "text", getattr(e, "chat_id", None))) for e in pub.taken]
    assert texts == [
        ("message-received", "dm"),
        ("message-received", "watched"),
        ("message-received", "by name"),
        ("message-edited", "edit watched"),
        ("message-edited", "edit dm"),
        ("message-sent", "ours elsewhere"),
        ("member-joined", GROUP),
        ("member-joined", -1007),  # matched by username before: known by id now
    ]
    assert isinstance(pub.taken[5], MessageSent) and isinstance(pub.taken[6], MemberJoined)
    reg = inbound.metrics.unwatched
    assert reg.labels("message")._value.get() == 2
    assert reg.labels("edit")._value.get() == 1 and reg.labels("join")._value.get() == 1
    assert inbound.outbox.depth == 0 and await outbox_repo.depth("r1") == 0


@pytest.mark.component
async def test_what_nats_refused_is_kept_and_republished_in_order_exactly_once(outbox_repo: Any) -> None:
    pub = Published()
    inbound = await make_inbound(outbox_repo, pub)
    outbox = inbound.outbox
    await inbound.message("a1", msg(42, "private", text="before", message_id=1))
    pub.down = True
    for i in range(5):
        await inbound.message("a1", msg(GROUP, text=f"during {i}", message_id=10 + i))
    await inbound.join("a1", InboundJoin(GROUP, "t", [TelegramUser(user_id=8)], None, "join", NOW))
    assert pub.refused == 1  # once one is kept, the next are kept behind it without trying NATS
    assert outbox.depth == 6 and await outbox_repo.depth("r1") == 6
    assert outbox.metrics.outbox_depth._value.get() == 6
    assert await outbox.drain() == 0 and pub.refused == 2  # still down: nothing moves
    assert outbox.depth == 6
    pub.down = False
    # a new event while events are kept goes behind them (order), not straight out
    await inbound.message("a1", msg(42, "private", text="after", message_id=2))
    assert pub.names() == ["message-received"] and outbox.depth == 7
    assert await outbox.drain() == 7
    texts = [getattr(e, "text", "join") for e in pub.taken]
    assert texts == ["before", *[f"during {i}" for i in range(5)], "join", "after"]
    assert len({e.event_id for e in pub.taken}) == 8
    assert outbox.depth == 0 and await outbox_repo.depth("r1") == 0
    assert outbox.metrics.outbox_republished._value.get() == 7
    assert await outbox.drain() == 0 and len(pub.taken) == 8  # exactly once
    await inbound.message("a1", msg(42, "private", text="live again", message_id=3))
    assert len(pub.taken) == 9 and outbox.depth == 0  # straight out again


@pytest.mark.component
async def test_kept_events_survive_a_restart_and_are_adopted_from_a_dead_replica(outbox_repo: Any) -> None:
    pub = Published()
    pub.down = True
    first = await make_inbound(outbox_repo, pub, "r1")
    for i in range(3):
        await first.message("a1", msg(42, "private", text=f"m{i}", message_id=i))
    # the replica is killed; it starts again (same id): what it kept is re-published
    pub.down = False
    again = await make_inbound(outbox_repo, pub, "r1")
    assert again.outbox.depth == 3
    assert await again.outbox.drain() == 3
    assert [getattr(e, "text", "") for e in pub.taken] == ["m0", "m1", "m2"]
    assert all(isinstance(e, MessageReceived) for e in pub.taken)
    # another replica kept events long ago and never came back: a live one adopts them
    pub.down = True
    dead = await make_inbound(outbox_repo, pub, "r-dead")
    await dead.message("a2", msg(43, "private", text="orphan", message_id=9))
    await outbox_repo.col.update_many({}, {"$set": {"at": datetime.now(UTC) - timedelta(minutes=5)}})
    pub.down = False
    live = await make_inbound(outbox_repo, pub, "r2")
    assert await live.outbox.drain() == 1 and getattr(pub.taken[-1], "text", "") == "orphan"
    assert await outbox_repo.depth("r-dead") == 0


class FlakyRepo(OutboxRepo):
    """The outbox collection with a database that can refuse writes."""

    down = False

    async def keep(self, doc: dict[str, Any]) -> bool:
        if self.down:
            raise ConnectionError("database unreachable")
        return await super().keep(doc)

    async def keep_many(self, docs: list[dict[str, Any]]) -> None:
        if self.down:
            raise ConnectionError("database unreachable")
        await super().keep_many(docs)


@pytest.mark.component
async def test_database_down_too_memory_holds_them_bounded_then_database_then_nats(outbox_repo: Any) -> None:
    repo = FlakyRepo(outbox_repo.db)
    pub = Published()
    metrics = SessionMetrics()
    outbox = Outbox(repo, pub, metrics, "r1", memory_max=3)
    await outbox.start()
    pub.down = True
    await outbox.publish(
        MessageEdited(account_id="a", chat_kind="private", chat_id=1, message_id=1, edit_date=NOW)
    )
    repo.down = True
    for i in range(2, 6):  # 4 into memory, bounded at 3: the oldest of them is given up, counted
        await outbox.publish(
            MessageEdited(account_id="a", chat_kind="private", chat_id=1, message_id=i, edit_date=NOW)
        )
    assert outbox.depth == 4 and metrics.outbox_dropped.labels("memory")._value.get() == 1
    pub.down = False
    assert await outbox.drain() == 0  # one is older in the database, which does not answer: wait
    repo.down = False
    assert await outbox.drain() == 4
    assert [e.message_id for e in pub.taken if isinstance(e, MessageEdited)] == [1, 3, 4, 5]
    # database down and nothing older anywhere: memory goes straight to NATS, in order
    repo.down, pub.down = True, True
    for i in (6, 7):
        await outbox.publish(
            MessageEdited(account_id="a", chat_kind="private", chat_id=1, message_id=i, edit_date=NOW)
        )
    pub.down = False
    assert await outbox.drain() == 2 and outbox.depth == 0
    assert [e.message_id for e in pub.taken if isinstance(e, MessageEdited)][-2:] == [6, 7]


# --- following the KV key ------------------------------------------------------------------------


class FakeEntry:
    def __init__(self, value: bytes | None, revision: int, operation: str | None = None) -> None:
        self.value, self.revision, self.operation = value, revision, operation


class FakeWatcher:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stopped = False

    async def updates(self, timeout: float = 5.0) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            from nats.errors import TimeoutError as NatsTimeout

            raise NatsTimeout from None

    async def stop(self) -> None:
        self.stopped = True


class FakeKv:
    """One key: `put` stores and tells the live watcher unless the watch is `deaf` (a stale one)."""

    def __init__(self) -> None:
        self.entry: FakeEntry | None = None
        self.revision = 0
        self.watchers: list[FakeWatcher] = []
        self.deaf = False
        self.failing = False
        self.opened = 0

    def put(self, data: bytes | None, operation: str | None = None) -> None:
        self.revision += 1
        self.entry = FakeEntry(data, self.revision, operation)
        if not self.deaf and self.watchers:
            self.watchers[-1].queue.put_nowait(self.entry)

    async def get(self, key: str) -> FakeEntry:
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        if self.failing:
            raise ConnectionError("nats down")
        if self.entry is None:
            raise KeyNotFoundError
        if self.entry.operation == "DEL":
            raise KeyDeletedError
        return self.entry

    async def watch(self, key: str) -> FakeWatcher:
        if self.failing:
            raise ConnectionError("nats down")
        w = FakeWatcher()
        if self.entry is not None:
            w.queue.put_nowait(self.entry)
        w.queue.put_nowait(None)
        self.watchers.append(w)
        return w


async def until(pred: Any, timeout: float = 5.0) -> None:
    await wait_for_async(pred, timeout=timeout, interval=0.01)


@pytest.mark.unit
async def test_follow_applies_writes_notices_a_stale_watch_and_comes_back_after_errors() -> None:
    kv = FakeKv()
    w = WatchedChats(resync_seconds=0.05, retry_seconds=0.05)

    async def open_kv() -> FakeKv:
        kv.opened += 1
        if kv.failing:
            raise ConnectionError("nats down")
        return kv

    await w.read_once(open_kv)
    assert w.known and not w.active  # no key: nothing watched
    task = asyncio.get_running_loop().create_task(w.follow(open_kv))
    try:
        await until(lambda: kv.watchers)
        kv.put(value(ids=[GROUP], rev=1))
        await until(lambda: w.group(GROUP, None))
        kv.put(value(ids=[OTHER], rev=2))
        await until(lambda: w.chat(OTHER) and not w.chat(GROUP))
        kv.put(None, "DEL")
        await until(lambda: not w.active and w.known)
        # the watch goes deaf (its consumer died in an outage): the resync get sees the new revision
        kv.deaf = True
        watches = len(kv.watchers)
        kv.put(value(ids=[GROUP], rev=3))
        await until(lambda: w.group(GROUP, None) and len(kv.watchers) > watches)
        assert kv.watchers[watches - 1].stopped
        kv.deaf = False
        # NATS away: rounds fail, the last known set stays; back: the watch is made again
        kv.failing = True
        opened = kv.opened
        await until(lambda: kv.opened > opened + 1)
        assert w.group(GROUP, None)
        kv.failing = False
        kv.put(value(ids=[OTHER], rev=4))
        await until(lambda: w.chat(OTHER) and w.revision == 4)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.unit
def test_the_filter_is_a_set_lookup() -> None:
    """The hot path: 10,000 watched chats, 200,000 lookups of unwatched and watched chats."""
    w = WatchedChats()
    w.apply(value(ids=[-1000000000000 - i for i in range(10_000)], names=[f"g{i}" for i in range(1000)]))
    started = time.perf_counter()
    hits = 0
    for i in range(100_000):
        hits += w.group(-1000000000000 - i, None)
        hits += w.group(-2000000000000 - i, "unwatched_name")
    elapsed = time.perf_counter() - started
    assert hits == 10_000
    # generous bound (a loaded CI machine): the real figure is printed for the record
    print(f"filter: {200_000 / elapsed:,.0f} lookups/s")
    assert elapsed < 2.0
