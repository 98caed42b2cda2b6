"""The API credential pool (`api_credentials`) and the developer-site scrapes (`credential_scrapes`)."""

from __future__ import annotations

from pymongo import ASCENDING, ReturnDocument
from tgm_contracts.base import utcnow

from ..base_store import Doc, Repo

CREDENTIALS = "api_credentials"
SCRAPES = "credential_scrapes"


class CredentialsRepo(Repo):
    name = CREDENTIALS

    async def by_api_id(self, api_id: int) -> Doc | None:
        return await self.col.find_one({"api_id": api_id})

    async def take_slot(self, ident: str | None = None) -> Doc | None:
        """Atomically take one account slot: of `ident`, or of the least used active credential."""
        query: Doc = {"is_active": True, "free_slots": {"$gt": 0}}
        if ident is not None:
            query["_id"] = ident
        return await self.col.find_one_and_update(
            query,
            {"$inc": {"free_slots": -1, "in_use": 1}},
            sort=[("in_use", ASCENDING), ("created_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def give_back(self, ident: str, n: int = 1) -> None:
        await self.col.update_one({"_id": ident}, {"$inc": {"free_slots": n, "in_use": -n}})


class ScrapesRepo(Repo):
    name = SCRAPES

    async def push_log(self, ident: str, line: Doc, fields: Doc | None = None) -> Doc | None:
        update: Doc = {"$push": {"log": line}, "$set": {"updated_at": utcnow(), **(fields or {})}}
        return await self.col.find_one_and_update(
            {"_id": ident}, update, return_document=ReturnDocument.AFTER
        )
