"""pytest plugin: a running in-process emulator per test.

Load it with ``pytest_plugins = ["tg_emulator.testing"]``. Fixtures:

- ``tg_emulator``: a started :class:`~tg_emulator.emulator.Emulator` (``.host``, ``.port``,
  ``.world``, ``.client(session=None, **kw)``, ``.session_for(user)``); stopped afterwards.
- ``tg_world``: its :class:`~tg_emulator.world.World`.
- ``tg_client_factory``: ``await factory(session=None, connect=True, **kw)`` builds Telethon
  clients pointed at the emulator and disconnects them all at teardown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

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
