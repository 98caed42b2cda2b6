"""The fleet as a whole: who is up (`sys info` broadcast to every replica), what a console needs when
it opens, stopping everyone, and the numbered migrations of every service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tgm_contracts import BACKEND_SERVICES, REGISTRY, ErrorCode
from tgm_contracts import sys as sysops
from tgm_contracts.commands import system as system_cmd

from .. import bus
from ..bus import ALL_SERVICES
from ..settings import GatewaySettings
from .sections import SettingsSections

if TYPE_CHECKING:
    from ..app import Runtime

#: Applying migrations may rebuild indexes on big collections.
MIGRATE_TIMEOUT_SECONDS = 240
#: The gateway stops this long after answering `graceful-shutdown`, so the reply leaves first.
STOP_DELAY_SECONDS = 0.5


class Fleet:
    def __init__(self, runtime: Runtime, sections: SettingsSections, settings: GatewaySettings) -> None:
        self.runtime = runtime
        self.sections = sections
        self.settings = settings

    async def _services(self, request_id: str | None) -> dict[str, Any]:
        gathered = await bus.broadcast(
            self.runtime.nc, sysops.Info, ALL_SERVICES, {}, self.settings.fanout_window_seconds, request_id
        )
        out = {}
        for svc in ALL_SERVICES:
            replicas = sorted(gathered.replies.get(svc, []), key=lambda r: r["replicaId"])
            out[svc.value] = {
                "service": svc.value,
                "status": "up" if replicas else "down",
                "replicas": replicas,
            }
        return out

    async def system_info(self, request_id: str | None) -> system_cmd.SystemInfo:
        services = await self._services(request_id)
        me = await self.runtime.info()
        healthy = all(
            s["status"] == "up" and all(r["health"] == "ok" for r in s["replicas"]) for s in services.values()
        )
        gateway = {
            "version": self.runtime.version,
            "replicaId": self.runtime.settings.replica_id,
            "uptimeSeconds": me.uptime_seconds,
            "nats": me.nats.ok,
            "database": me.database.ok,
        }
        return system_cmd.SystemInfo.model_validate(
            {"gateway": gateway, "services": services, "healthy": healthy}
        )

    async def initial_state(self, role: str | None, request_id: str | None) -> system_cmd.InitialState:
        services, document = await asyncio.gather(
            self._services(request_id), self.sections.document(None, request_id)
        )
        counts: dict[str, int] = {}
        for s in services.values():
            if s["replicas"]:
                for k, v in s["replicas"][0].get("counts", {}).items():
                    counts[k] = v
        return system_cmd.InitialState.model_validate(
            {
                "settings": document.settings,
                "services": services,
                "counts": counts,
                "commands": len(REGISTRY),
                "role": role or "viewer",
                "generated_at": datetime.now(UTC),
            }
        )

    async def shutdown(
        self, req: system_cmd.GracefulShutdownRequest, request_id: str | None
    ) -> system_cmd.ShutdownResult:
        gathered = await bus.broadcast(
            self.runtime.nc,
            sysops.Shutdown,
            BACKEND_SERVICES,
            {},
            self.settings.fanout_window_seconds,
            request_id,
        )
        acks = [
            {"service": svc.value, "replicaId": r["replicaId"]}
            for svc, replies in gathered.replies.items()
            for r in replies
        ]
        if req.include_gateway:
            asyncio.get_running_loop().call_later(STOP_DELAY_SECONDS, self.runtime.request_stop)
        return system_cmd.ShutdownResult(acknowledged=acks, gateway_stopping=req.include_gateway)

    async def run_migrations(self, request_id: str | None) -> system_cmd.MigrationsReport:
        return await self._migrations(sysops.Migrate, request_id, MIGRATE_TIMEOUT_SECONDS)

    async def migration_status(self, request_id: str | None) -> system_cmd.MigrationsReport:
        return await self._migrations(sysops.Migrations, request_id, self.settings.fanout_window_seconds * 5)

    async def _migrations(
        self, op: type[sysops.SysOp], request_id: str | None, timeout: float
    ) -> system_cmd.MigrationsReport:
        replies = await bus.each(self.runtime.nc, op, ALL_SERVICES, {}, timeout, request_id)
        services = {}
        unavailable = []
        for svc, reply in replies.items():
            if reply["ok"]:
                services[svc.value] = reply["data"]
            elif reply["error"]["code"] in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                unavailable.append(svc.value)
            else:
                bus.raise_error(reply, svc)
        up_to_date = not unavailable and all(not s["pending"] for s in services.values())
        return system_cmd.MigrationsReport.model_validate(
            {"services": services, "up_to_date": up_to_date, "unavailable": unavailable}
        )
