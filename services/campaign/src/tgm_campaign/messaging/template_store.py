"""The `templates` collection: message templates with their usage and success counters."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_contracts.models.campaign import TemplateView


class TemplateNameTaken(Exception):
    pass


class StaleTemplate(Exception):
    pass


def template_view(doc: Mapping[str, Any]) -> TemplateView:
    sent, failed = doc.get("sent_count", 0), doc.get("failed_count", 0)
    return TemplateView(
        id=doc["_id"],
        name=doc["name"],
        category=doc.get("category", "custom"),
        content=doc["content"],
        variables=doc.get("variables") or [],
        is_active=doc.get("is_active", True),
        usage_count=doc.get("usage_count", 0),
        success_rate=(sent / (sent + failed)) if sent + failed else None,
        last_used_at=doc.get("last_used_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class TemplateStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["templates"]

    async def create(self, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        doc = {
            "_id": "t" + uuid.uuid4().hex[:16],
            **fields,
            "name_key": fields["name"].casefold(),
            "usage_count": 0,
            "sent_count": 0,
            "failed_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.c.insert_one(doc)
        except DuplicateKeyError:
            raise TemplateNameTaken(fields["name"]) from None
        return doc

    async def update(
        self, template_id: str, fields: Mapping[str, Any], now: datetime, expected: datetime | None
    ) -> dict[str, Any] | None:
        query: dict[str, Any] = {"_id": template_id}
        if expected is not None:
            query["updated_at"] = expected
        try:
            doc = await self.c.find_one_and_update(
                query,
                {"$set": {**fields, "name_key": fields["name"].casefold(), "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise TemplateNameTaken(fields["name"]) from None
        if doc is None and expected is not None and await self.get(template_id) is not None:
            raise StaleTemplate(template_id)
        return doc

    async def get(self, template_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": template_id})

    async def delete(self, template_id: str) -> bool:
        return (await self.c.delete_one({"_id": template_id})).deleted_count == 1

    async def set_active(self, template_id: str, active: bool | None, now: datetime) -> dict[str, Any] | None:
        doc = await self.get(template_id)
        if doc is None:
            return None
        value = (not doc.get("is_active", True)) if active is None else active
        await self.c.update_one({"_id": template_id}, {"$set": {"is_active": value, "updated_at": now}})
        return await self.get(template_id)

    async def find(
        self,
        *,
        category: str | None,
        active_only: bool,
        search: str | None,
        ids: list[str] | None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if category:
            query["category"] = category
        if active_only:
            query["is_active"] = True
        if ids:
            query["_id"] = {"$in": ids}
        if search:
            rx = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"name": rx}, {"content": rx}]
        return await self.c.find(query).sort([("name_key", ASCENDING)]).to_list()

    async def counts(self) -> tuple[int, int]:
        """(templates, active ones): automation's get-system-status."""
        return await self.c.count_documents({}), await self.c.count_documents({"is_active": True})

    async def used(self, template_id: str, now: datetime, jobs: int) -> None:
        await self.c.update_one(
            {"_id": template_id}, {"$inc": {"usage_count": jobs}, "$set": {"last_used_at": now}}
        )

    async def outcome(self, template_id: str, sent: bool) -> None:
        await self.c.update_one({"_id": template_id}, {"$inc": {"sent_count" if sent else "failed_count": 1}})
