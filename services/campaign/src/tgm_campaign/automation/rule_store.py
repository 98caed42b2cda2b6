"""PLACEHOLDER (being written): the `trigger_rules` store of automation."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}


class TriggerRuleStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db

    async def using_set(self, set_id: str) -> list[str]:
        """Ids of the rules that use a keyword set (delete-keyword-set's "in use" check)."""
        docs = await self.db["trigger_rules"].find({"keyword_set_ids": set_id}, {"_id": 1}).to_list()
        return [d["_id"] for d in docs]

    async def detach_set(self, set_id: str) -> int:
        """Remove a keyword set from every rule (delete-keyword-set with force); a rule left with no
        set is deactivated (`is_active` False). The number of rules changed."""
        rules = self.db["trigger_rules"]
        ids = await self.using_set(set_id)
        if not ids:
            return 0
        await rules.update_many({"_id": {"$in": ids}}, {"$pull": {"keyword_set_ids": set_id}})
        await rules.update_many(
            {"_id": {"$in": ids}, "keyword_set_ids": {"$size": 0}}, {"$set": {"is_active": False}}
        )
        return len(ids)
