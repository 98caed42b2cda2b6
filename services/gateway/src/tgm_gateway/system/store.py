"""The `_backups` collection: the record of every backup and restore (state, progress, per service).

The runtime's dump and restore skip it, so a restore never rewinds the record of the restore itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts import Service

COLLECTION = "_backups"


class BackupStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db[COLLECTION]

    async def start(
        self, job_id: str, kind: str, label: str | None, started_at: datetime, archive: str | None = None
    ) -> None:
        """The record of a job that begins: running, nothing done yet."""
        doc: dict[str, Any] = {
            "_id": job_id,
            "kind": kind,
            "state": "running",
            "label": label,
            "started_at": started_at,
            "progress": 0.0,
            "services": {},
        }
        if archive is not None:
            doc["archive"] = archive
        await self.col.insert_one(doc)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": job_id})

    async def get_backup(self, backup_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": backup_id, "kind": "backup"})

    async def latest(self, limit: int) -> list[dict[str, Any]]:
        return await self.col.find({}).sort("started_at", -1).limit(limit).to_list()

    async def set_part(self, job_id: str, service: Service, part: dict[str, Any], progress: float) -> None:
        await self.col.update_one(
            {"_id": job_id}, {"$set": {f"services.{service.value}": part, "progress": progress}}
        )

    async def update(self, job_id: str, fields: dict[str, Any]) -> None:
        await self.col.update_one({"_id": job_id}, {"$set": fields})

    async def fail_running(self, error: str, at: datetime) -> None:
        await self.col.update_many(
            {"state": "running"}, {"$set": {"state": "failed", "error": error, "finished_at": at}}
        )
