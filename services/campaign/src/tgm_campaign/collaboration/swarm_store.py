"""PLACEHOLDER (being written): the `swarms` store of collaboration."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}


#: statuses of a swarm that still uses its roles and script
ACTIVE_STATUSES = ("starting", "running", "stopping")


class SwarmStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db

    async def active_using(self, kind: str, entity_id: str) -> list[str]:
        """Ids of swarms not yet stopped that use the `kind` ("role", "script"; "scenario": none)
        `entity_id` (the library refuses to delete it then). Reads `status`, `role_ids` and
        `script_id` of the `swarms` documents."""
        field = {"role": "role_ids", "script": "script_id"}.get(kind)
        if field is None:
            return []
        docs = (
            await self.db["swarms"]
            .find({field: entity_id, "status": {"$in": list(ACTIVE_STATUSES)}}, {"_id": 1})
            .to_list(100)
        )
        return [str(d["_id"]) for d in docs]
