"""The Telethon adapter asks `Inbound.wanted` with the chat id alone before it fetches the chat and
the sender of a group update: an unwatched group message costs no fetch, is counted as unwatched
once, and still teaches membership (`accounts/membership.py`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from tgm_contracts import Event
from tgm_session.fleet.inbound import Inbound
from tgm_session.fleet.watched import WatchedChats
from tgm_session.metrics import SessionMetrics
from tgm_session.telegram.adapter import TelethonAccountClient

from .test_inbound_automation import GROUP, OTHER, value

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


class FakeTelethon:
    """What `set_inbound` uses of a TelegramClient: it registers its handlers."""

    def __init__(self) -> None:
        self.handlers: list[tuple[Any, Any]] = []

    def add_event_handler(self, callback: Any, builder: Any) -> None:
        self.handlers.append((callback, builder))


class FakeOutbox:
    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.published.append(event)


class Update:
    """A Telethon message event: chat id and direction come with it; chat and sender are fetched
    (here: counted, then refused, so a fetched update ends in the adapter's error log)."""

    def __init__(self, chat_id: int, *, private: bool = False, out: bool = False) -> None:
        self.chat_id, self.is_private = chat_id, private
        self.message = SimpleNamespace(out=out, id=1)
        self.fetches = 0

    async def get_chat(self) -> Any:
        self.fetches += 1
        raise LookupError("fetched")

    async def get_sender(self) -> Any:
        self.fetches += 1
        raise LookupError("fetched")


async def test_unwatched_group_updates_are_dropped_before_any_fetch_and_still_teach_membership() -> None:
    metrics = SessionMetrics()
    watched = WatchedChats(metrics)
    watched.apply(value(ids=[GROUP]))
    learnt: list[tuple[str, int]] = []

    async def learn(account_id: str, chat_id: int) -> None:
        learnt.append((account_id, chat_id))

    inbound = Inbound(cast(Any, FakeOutbox()), metrics, lambda a, c, m: False, watched, learn=learn)
    telethon = FakeTelethon()
    client = TelethonAccountClient(cast(Any, telethon), "a1", timeout=1, has_proxy=False)
    client.set_inbound(inbound.handlers("a1"))
    on_message, on_edit = telethon.handlers[0][0], telethon.handlers[1][0]

    async def fetches(handler: Any, update: Update) -> int:
        await handler(update)
        return update.fetches

    assert await fetches(on_message, Update(42, private=True)) == 1  # private: always handled
    assert await fetches(on_message, Update(GROUP)) == 1  # watched by id
    assert await fetches(on_message, Update(OTHER, out=True)) == 1  # our own words typed elsewhere
    assert await fetches(on_message, Update(OTHER)) == 0
    assert await fetches(on_edit, Update(OTHER)) == 0
    assert await fetches(on_edit, Update(OTHER, out=True)) == 0  # an edit of ours in an unwatched group
    assert metrics.unwatched.labels("message")._value.get() == 1
    assert metrics.unwatched.labels("edit")._value.get() == 2
    assert learnt == [("a1", OTHER)] * 3  # each dropped update taught (the set makes it one write)

    # A watched username not yet matched to an id: the chat must be fetched to know its username.
    watched.apply(value(ids=[GROUP], names=["somegroup"]))
    assert await fetches(on_message, Update(OTHER)) == 1
    # Monitoring not active: no group update is fetched.
    watched.apply(value(ids=[GROUP], active=False))
    assert await fetches(on_message, Update(GROUP)) == 0
    assert metrics.unwatched.labels("message")._value.get() == 2
