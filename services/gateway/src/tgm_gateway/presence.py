"""Which services are serving right now, as the gateway last saw them: a `sys info` broadcast every
`TGM_GATEWAY_PRESENCE_SECONDS` (5 s) from the runtime's background tasks.

What it is used for (issue 12 finding 8), and what it is not:
- the catalogue (`GET /api/v1/commands`) names the services that answered the last round and the
  commands nobody serves right now (`servedBy`, `unserved`);
- a command whose payload does not validate is answered `UNAVAILABLE` instead of `VALIDATION_ERROR`
  when its owner was missing from the last round and the bus confirms nobody is subscribed to it
  ("no responders"): the caller learns first that nobody would serve it.
A valid command is never refused on this view (it may be 5 s old): it is sent, and the bus says
whether anyone answers (no responders: `UNAVAILABLE`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client
from nats.errors import NoRespondersError
from tgm_contracts import REGISTRY, Service
from tgm_contracts import sys as sysops

from . import bus


class Presence:
    def __init__(self, nc: Callable[[], Client], window: float) -> None:
        self._nc = nc
        self._window = window
        #: Services with at least one replica in the last round; None before the first round.
        self.up: frozenset[Service] | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> frozenset[Service]:
        async with self._lock:
            gathered = await bus.broadcast(self._nc(), sysops.Info, bus.ALL_SERVICES, {}, self._window)
            self.up = frozenset(s for s, replies in gathered.replies.items() if replies)
            return self.up

    async def down(self, service: Service) -> bool:
        """Nobody serves `service` now. The last round only points at it (a busy replica can miss a
        round's window): the bus confirms, since a request nobody is subscribed to is answered
        "no responders" at once, however loaded the replicas are; a slow answer counts as up."""
        if self.up is None or service in self.up:
            return False
        try:
            await self._nc().request(sysops.Info.subject(service), b"{}", timeout=2.0)
        except NoRespondersError:
            return True
        except Exception:  # a timeout, a closed connection: not proof that nobody is there
            return False
        return False

    def unserved(self) -> list[str]:
        """The commands whose owner was down in the last round, by name."""
        if self.up is None:
            return []
        up = self.up
        return sorted(c.NAME for c in REGISTRY.all() if c.OWNER not in up)
