"""The `pauses` collection: queue pauses (all, an account, a campaign), timed or until resumed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts.models.campaign import PauseView


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


class PauseStore:
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
