"""The emulator as one object: a world, the MTProto server and (optionally) the admin API."""

from __future__ import annotations

from typing import Any

from .client_support import make_client
from .server import Server
from .world import World


class Emulator:
    """A running fake Telegram DC. Use ``async with Emulator() as emu:`` or start()/stop()."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = None,
    ) -> None:
        self.world = world or World()
        self.server = Server(self.world, host, port)
        self.admin_port = admin_port
        self._admin: Any = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> Emulator:
        await self.server.start()
        if self.admin_port is not None:
            from .admin import AdminApi

            self._admin = AdminApi(self)
            self.admin_port = await self._admin.start(self.host, self.admin_port)
        return self

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        await self.server.stop()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def client(self, session: str | Any | None = None, **kwargs: Any):
        """A Telethon client pointed at this emulator (not yet connected)."""
        return make_client(self.host, self.port, session, **kwargs)

    def session_for(self, user: Any) -> str:
        """A logged-in StringSession for ``user`` that points at this emulator."""
        return self.world.create_session(user, host=self.host, port=self.port)
