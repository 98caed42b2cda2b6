"""The `tailchat_apps` collection: one document per registered app, `_id` = its appId.

Fields: name, server_url, secret_enc (`enc:v1:…`, AES-GCM with the appId bound as associated data, so
a ciphertext moved to another app's document does not decrypt), bot_user_id, bot_nickname, status,
last_error, last_checked_at, callback_token_hash (SHA-256 hex of the URL token; the token itself is
never stored), callback_token_rotated_at, created_at, updated_at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument

APPS = "tailchat_apps"


async def create_indexes(db: Any) -> None:
    """Migration 1: callback token hashes are unique. (A callback is found by its app id in the path and
    its hash compared in constant time, `AppService.callback_app`, not looked up by the hash.)"""
    await db[APPS].create_index(
        [("callback_token_hash", ASCENDING)],
        name="callback_token",
        unique=True,
        partialFilterExpression={"callback_token_hash": {"$type": "string"}},
    )


class AppStore:
    def __init__(self, db: Any) -> None:
        self.col = db[APPS]

    async def upsert(self, app_id: str, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        doc: dict[str, Any] = await self.col.find_one_and_update(
            {"_id": app_id},
            {"$set": {**fields, "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def get(self, app_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.col.find_one({"_id": app_id})
        return doc

    async def all(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.col.find({}).sort("_id", ASCENDING)]

    async def update(self, app_id: str, fields: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.col.find_one_and_update(
            {"_id": app_id},
            {"$set": {**fields, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        return doc

    async def remove(self, app_id: str) -> int:
        result = await self.col.delete_one({"_id": app_id})
        return int(result.deleted_count)
