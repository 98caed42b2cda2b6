"""The `tailchat_deliveries` collection: one document per callback delivery published, so a repeated
delivery is published once even after JetStream's two-minute `Nats-Msg-Id` window.

`_id` = `<appId>:<dedupe key>` (inbound/parse.py), with app_id, kind, event_id, trace_id (a press)
and received_at; kept 48 hours by a TTL index (Tailchat itself never retries a callback: a repeat
comes from a proxy or a replay, soon after the first). Nothing of the
message itself (text, people) is stored here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

DELIVERIES = "tailchat_deliveries"
KEEP_HOURS = 48


async def create_indexes(db: Any) -> None:
    """Migration 3: deliveries expire after KEEP_HOURS."""
    await db[DELIVERIES].create_index(
        [("received_at", ASCENDING)], name="received_ttl", expireAfterSeconds=KEEP_HOURS * 3600
    )


class DeliveryStore:
    def __init__(self, db: Any) -> None:
        self.col = db[DELIVERIES]

    async def claim(self, app_id: str, key: str, fields: dict[str, Any], now: datetime) -> bool:
        """Record the delivery; False when it was recorded before (a duplicate)."""
        try:
            await self.col.insert_one(
                {"_id": f"{app_id}:{key}", "app_id": app_id, **fields, "received_at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def received_at(self, app_id: str, key: str) -> datetime | None:
        """When the delivery with this key arrived; None when it did not (or was forgotten)."""
        doc = await self.col.find_one({"_id": f"{app_id}:{key}"}, {"received_at": 1})
        if doc is None:
            return None
        at: datetime = doc["received_at"]
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    async def release(self, app_id: str, key: str) -> None:
        """Forget a claimed delivery whose event was not published, so a repeat is not dropped."""
        await self.col.delete_one({"_id": f"{app_id}:{key}"})

    async def forget_app(self, app_id: str) -> int:
        result = await self.col.delete_many({"app_id": app_id})
        return int(result.deleted_count)
