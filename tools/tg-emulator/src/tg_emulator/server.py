"""The asyncio MTProto server: accepts connections, dispatches requests, pushes updates."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from .errors import RpcFail
from .handlers import HANDLERS, Ctx
from .limits import apply_latency
from .protocol import tl
from .protocol.connection import Connection, DropConnection
from .world import World

log = logging.getLogger(__name__)


class Server:
    """Serves ``world`` over TcpFull MTProto on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self.connections: set[Connection] = set()
        self.by_key: dict[int, set[Connection]] = {}
        self.by_user: dict[int, set[Connection]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.requests_served = 0
        world.hub = self

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("tg-emulator listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    # ---------------------------------------------------------------- registry

    def register_key(self, conn: Connection) -> bool:
        """Note that ``conn`` uses its auth key; True if another live connection already does."""
        key_id = conn.key_id
        assert key_id is not None
        live = [c for c in self.by_key.get(key_id, ()) if c is not conn and c.is_alive()]
        self.by_key.setdefault(key_id, set()).add(conn)
        if live:
            log.info("auth key used from two connections at once: AUTH_KEY_DUPLICATED")
            if self.world.duplicated_key_revokes:
                self.world.revoke(key_id=key_id, reason="duplicated")
            return True
        return False

    def track_user(self, conn: Connection) -> None:
        uid = conn.key.user_id if conn.key else None
        if uid == conn.user_id:
            return
        if conn.user_id is not None:
            self.by_user.get(conn.user_id, set()).discard(conn)
        conn.user_id = uid
        if uid is not None:
            self.by_user.setdefault(uid, set()).add(conn)

    def unregister(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if conn.key_id is not None:
            s = self.by_key.get(conn.key_id)
            if s:
                s.discard(conn)
                if not s:
                    del self.by_key[conn.key_id]
        if conn.user_id is not None:
            s = self.by_user.get(conn.user_id)
            if s:
                s.discard(conn)
                if not s:
                    del self.by_user[conn.user_id]

    # ---------------------------------------------------------------- hub (used by the world)

    def user_online(self, user_id: int) -> bool:
        return bool(self.by_user.get(user_id))

    def push_user(self, user_id: int, build: Callable[[], Any], exclude_key: int | None = None) -> None:
        conns = [
            c
            for c in self.by_user.get(user_id, ())
            if c.updates_enabled
            and c.key_id != exclude_key
            and c.key is not None
            and c.key.user_id == user_id
        ]
        if not conns:
            return
        data = tl.serialize(build())
        for c in conns:
            c.push(data)

    def push_key(self, key_id: int, obj: Any) -> None:
        data = tl.serialize(obj)
        for c in list(self.by_key.get(key_id, ())):
            c.push(data)

    def drop(self, *, user_id: int | None = None, key_id: int | None = None) -> int:
        """Close connections (all of a user's, one key's, or every one if neither is given)."""
        if user_id is None and key_id is None:
            victims = set(self.connections)
        else:
            victims = set()
            if user_id is not None:
                victims |= set(self.by_user.get(user_id, ()))
            if key_id is not None:
                victims |= set(self.by_key.get(key_id, ()))
        for c in victims:
            c.close()
        return len(victims)

    def connection_count(self) -> int:
        return len(self.connections)

    # ---------------------------------------------------------------- dispatch

    async def dispatch(self, conn: Connection, request: Any, method: str) -> bytes:
        world = self.world
        self.requests_served += 1
        await apply_latency(world.faults, method)
        rec = conn.key
        user_id = rec.user_id if rec else None
        fault = world.faults.take(method, user_id)
        if fault is not None:
            if fault.drop:
                raise DropConnection()
            raise RpcFail(fault.error, fault.code)
        handler = HANDLERS.get(type(request))
        if handler is None:
            raise RpcFail(f"INPUT_METHOD_INVALID_{request.CONSTRUCTOR_ID}")
        ctx = Ctx(world=world, conn=conn, key=rec, method=method)
        if handler.auth:
            user = ctx.me()
            if handler.write and user.frozen:
                raise RpcFail("FROZEN_METHOD_INVALID", 420)
            limit = world.limits.methods.get(method)
            if limit is not None:
                world.rate.check(("method", method, user.id), limit, world.now())
                world.rate.hit(("method", method, user.id), limit, world.now())
            if rec is not None and rec.authorization is not None:
                rec.authorization.active = int(world.now())
        result = handler.fn(ctx, request)
        if inspect.isawaitable(result):
            result = await result
        return tl.serialize(result)
