"""The accounts' own collections: the fleet (`accounts`), account groups, tags and personas."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from ..base_store import Doc, Repo

ACCOUNTS = "accounts"
GROUPS = "account_groups"
TAGS = "tags"
PERSONAS = "personas"


class AccountsRepo(Repo):
    name = ACCOUNTS

    async def by_phone(self, phone: str) -> Doc | None:
        return await self.col.find_one({"phone": phone})

    async def add(self, doc: Doc) -> Doc | None:
        """Insert; None if the phone is already in the fleet."""
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def count_by_state(self, query: Doc) -> dict[str, int]:
        rows = await self.col.aggregate([{"$match": query}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {r["_id"]: r["n"] async for r in rows}

    async def eligible_ids(self, states: list[str]) -> list[str]:
        docs = await self.find(
            {"session_enc": {"$ne": None}, "state": {"$in": states}}, projection={"_id": 1}
        )
        return [d["_id"] for d in docs]

    async def set_if_holder(self, ident: str, holder: str, fields: Doc) -> bool:
        res = await self.col.update_one({"_id": ident, "holder": holder}, {"$set": fields})
        return res.matched_count > 0

    async def count_by_proxy(self, host: str, port: int, exclude: str | None = None) -> int:
        query: Doc = {"proxy_view.host": host, "proxy_view.port": port}
        if exclude:
            query["_id"] = {"$ne": exclude}
        return await self.count(query)

    async def bump_daily(self, ident: str, day: str) -> None:
        await self.col.update_one({"_id": ident, "daily_send_day": day}, {"$inc": {"daily_send_count": 1}})
        await self.col.update_one(
            {"_id": ident, "daily_send_day": {"$ne": day}},
            {"$set": {"daily_send_day": day, "daily_send_count": 1}},
        )


class NamedRepo(Repo):
    """Records the operator names (account groups, personas): a name is unique case-insensitively,
    kept as `key`."""

    async def by_key(self, key: str) -> Doc | None:
        return await self.col.find_one({"key": key})

    async def current(self, ident: str | None, key: str) -> Doc | None:
        """The record a save refers to: by its id when given, else by its name."""
        return await self.get(ident) if ident else await self.by_key(key)

    async def clash(self, key: str, ident: str) -> Doc | None:
        """Another record already named so."""
        return await self.col.find_one({"key": key, "_id": {"$ne": ident}})

    async def delete_ids(self, idents: list[str]) -> None:
        await self.col.delete_many({"_id": {"$in": idents}})


class GroupsRepo(NamedRepo):
    name = GROUPS


class TagsRepo(Repo):
    name = TAGS


class PersonasRepo(NamedRepo):
    name = PERSONAS
