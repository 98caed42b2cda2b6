"""Member extraction jobs (`extractions`) and the users they collected (`collected_users`), and the
fleet's own identities an extraction leaves out (read from `accounts`)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from tgm_contracts.base import utcnow

from ..base_store import Doc, Repo


def digits(phone: str | None) -> str:
    """A phone as its digits only (Telegram shows members' phones without the `+`)."""
    return "".join(c for c in phone or "" if c.isdigit())


async def fleet_identities(accounts: Repo) -> tuple[set[int], set[str]]:
    """The Telegram user ids and phones (digits) of every fleet account: an extraction leaves them out
    unless its filters say `includeFleet`."""
    docs = await accounts.find({}, projection={"phone": 1, "profile.telegram_id": 1})
    ids = {d["profile"]["telegram_id"] for d in docs if (d.get("profile") or {}).get("telegram_id")}
    return ids, {digits(d.get("phone")) for d in docs if d.get("phone")}


EXTRACTIONS = "extractions"
COLLECTED = "collected_users"


class ExtractionsRepo(Repo):
    name = EXTRACTIONS

    async def claim(self, ident: str, runner: str, stale_before: datetime) -> Doc | None:
        return await self.col.find_one_and_update(
            {
                "_id": ident,
                "state": {"$in": ["queued", "running"]},
                "$or": [{"runner": None}, {"runner": runner}, {"runner_seen_at": {"$lt": stale_before}}],
            },
            {"$set": {"runner": runner, "runner_seen_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_if_open(self, ident: str, fields: Doc, *, runner: str | None = None) -> Doc | None:
        """Update a job still queued or running (and run by `runner`, when given); None otherwise."""
        query: Doc = {"_id": ident, "state": {"$in": ["queued", "running"]}}
        if runner is not None:
            query["runner"] = runner
        return await self.col.find_one_and_update(
            query, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    async def let_go(self, ident: str, runner: str) -> None:
        """The runner gives the job up (its account moved): the account's new holder carries on."""
        await self.col.update_one({"_id": ident, "runner": runner}, {"$set": {"runner": None}})


class CollectedRepo(Repo):
    name = COLLECTED

    async def known_ids(self, chat_id: int, user_ids: list[int]) -> set[int]:
        docs = await self.find(
            {"source_chat_id": chat_id, "user_id": {"$in": user_ids}}, projection={"user_id": 1}
        )
        return {d["user_id"] for d in docs}

    async def upsert_many(self, docs: list[Doc]) -> int:
        n = 0
        for doc in docs:
            res = await self.col.update_one({"_id": doc["_id"]}, {"$set": doc}, upsert=True)
            n += 1 if res.upserted_id is not None else 0
        return n
