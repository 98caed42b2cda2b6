"""Collections of the reports feature: `report_schedules` and `reports` (generated files).

A stored report keeps the file as generated (bytes plus the ExportFile fields) and the response object
it was made from as JSON text, so `export-report reportId` can hand back the file, or the same figures
in another format. The last `keep` reports of each schedule are kept.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from tgm_contracts.models.analytics import ExportFile

SCHEDULES = "report_schedules"
REPORTS = "reports"


async def create_indexes(db: Any) -> None:
    """Migration 2: report schedules (by due time) and stored reports (by schedule, newest first)."""
    await db[SCHEDULES].create_index([("enabled", ASCENDING), ("next_run_at", ASCENDING)], name="due")
    await db[REPORTS].create_index(
        [("schedule_id", ASCENDING), ("generated_at", DESCENDING)], name="by_schedule"
    )


class ScheduleRepo:
    def __init__(self, db: Any) -> None:
        self.col = db[SCHEDULES]

    async def insert(self, doc: dict[str, Any]) -> None:
        await self.col.insert_one(doc)

    async def get(self, schedule_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": schedule_id})

    async def replace(self, doc: dict[str, Any]) -> None:
        await self.col.replace_one({"_id": doc["_id"]}, doc)

    async def delete(self, schedule_id: str) -> bool:
        return (await self.col.delete_one({"_id": schedule_id})).deleted_count == 1

    async def all(self) -> list[dict[str, Any]]:
        return await self.col.find({}).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).to_list()

    async def due(self, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
        return (
            await self.col.find({"enabled": True, "next_run_at": {"$lte": now}})
            .sort([("next_run_at", ASCENDING)])
            .limit(limit)
            .to_list()
        )

    async def claim(self, doc: dict[str, Any], next_run_at: datetime | None, now: datetime) -> bool:
        """Move a due schedule to its next run (None parks it); only one replica's conditional update
        matches."""
        res = await self.col.update_one(
            {"_id": doc["_id"], "enabled": True, "next_run_at": doc["next_run_at"]},
            {"$set": {"next_run_at": next_run_at, "last_claimed_at": now}},
        )
        return res.modified_count == 1

    async def finished(
        self, schedule_id: str, *, at: datetime, report_id: str | None, error: str | None
    ) -> dict[str, Any] | None:
        changes: dict[str, Any] = {"last_run_at": at, "last_error": error}
        if report_id is not None:
            changes["last_report_id"] = report_id
        return await self.col.find_one_and_update(
            {"_id": schedule_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
        )


class ReportRepo:
    def __init__(self, db: Any) -> None:
        self.col = db[REPORTS]

    async def save(
        self,
        report_id: str,
        file: ExportFile,
        *,
        schedule_id: str | None,
        kind: str,
        since: datetime,
        until: datetime,
        bucket: str,
        timezone: str,
        data_json: str,
    ) -> None:
        await self.col.insert_one(
            {
                "_id": report_id,
                "schedule_id": schedule_id,
                "report": kind,
                "since": since,
                "until": until,
                "bucket": bucket,
                "timezone": timezone,
                "format": file.format,
                "filename": file.filename,
                "mime_type": file.mime_type,
                "rows": file.rows,
                "size_bytes": file.size_bytes,
                "sha256": file.sha256,
                "content": Binary(file.content()),
                "truncated": file.truncated,
                "generated_at": file.generated_at,
                "data_json": data_json,
                "delivered": [],
                "failed": [],
            }
        )

    async def deliveries(self, report_id: str, delivered: list[str], failed: list[str]) -> None:
        await self.col.update_one({"_id": report_id}, {"$set": {"delivered": delivered, "failed": failed}})

    async def get(self, report_id: str) -> dict[str, Any] | None:
        return await self.col.find_one({"_id": report_id})

    async def prune(self, schedule_id: str, keep: int) -> int:
        """Delete all but the newest `keep` reports of a schedule."""
        old = (
            await self.col.find({"schedule_id": schedule_id}, {"_id": 1})
            .sort([("generated_at", DESCENDING), ("_id", DESCENDING)])
            .skip(keep)
            .to_list()
        )
        if not old:
            return 0
        return (await self.col.delete_many({"_id": {"$in": [d["_id"] for d in old]}})).deleted_count

    async def delete_of(self, schedule_id: str) -> int:
        return (await self.col.delete_many({"schedule_id": schedule_id})).deleted_count


def stored_file(doc: dict[str, Any]) -> ExportFile:
    """A stored report's file (its fields keep the ExportFile names; the bytes are `content`)."""
    return ExportFile.model_validate(
        {**doc, "content_base64": base64.b64encode(bytes(doc["content"])).decode()}
    )
