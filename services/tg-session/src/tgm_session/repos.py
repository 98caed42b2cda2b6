"""Repositories over tg-session's own database (`rt.db`). Use cases never touch a collection directly.

Secrets are stored only as `enc:v1:…` tokens (sessions, API hashes, proxy passwords), sealed with the
runtime's master key and bound to the owning record's id, so a token copied onto another record
does not decrypt.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_contracts.base import utcnow

Doc = dict[str, Any]

ACCOUNTS = "accounts"
CREDENTIALS = "api_credentials"
GROUPS = "account_groups"
TAGS = "tags"
PERSONAS = "personas"
CODE_LOGINS = "code_logins"
QR_LOGINS = "qr_logins"
SENDS = "sends"
EXTRACTIONS = "extractions"
COLLECTED = "collected_users"
CREATED_GROUPS = "created_groups"
IP_CHANGES = "ip_changes"
SCRAPES = "credential_scrapes"
PEERS = "peers"


class Vault:
    """Seals and opens secrets with the runtime's SecretBox (AES-GCM, key id, bound context)."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def seal(self, text: str, context: str) -> str:
        return self.box.encrypt(text, context=context)

    def open(self, token: str, context: str) -> str:
        return self.box.decrypt(token, context=context)

    def seal_json(self, data: dict[str, Any], context: str) -> str:
        return self.seal(json.dumps(data, separators=(",", ":")), context)

    def open_json(self, token: str, context: str) -> dict[str, Any]:
        return json.loads(self.open(token, context))


class Repo:
    name: str

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.col = db[self.name]

    async def get(self, ident: str) -> Doc | None:
        return await self.col.find_one({"_id": ident})

    async def insert(self, doc: Doc) -> Doc:
        await self.col.insert_one(doc)
        return doc

    async def set(self, ident: str, fields: Doc, unset: list[str] | None = None) -> Doc | None:
        update: Doc = {"$set": {**fields, "updated_at": utcnow()}}
        if unset:
            update["$unset"] = {k: "" for k in unset}
        return await self.col.find_one_and_update(
            {"_id": ident}, update, return_document=ReturnDocument.AFTER
        )

    async def delete(self, ident: str) -> bool:
        return (await self.col.delete_one({"_id": ident})).deleted_count > 0

    async def find(
        self,
        query: Doc,
        *,
        sort: list[tuple[str, int]] | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Doc | None = None,
    ) -> list[Doc]:
        cursor = self.col.find(query, projection)
        if sort:
            cursor = cursor.sort(sort)
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return await cursor.to_list(None)

    async def count(self, query: Doc) -> int:
        return await self.col.count_documents(query)


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


class GroupsRepo(Repo):
    name = GROUPS


class TagsRepo(Repo):
    name = TAGS


class PersonasRepo(Repo):
    name = PERSONAS


class LockedRepo(Repo):
    """Records one step at a time works on (a login in progress), across replicas."""

    async def lock(self, ident: str, seconds: float) -> Doc | None:
        now = utcnow()
        from datetime import timedelta

        return await self.col.find_one_and_update(
            {"_id": ident, "$or": [{"lock_until": None}, {"lock_until": {"$lt": now}}]},
            {"$set": {"lock_until": now + timedelta(seconds=seconds)}},
            return_document=ReturnDocument.AFTER,
        )

    async def unlock(self, ident: str) -> None:
        await self.col.update_one({"_id": ident}, {"$set": {"lock_until": None}})


class CodeLoginsRepo(LockedRepo):
    name = CODE_LOGINS


class QrLoginsRepo(Repo):
    name = QR_LOGINS


class SendsRepo(Repo):
    name = SENDS

    async def claim(self, job_id: str, doc: Doc) -> Doc | None:
        """Record that a job is being sent; the existing record when the job id is known already."""
        try:
            await self.col.insert_one({"_id": job_id, **doc})
        except DuplicateKeyError:
            return await self.get(job_id)
        return None


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


class CreatedGroupsRepo(Repo):
    name = CREATED_GROUPS


class IpChangesRepo(Repo):
    name = IP_CHANGES


class ScrapesRepo(Repo):
    name = SCRAPES

    async def push_log(self, ident: str, line: Doc, fields: Doc | None = None) -> Doc | None:
        update: Doc = {"$push": {"log": line}, "$set": {"updated_at": utcnow(), **(fields or {})}}
        return await self.col.find_one_and_update(
            {"_id": ident}, update, return_document=ReturnDocument.AFTER
        )


class PeersRepo(Repo):
    """What each account learnt about peers (access hashes are per account): lets a new holder reach
    an id it never saw itself."""

    name = PEERS


class Repos:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.accounts = AccountsRepo(db)
        self.credentials = CredentialsRepo(db)
        self.groups = GroupsRepo(db)
        self.tags = TagsRepo(db)
        self.personas = PersonasRepo(db)
        self.code_logins = CodeLoginsRepo(db)
        self.qr_logins = QrLoginsRepo(db)
        self.sends = SendsRepo(db)
        self.extractions = ExtractionsRepo(db)
        self.collected = CollectedRepo(db)
        self.created_groups = CreatedGroupsRepo(db)
        self.ip_changes = IpChangesRepo(db)
        self.scrapes = ScrapesRepo(db)
        self.peers = PeersRepo(db)


async def create_indexes(db: AsyncDatabase[Any]) -> None:
    await db[ACCOUNTS].create_index("phone", unique=True)
    await db[ACCOUNTS].create_index([("state", ASCENDING), ("created_at", ASCENDING)])
    await db[ACCOUNTS].create_index("group")
    await db[ACCOUNTS].create_index("tags")
    await db[ACCOUNTS].create_index("api_credential_id")
    await db[CREDENTIALS].create_index("api_id", unique=True)
    await db[GROUPS].create_index("key", unique=True)
    await db[PERSONAS].create_index("key", unique=True)
    await db[SENDS].create_index([("account_id", ASCENDING), ("sent_at", DESCENDING)])
    await db[EXTRACTIONS].create_index([("state", ASCENDING), ("account_id", ASCENDING)])
    await db[COLLECTED].create_index([("source_chat_id", ASCENDING), ("user_id", ASCENDING)])
    await db[COLLECTED].create_index([("job_id", ASCENDING), ("collected_at", DESCENDING)])
    await db[CREATED_GROUPS].create_index([("account_id", ASCENDING), ("created_at", DESCENDING)])
    await db[IP_CHANGES].create_index([("at", DESCENDING)])
    await db[SCRAPES].create_index([("account_id", ASCENDING), ("started_at", DESCENDING)])
