"""The `tailchat_messages` collection: the last content and meta sent for each message the bot sent,
`_id` = `<appId>:<messageId>`, so an edit can send its meta again (Tailchat replaces the whole meta on
edit). Each document expires `message_memory_days` after its last write (`expires_at`, a TTL index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

MESSAGES = "tailchat_messages"


async def create_indexes(db: Any) -> None:
    """Migration 2: expiry, and an app's messages (forgotten with the app)."""
    await db[MESSAGES].create_index([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0)
    await db[MESSAGES].create_index([("app_id", ASCENDING)], name="app")


class MessageStore:
    def __init__(self, db: Any) -> None:
        self.col = db[MESSAGES]

    async def remember(
        self, app_id: str, message_id: str, fields: dict[str, Any], expires_at: datetime
    ) -> None:
        await self.col.update_one(
            {"_id": f"{app_id}:{message_id}"},
            {"$set": {**fields, "app_id": app_id, "message_id": message_id, "expires_at": expires_at}},
            upsert=True,
        )

    async def get(self, app_id: str, message_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.col.find_one({"_id": f"{app_id}:{message_id}"})
        return doc

    async def forget(self, app_id: str, message_id: str) -> None:
        await self.col.delete_one({"_id": f"{app_id}:{message_id}"})

    async def forget_app(self, app_id: str) -> int:
        result = await self.col.delete_many({"app_id": app_id})
        return int(result.deleted_count)


SENDS = "tailchat_sends"


async def create_send_indexes(db: Any) -> None:
    """Migration 4: the sends by idempotency key expire; an app's go with it."""
    await db[SENDS].create_index([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0)
    await db[SENDS].create_index([("app_id", ASCENDING)], name="app")


class SendStore:
    """The `tailchat_sends` collection: one document per (app, idempotency key) of `send-channel-reply`,
    `_id` = `<appId>:<key>`: `state` `sending` (claimed, the call under way or its outcome unknown)
    then `sent` with the message's view. It expires `message_memory_days` after the claim."""

    def __init__(self, db: Any) -> None:
        self.col = db[SENDS]

    async def claim(self, app_id: str, key: str, at: datetime, expires_at: datetime) -> dict[str, Any] | None:
        """None when this call claimed the key; else the document of the earlier claim."""
        doc = {
            "_id": f"{app_id}:{key}",
            "app_id": app_id,
            "key": key,
            "state": "sending",
            "claimed_at": at,
            "expires_at": expires_at,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            found: dict[str, Any] | None = await self.col.find_one({"_id": doc["_id"]})
            return found or doc
        return None

    async def sent(self, app_id: str, key: str, view: dict[str, Any]) -> None:
        await self.col.update_one({"_id": f"{app_id}:{key}"}, {"$set": {"state": "sent", "view": view}})

    async def release(self, app_id: str, key: str) -> None:
        """The send surely did not happen (the server refused it): a repeat may try again."""
        await self.col.delete_one({"_id": f"{app_id}:{key}", "state": "sending"})

    async def forget_app(self, app_id: str) -> int:
        result = await self.col.delete_many({"app_id": app_id})
        return int(result.deleted_count)
