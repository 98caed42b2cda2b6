"""Events of the gateway's system commands."""

from __future__ import annotations

from typing import Any, ClassVar

from .enums import Service
from .events import Event


class SettingsChanged(Event):
    """A settings section got a new version (saved or reset)."""

    OWNER: ClassVar[Service] = Service.GATEWAY
    NAME: ClassVar[str] = "settings-changed"

    section: str
    version: int
    values: dict[str, Any]
    changed_by: str | None = None


class BackupProgress(Event):
    """A backup or restore moved on: one more service done, or the whole job finished."""

    OWNER: ClassVar[Service] = Service.GATEWAY
    NAME: ClassVar[str] = "backup-progress"

    backup_id: str
    kind: str
    state: str
    progress: float
    service: str | None = None
    error: str | None = None
