"""pytest plugin: a running in-process emulator per test.

Load it with ``pytest_plugins = ["tg_emulator.testing"]``. Fixtures:

- ``tg_emulator``: a started :class:`~tg_emulator.emulator.Emulator` (``.host``, ``.port``,
  ``.world``, ``.client(session=None, **kw)``, ``.session_for(user)``); stopped afterwards.
- ``tg_world``: its :class:`~tg_emulator.world.World`.
- ``tg_client_factory``: ``await factory(session=None, connect=True, **kw)`` builds Telethon
  clients pointed at the emulator and disconnects them all at teardown.

Helpers: :func:`w` (await with a timeout) and :class:`Inbox` (collect ``events.NewMessage``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from telethon import events

from .emulator import Emulator
from .world import World


@pytest_asyncio.fixture
async def tg_emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(World())
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest_asyncio.fixture
async def tg_world(tg_emulator: Emulator) -> World:
    return tg_emulator.world


@pytest_asyncio.fixture
async def tg_devsite(tg_world: World) -> AsyncIterator[Any]:
    """The my.telegram.org side of the emulator (credential scrape), serving the same world."""
    from .devsite import DevSite

    site = await DevSite(tg_world).start()
    try:
        yield site
    finally:
        await site.stop()


@pytest_asyncio.fixture
async def tg_client_factory(tg_emulator: Emulator) -> AsyncIterator[Any]:
    clients: list[Any] = []

    async def factory(session: str | Any | None = None, *, connect: bool = True, **kwargs: Any):
        client = tg_emulator.client(session, **kwargs)
        clients.append(client)
        if connect:
            await asyncio.wait_for(client.connect(), 10)
        return client

    try:
        yield factory
    finally:
        for client in clients:
            try:
                await asyncio.wait_for(client.disconnect(), 5)
            except Exception:
                pass


async def w(awaitable: Any, timeout: float = 8.0) -> Any:
    """Await with a timeout: an emulator bug otherwise looks like a hang."""
    return await asyncio.wait_for(awaitable, timeout)


class Inbox:
    """Collects events.NewMessage texts of one client; wait_for(text) waits on a condition."""

    def __init__(self, client: Any, **filters: Any) -> None:
        self.items: list[Any] = []
        self._cond = asyncio.Condition()
        client.add_event_handler(self._on, events.NewMessage(**filters))

    async def _on(self, event: Any) -> None:
        async with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    async def wait_for(self, text: str, timeout: float = 5.0) -> Any:
        async def _wait() -> Any:
            async with self._cond:
                while True:
                    for ev in self.items:
                        if ev.raw_text == text:
                            return ev
                    await self._cond.wait()

        return await asyncio.wait_for(_wait(), timeout)
