"""The `sys` protocol every service answers (`tgm.<service>.sys.<op>.v1`), used by the gateway's
system commands. Broadcast ops are answered by every replica; the others by one replica of a service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from . import subjects
from .base import Request, Response
from .base import Request as RequestModel
from .base import Response as ResponseModel
from .enums import Service
from .settings import SettingsSection


class SysOp:
    OP: ClassVar[str]
    BROADCAST: ClassVar[bool]
    Request: ClassVar[type[RequestModel]]
    Response: ClassVar[type[ResponseModel]]

    def __init_subclass__(
        cls, *, op: str, request: type[RequestModel], response: type[ResponseModel], broadcast: bool = False
    ) -> None:
        cls.OP, cls.BROADCAST, cls.Request, cls.Response = op, broadcast, request, response
        SYS_OPS.append(cls)

    @classmethod
    def subject(cls, service: Service) -> str:
        return subjects.sys(service, cls.OP)


SYS_OPS: list[type[SysOp]] = []


class SysEmpty(Request):
    pass


class Check(Response):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class ServiceInfo(Response):
    service: Service
    version: str
    replica_id: str
    pid: int
    started_at: datetime
    uptime_seconds: float
    health: Literal["ok", "degraded"]
    database: Check
    nats: Check
    counts: dict[str, int] = Field(default_factory=dict, description="Cheap counts for the console.")
    migration: int = 0


class Info(SysOp, op="info", request=SysEmpty, response=ServiceInfo, broadcast=True):
    """Who you are and how you are."""


class SettingsGetRequest(Request):
    sections: list[str] | None = None


class SettingsSections(Response):
    sections: list[SettingsSection]


class SettingsGet(SysOp, op="settings-get", request=SettingsGetRequest, response=SettingsSections):
    pass


class SettingsSaveRequest(Request):
    section: str
    values: dict[str, Any]
    expected_version: int | None = None


class SettingsSave(SysOp, op="settings-save", request=SettingsSaveRequest, response=SettingsSection):
    pass


class SettingsResetRequest(Request):
    sections: list[str] | None = None


class SettingsReset(SysOp, op="settings-reset", request=SettingsResetRequest, response=SettingsSections):
    pass


class BackupRequest(Request):
    backup_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")


class BackupPart(Response):
    service: Service
    object_name: str
    collections: dict[str, int]
    documents: int
    bytes: int


class Backup(SysOp, op="backup", request=BackupRequest, response=BackupPart):
    pass


class RestorePart(Response):
    service: Service
    collections: dict[str, int]
    documents: int


class Restore(SysOp, op="restore", request=BackupRequest, response=RestorePart):
    pass


class MigrationRecord(Response):
    number: int
    name: str
    applied_at: datetime | None = None


class MigrationStatus(Response):
    service: Service
    current: int
    latest: int
    applied: list[MigrationRecord]
    pending: list[MigrationRecord]


class Migrate(SysOp, op="migrate", request=SysEmpty, response=MigrationStatus):
    pass


class Migrations(SysOp, op="migrations", request=SysEmpty, response=MigrationStatus):
    pass


class ShutdownAck(Response):
    service: Service
    replica_id: str
    draining: bool = True


class Shutdown(SysOp, op="shutdown", request=SysEmpty, response=ShutdownAck, broadcast=True):
    pass
