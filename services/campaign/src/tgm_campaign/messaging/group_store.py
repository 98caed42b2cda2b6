"""The `groups` collection, read only: monitored groups (written by the automation part of this
service, still to come)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class GroupStore:
    """Monitored groups (automation part of this service): `_id` the group id, `chat_id` Telegram's."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["groups"]

    async def get(self, group_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": group_id})

    async def by_chat_id(self, chat_id: int) -> dict[str, Any] | None:
        """The monitored group of a Telegram chat (id and title only)."""
        return await self.c.find_one({"chat_id": chat_id}, {"_id": 1, "title": 1})
