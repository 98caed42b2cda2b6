"""The service probe: every `interval` seconds (a `runtime.every` job, bootstrap.py) ask each other service's `sys.info` (the subject the
gateway's get-system-info fans out to); two misses in a row raise `service.down` (critical), and the
first answer after that dismisses the open alert as `system`.

One replica probes at a time: a lease document in the database, renewed every round, expires after
three intervals so another replica takes over when the prober dies. Were two to probe at once anyway,
their alerts would fold by fold key.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts import BACKEND_SERVICES, ErrorCode, Service, subjects
from tgm_contracts import sys as sysops
from tgm_runtime import DomainError, ServiceRuntime

from .rules import service_down, service_down_key
from .service import SYSTEM, AlertService

log = logging.getLogger("tgm.analytics.alerts.probe")

#: `ask(service)` -> True (answered), False (no answer), None (cannot tell: our own bus is down).
Ask = Callable[[Service], Awaitable[bool | None]]

LEASE = "service-probe"

#: Who the probe asks: every service but analytics itself (if it is down, nobody is asking).
PROBED: tuple[Service, ...] = tuple(
    s for s in (Service.GATEWAY, *BACKEND_SERVICES) if s is not Service.ANALYTICS
)


def asker(runtime: ServiceRuntime[Any], timeout: float) -> Ask:
    """`ask` over the bus: a service answers when its `sys.info` replies within `timeout`."""

    async def ask(service: Service) -> bool | None:
        conn = getattr(runtime.broker, "_connection", None)
        if conn is None or not getattr(conn, "is_connected", True):
            return None  # our own bus is down: that says nothing about the others
        try:
            await runtime.request(subjects.sys(service, sysops.Info.OP), {}, sysops.ServiceInfo, timeout)
        except DomainError as exc:
            # An error reply still proves the service is there; only silence counts as a miss.
            return exc.code not in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT)
        return True

    return ask


class ServiceProbe:
    def __init__(
        self,
        alerts: AlertService,
        ask: Ask,
        services: Iterable[Service],
        holder: str,
        interval: float,
        misses: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.alerts = alerts
        self.ask = ask
        self.services = list(services)
        self.holder = holder
        self.interval = interval
        self.threshold = misses
        self.clock = clock
        self.misses: dict[Service, int] = {}

    async def round(self) -> bool:
        """One probe of every service; False when another replica holds the probe lease."""
        ttl = timedelta(seconds=max(3 * self.interval, 5))
        if not await self.alerts.store.claim_lease(LEASE, self.holder, ttl, self.clock()):
            self.misses.clear()  # whoever probes counts; start afresh if we take over later
            return False
        answers = await asyncio.gather(*(self.ask(s) for s in self.services), return_exceptions=True)
        for service, answer in zip(self.services, answers, strict=True):
            if isinstance(answer, BaseException):
                log.warning("probing %s failed: %s", service.value, answer)
                continue
            if answer is None:
                continue
            if answer:
                if self.misses.get(service):
                    log.info("%s answers again", service.value)
                self.misses[service] = 0
                # Also after a restart of analytics: an alert left open by the previous prober goes.
                await self.alerts.resolve([service_down_key(service)], SYSTEM, note="answering again")
                continue
            self.misses[service] = self.misses.get(service, 0) + 1
            if self.misses[service] == self.threshold:
                await self.alerts.raise_signal(
                    service_down(
                        service, self.threshold, self.interval, f"probe-{uuid.uuid4().hex}", self.clock()
                    )
                )
        return True

    async def release(self) -> None:
        """Give the probe lease up (at stop), so another replica takes over without waiting for it to expire."""
        try:
            await self.alerts.store.release_lease(LEASE, self.holder)
        except Exception as exc:  # the database may be gone already at shutdown
            log.debug("probe lease not released: %s", exc)
