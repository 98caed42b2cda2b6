"""`runtime.on_event`: several handlers of one event type share ONE durable consumer; a failing handler
gets the event again (every handler re-runs); `order_by` keeps one key's events from overlapping in one handler."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_contracts import streams
from tgm_contracts.events_ai import KnowledgeChanged
from tgm_contracts.events_session import MessageReceived
from tgm_runtime import ServiceRuntime
from tgm_runtime.testing import bare_runtime


def runtime(
    nats_url: str = "nats://127.0.0.1:1", mongo_uri: str = "mongodb://127.0.0.1:1"
) -> ServiceRuntime[Any]:
    return bare_runtime(nats_url=nats_url, mongo_uri=mongo_uri, tag="shared")


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_registration_is_checked() -> None:
    rt = runtime()

    @rt.on_event(KnowledgeChanged, "one")
    async def one(evt: KnowledgeChanged) -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        rt.on_event(KnowledgeChanged, "one")
    with pytest.raises(ValueError, match="max_workers"):
        rt.on_event(KnowledgeChanged, "two", max_workers=0)
    rt.on_event(KnowledgeChanged, "two", max_workers=4)(one)
    shared = rt._shared[KnowledgeChanged]
    assert [h.name for h in shared.handlers] == ["one", "two"] and shared.max_workers == 4
    rt._declare_shared_consumers()  # what start does first
    with pytest.raises(RuntimeError, match="before start"):
        rt.on_event(KnowledgeChanged, "three")


def message(chat_id: int, message_id: int) -> MessageReceived:
    return MessageReceived(
        account_id="acct",
        chat_kind="private",
        chat_id=chat_id,
        message_id=message_id,
        sender_id=chat_id,
        text=f"m{message_id}",
        date=datetime.now(UTC),
    )


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_handlers_share_one_consumer_one_at_a_time_per_key_and_all_rerun_on_failure(
    nats_server: Any, mongo_server: Any
) -> None:
    rt = runtime(nats_server.url, mongo_server.uri)
    chats = [random.randint(10**12, 10**13) for _ in range(3)]
    per_message = 8
    ordered: dict[int, list[int]] = {c: [] for c in chats}
    in_flight: dict[int, int] = dict.fromkeys(chats, 0)
    overlaps: list[int] = []
    unordered: list[tuple[int, int]] = []
    counted: list[tuple[int, int]] = []
    failing = (chats[0], 3)
    failures = 0
    settled = asyncio.Event()
    expected = per_message * len(chats)

    def check() -> None:  # every message counted once, and the failed one run twice by both
        if len(counted) == expected and sum(map(len, ordered.values())) == expected + 1:
            settled.set()

    @rt.on_event(MessageReceived, "ordered", max_workers=16, order_by=lambda e: e.chat_id)
    async def on_ordered(evt: MessageReceived) -> None:
        if evt.chat_id not in ordered:
            return  # other tests' messages left on the stream
        in_flight[evt.chat_id] += 1
        if in_flight[evt.chat_id] > 1:
            overlaps.append(evt.chat_id)
        await asyncio.sleep(random.uniform(0, 0.01))
        in_flight[evt.chat_id] -= 1
        ordered[evt.chat_id].append(evt.message_id)
        check()

    @rt.on_event(MessageReceived, "unordered")
    async def on_unordered(evt: MessageReceived) -> None:
        nonlocal failures
        if evt.chat_id not in ordered:
            return
        unordered.append((evt.chat_id, evt.message_id))
        if (evt.chat_id, evt.message_id) == failing and failures == 0:
            failures += 1
            raise ConnectionError("database briefly away")
        counted.append((evt.chat_id, evt.message_id))
        check()

    observed: list[tuple[str, str]] = []
    observe = rt.perf.observe

    def spy(name: str, kind: str, seconds: float, error: bool = False) -> None:
        observed.append((name, kind))
        observe(name, kind, seconds, error)

    rt.perf.observe = spy  # type: ignore[method-assign]
    await rt.start()
    try:
        published = [message(c, m) for m in range(1, per_message + 1) for c in chats]
        for evt in published:
            await rt.publish(evt)

        await asyncio.wait_for(settled.wait(), 30)
        js = rt.js
        info = await js.consumer_info(streams.EVENTS_STREAM.name, "analytics_message_received")
        assert info.config.filter_subject == MessageReceived.SUBJECT
        # the failed event came back once and BOTH handlers ran it again
        assert failures == 1
        assert unordered.count(failing) == 2 and counted.count(failing) == 1
        assert sorted(counted) == sorted((e.chat_id, e.message_id) for e in published)
        assert ordered[failing[0]].count(failing[1]) == 2
        # one key at a time for the ordered handler (mutual exclusion, not arrival order: see
        # `on_event`), every message of each key handled
        assert overlaps == []
        for c in chats:
            assert sorted(set(ordered[c])) == list(range(1, per_message + 1)), (c, ordered[c])
        # one op per handler in the performance sample
        ops = {name for name, kind in observed if kind == "event"}
        assert {"tg-session.message-received@ordered", "tg-session.message-received@unordered"} <= ops
        assert rt._shared[MessageReceived].handlers[0].locks._locks == {}  # no lock left behind
    finally:
        await rt.stop()
