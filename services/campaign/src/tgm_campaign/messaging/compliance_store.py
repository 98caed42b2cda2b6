"""The `blocked` collection: bans and stop-word opt-outs, one document per user key (see
`compliance.py` for the keys and the stop words)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class ComplianceStore:
    """`blocked`: one document per user key, with a ban and/or an opt-out on it."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["blocked"]

    async def blocked(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """key -> its document, for the keys that are banned or opted out."""
        if not keys:
            return {}
        docs = self.c.find(
            {"_id": {"$in": list(dict.fromkeys(keys))}, "$or": [{"blacklisted": True}, {"opted_out": True}]}
        )
        return {d["_id"]: d async for d in docs}

    async def set_blacklisted(
        self,
        keys: Sequence[str],
        blacklisted: bool,
        *,
        user_id: int | None,
        username: str | None,
        reason: str | None,
        by: str | None,
        at: datetime,
    ) -> None:
        who = {
            **({"user_id": user_id} if user_id is not None else {}),
            **({"username": username} if username else {}),
        }
        changed = {
            "blacklisted": blacklisted,
            "blacklist_reason": reason,
            "blacklist_by": by,
            "blacklist_changed_at": at,
        }
        await self._mark(keys, {**changed, **who}, {"opted_out": False})

    async def opt_out(
        self, keys: Sequence[str], *, user_id: int, account_id: str, stop_word: str, at: datetime
    ) -> bool:
        """Record an opt-out under every key; True when the user had not opted out before."""
        already = await self.c.count_documents({"_id": {"$in": list(keys)}, "opted_out": True})
        changed = {"opted_out": True, "stop_word": stop_word, "opted_out_via": account_id, "opted_out_at": at}
        await self._mark(keys, {**changed, "user_id": user_id}, {"blacklisted": False})
        return already == 0

    async def _mark(self, keys: Sequence[str], set_: dict[str, Any], on_insert: dict[str, Any]) -> None:
        """Set `set_` on the document of every key (created with `on_insert` where there is none)."""
        for key in keys:
            await self.c.update_one({"_id": key}, {"$set": set_, "$setOnInsert": on_insert}, upsert=True)
