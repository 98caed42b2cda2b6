"""Small repositories of the messaging domain: templates, queue pauses, leases, and read access to
monitored groups (written by the automation part of this service). `Leads` is the CRM store
(`crm/leads.py`), re-exported here for the queue."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_contracts.models.campaign import PauseView, TemplateView

from ..crm.leads import Leads  # the CRM store owns the `leads` shape; the queue uses it
from .queue import decode_cursor, encode_cursor

# --- templates -----------------------------------------------------------------------------------


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


class TemplateRepo:
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

    async def used(self, template_id: str, now: datetime, jobs: int) -> None:
        await self.c.update_one(
            {"_id": template_id}, {"$inc": {"usage_count": jobs}, "$set": {"last_used_at": now}}
        )

    async def outcome(self, template_id: str, sent: bool) -> None:
        await self.c.update_one({"_id": template_id}, {"$inc": {"sent_count" if sent else "failed_count": 1}})


# --- pauses --------------------------------------------------------------------------------------


def pause_id(scope: str, account_id: str | None, campaign_id: str | None) -> str:
    return {"all": "all", "account": f"account:{account_id}", "campaign": f"campaign:{campaign_id}"}[scope]


def pause_view(doc: Mapping[str, Any]) -> PauseView:
    return PauseView(
        scope=doc["scope"],
        account_id=doc.get("account_id"),
        campaign_id=doc.get("campaign_id"),
        paused_at=doc["paused_at"],
        until=doc.get("until"),
        reason=doc.get("reason"),
        by=doc.get("by"),
    )


class Pauses:
    """The pauses in force, as the scheduler needs them."""

    def __init__(self, docs: Iterable[Mapping[str, Any]]) -> None:
        self.docs = list(docs)
        self.all = any(d["scope"] == "all" for d in self.docs)
        self.accounts = {d["account_id"] for d in self.docs if d["scope"] == "account"}
        self.campaigns = {d["campaign_id"] for d in self.docs if d["scope"] == "campaign"}

    def next_end(self) -> datetime | None:
        ends = [d["until"] for d in self.docs if d.get("until") is not None]
        return min(ends) if ends else None

    def covers(self, job: Mapping[str, Any]) -> bool:
        if self.all:
            return True
        if job.get("campaign_id") in self.campaigns:
            return True
        fixed = job.get("fixed") or job.get("pinned")
        return bool(fixed and job.get("account_id") in self.accounts)


class PauseRepo:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["pauses"]

    async def pause(
        self,
        scope: str,
        account_id: str | None,
        campaign_id: str | None,
        *,
        until: datetime | None,
        reason: str | None,
        by: str | None,
        now: datetime,
    ) -> None:
        await self.c.update_one(
            {"_id": pause_id(scope, account_id, campaign_id)},
            {
                "$set": {
                    "scope": scope,
                    "account_id": account_id,
                    "campaign_id": campaign_id,
                    "until": until,
                    "reason": reason,
                    "by": by,
                },
                "$setOnInsert": {"paused_at": now},
            },
            upsert=True,
        )

    async def resume(self, scope: str, account_id: str | None, campaign_id: str | None) -> bool:
        result = await self.c.delete_one({"_id": pause_id(scope, account_id, campaign_id)})
        return result.deleted_count == 1

    async def active(self, now: datetime) -> Pauses:
        docs = await self.c.find({}).to_list()
        return Pauses(d for d in docs if d.get("until") is None or d["until"] > now)

    async def lapsed(self, now: datetime) -> list[dict[str, Any]]:
        """Timed pauses whose end has come, removed; returns them (for their events)."""
        docs = await self.c.find({"until": {"$ne": None, "$lte": now}}).to_list()
        gone = []
        for d in docs:
            if (await self.c.delete_one({"_id": d["_id"], "until": d["until"]})).deleted_count:
                gone.append(d)
        return gone


# --- leases (one replica does the periodic chores) -----------------------------------------------


class Leases:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["leases"]

    async def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease `name`; True while `owner` holds it."""
        result = await self.c.update_one(
            {"_id": name, "$or": [{"owner": owner}, {"until": {"$lt": now}}]},
            {"$set": {"owner": owner, "until": until}},
        )
        if result.matched_count:
            return True
        try:
            await self.c.insert_one({"_id": name, "owner": owner, "until": until})
            return True
        except DuplicateKeyError:
            return False

    async def release(self, name: str, owner: str) -> None:
        await self.c.delete_one({"_id": name, "owner": owner})


# --- monitored groups (read) --------------------------------------------------------------------


class Groups:
    """Monitored groups (automation part of this service): `_id` the group id, `chat_id` Telegram's."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["groups"]

    async def get(self, group_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": group_id})


__all__ = [
    "Groups",
    "Leads",
    "Leases",
    "PauseRepo",
    "Pauses",
    "StaleTemplate",
    "TemplateNameTaken",
    "TemplateRepo",
    "decode_cursor",
    "encode_cursor",
    "pause_view",
    "template_view",
]
