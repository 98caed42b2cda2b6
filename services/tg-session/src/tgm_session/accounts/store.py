"""The accounts' own collections: the fleet (`accounts`), account groups, tags and personas.

An account's chat memberships are a field of its document (`MEMBER_CHATS`, a list of chat ids,
multikey-indexed): pick-accounts `memberOfChatId` is then one indexed query over `accounts`, and an
account's deletion, a backup or a restore carries its memberships with it (`membership.py`)."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from ..base_store import Doc, Repo

ACCOUNTS = "accounts"
GROUPS = "account_groups"
TAGS = "tags"
PERSONAS = "personas"
#: The account document's field of the chat ids it is known to be a member of (`membership.py`).
MEMBER_CHATS = "member_chats"


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

    async def add_member_chat(self, ident: str, chat_id: int) -> bool:
        """Records that the account is in `chat_id`; False when there is no such account."""
        res = await self.col.update_one({"_id": ident}, {"$addToSet": {MEMBER_CHATS: chat_id}})
        return res.matched_count > 0

    async def add_member_chats(self, ident: str, chat_ids: list[int]) -> None:
        """Records that the account is in each of `chat_ids` (one write)."""
        await self.col.update_one({"_id": ident}, {"$addToSet": {MEMBER_CHATS: {"$each": chat_ids}}})

    async def drop_member_chat(self, ident: str, chat_id: int) -> None:
        await self.col.update_one({"_id": ident}, {"$pull": {MEMBER_CHATS: chat_id}})

    async def members_of(self, chat_id: int) -> list[str]:
        """The ids of the accounts known to be in `chat_id`."""
        docs = await self.find({MEMBER_CHATS: chat_id}, projection={"_id": 1})
        return [d["_id"] for d in docs]

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

    async def update_ids(self, idents: list[str], update: Doc) -> None:
        await self.col.update_many({"_id": {"$in": idents}}, update)

    async def move_group(self, name: str, to: str | None) -> None:
        """The accounts of group `name` move to group `to` (a rename, or None when it is deleted)."""
        await self.col.update_many({"group": name}, {"$set": {"group": to}})

    async def rename_tag(self, old: str, new: str) -> None:
        await self.col.update_many({"tags": old}, {"$addToSet": {"tags": new}})
        await self.col.update_many({"tags": old}, {"$pull": {"tags": old}})

    async def keep_only_tags(self, keep: list[str]) -> None:
        await self.col.update_many({}, {"$pull": {"tags": {"$nin": keep}}})

    async def clear_personas(self, persona_ids: list[str]) -> None:
        await self.col.update_many({"persona_id": {"$in": persona_ids}}, {"$set": {"persona_id": None}})

    async def set_api_id(self, credential_id: str, api_id: int) -> None:
        """The accounts using a credential follow its new api_id."""
        await self.col.update_many({"api_credential_id": credential_id}, {"$set": {"api_id": api_id}})

    async def count_by(self, field: str) -> dict[str, int]:
        """Accounts per value of `field` (group, persona), leaving out those with none."""
        rows = await self.col.aggregate([{"$group": {"_id": f"${field}", "n": {"$sum": 1}}}])
        return {r["_id"]: r["n"] async for r in rows if r["_id"] is not None}

    async def count_tags(self) -> dict[str, int]:
        rows = await self.col.aggregate(
            [{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}]
        )
        return {r["_id"]: r["n"] async for r in rows}


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

    async def save(self, name: str, color: str | None) -> None:
        await self.col.update_one({"_id": name}, {"$set": {"color": color}}, upsert=True)

    async def delete_except(self, keep: list[str]) -> None:
        await self.col.delete_many({"_id": {"$nin": keep}})


class PersonasRepo(NamedRepo):
    name = PERSONAS
