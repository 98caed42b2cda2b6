"""The 11 gateway-owned `system` commands: done by fan-out to every service's `sys` subjects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from ..base import Confirmed, Empty, Request, Response
from ..command import Command
from ..enums import Domain, Role, Service
from ..settings import SettingsSection
from ..sys import BackupPart, MigrationStatus, RestorePart, ServiceInfo

G = Service.GATEWAY
SYSTEM = Domain.SYSTEM


class GetSettingsRequest(Request):
    sections: list[str] | None = Field(None, description="Only these sections; all when omitted.")


class SettingsDocument(Response):
    """The whole settings document: `settings` merges every section's values by section name."""

    settings: dict[str, dict[str, Any]]
    sections: list[SettingsSection]
    unavailable: list[str] = Field(
        default_factory=list, description="Sections whose owning service did not answer (shown as missing)."
    )


class GetSettings(
    Command,
    name="get-settings",
    owner=G,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=GetSettingsRequest,
    response=SettingsDocument,
):
    """Read the settings document, every section with its version."""


class SaveSettingsRequest(Request):
    settings: dict[str, dict[str, Any]] = Field(
        description="Section name -> the fields to change. Unnamed fields keep their value."
    )
    expected_versions: dict[str, int] | None = Field(
        None, description="Optimistic concurrency: section -> version the caller last read."
    )


class SaveSettings(
    Command,
    name="save-settings",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=SaveSettingsRequest,
    response=SettingsDocument,
):
    """Validate and save changes to one or more sections; emits `settings-changed`."""


class ResetSettingsRequest(Confirmed):
    DESTROYS: ClassVar[str] = (
        "puts the settings (every section unless `sections` names some) back to their defaults"
    )

    sections: list[str] | None = Field(None, description="Sections to reset to defaults; all when omitted.")


class ResetSettings(
    Command,
    name="reset-settings",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=ResetSettingsRequest,
    response=SettingsDocument,
):
    """Put sections back to their defaults (a new version, so the change is visible)."""


class ServiceStatus(Response):
    service: Service
    status: Literal["up", "down"]
    replicas: list[ServiceInfo] = Field(default_factory=list)


class SystemInfo(Response):
    gateway: dict[str, Any]
    services: dict[str, ServiceStatus]
    healthy: bool


class GetSystemInfo(
    Command,
    name="get-system-info",
    owner=G,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=Empty,
    response=SystemInfo,
    example={},
):
    """Version, uptime, replicas, health, database and NATS status of every service."""


class InitialState(Response):
    settings: dict[str, dict[str, Any]]
    services: dict[str, ServiceStatus]
    counts: dict[str, int]
    commands: int
    role: str
    generated_at: datetime


class GetInitialState(
    Command,
    name="get-initial-state",
    owner=G,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=Empty,
    response=InitialState,
):
    """What a console needs when it opens: settings, services' health and counts."""


class GracefulShutdownRequest(Confirmed):
    DESTROYS: ClassVar[str] = "stops every service of the system"

    include_gateway: bool = Field(True, description="Stop the gateway too once services have acknowledged.")


class ShutdownResult(Response):
    acknowledged: list[dict[str, str]]
    gateway_stopping: bool


class GracefulShutdown(
    Command,
    name="graceful-shutdown",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=GracefulShutdownRequest,
    response=ShutdownResult,
):
    """Ask every service replica to drain and stop."""


class BackupDatabaseRequest(Request):
    label: str | None = Field(None, max_length=100)
    wait: bool = Field(True, description="Answer when done; false answers at once with the backup id.")


BackupState = Literal["running", "completed", "failed"]


class BackupStatus(Response):
    backup_id: str
    kind: Literal["backup", "restore"]
    state: BackupState
    label: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    progress: float = Field(0.0, ge=0, le=1)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)
    archive: str | None = Field(None, description="Where the archive lies (file path on the gateway host).")
    error: str | None = None


class BackupDatabase(
    Command,
    name="backup-database",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=BackupDatabaseRequest,
    response=BackupStatus,
    timeout=600,
    example={"label": "before-upgrade", "wait": False},
):
    """Every service dumps its own database; the gateway bundles them into one archive."""


class RestoreDatabaseRequest(Confirmed):
    DESTROYS: ClassVar[str] = "replaces every service's database with the backup"

    backup_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    wait: bool = True


class RestoreDatabase(
    Command,
    name="restore-database",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=RestoreDatabaseRequest,
    response=BackupStatus,
    timeout=600,
):
    """Every service replaces its database with its part of the backup."""


class GetBackupStatusRequest(Request):
    backup_id: str | None = Field(None, description="One backup or restore; the latest ones when omitted.")
    limit: int = Field(20, ge=1, le=200)


class BackupList(Response):
    items: list[BackupStatus]


class GetBackupStatus(
    Command,
    name="get-backup-status",
    owner=G,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=GetBackupStatusRequest,
    response=BackupList,
):
    """Progress and outcome of backups and restores."""


class MigrationsReport(Response):
    services: dict[str, MigrationStatus]
    up_to_date: bool
    unavailable: list[str] = Field(default_factory=list, description="Services that did not answer.")


class RunMigrations(
    Command,
    name="run-migrations",
    owner=G,
    domain=SYSTEM,
    role=Role.ADMIN,
    request=Empty,
    response=MigrationsReport,
    timeout=300,
):
    """Apply every pending numbered migration in every service."""


class GetMigrationStatus(
    Command,
    name="get-migration-status",
    owner=G,
    domain=SYSTEM,
    role=Role.VIEWER,
    request=Empty,
    response=MigrationsReport,
):
    """Applied and pending migrations per service."""


__all__ = ["BackupPart", "RestorePart"]
