"""The `tailchat_messages` collection: the last content and meta sent for each message the bot sent,
`_id` = `<appId>:<messageId>`, so an edit can send its meta again (Tailchat replaces the whole meta on
edit). Each document expires `message_memory_days` after its last write (`expires_at`, a TTL index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

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
