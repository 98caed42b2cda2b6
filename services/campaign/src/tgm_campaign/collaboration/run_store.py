"""PLACEHOLDER (being written): the `collaboration_runs` store of collaboration."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}


#: statuses of a run that still uses its scenario, script and roles
ACTIVE_STATUSES = ("creating", "inviting", "running", "paused")


class RunStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db

    async def active_using(self, kind: str, entity_id: str) -> list[str]:
        """Ids of runs not yet finished that use the `kind` ("role", "script" or "scenario") `entity_id`
        (the library refuses to delete it then). Reads `status`, `scenario_id`, `script_id` and
        `participants[].role_id` of the `collaboration_runs` documents."""
        field = {"role": "participants.role_id", "script": "script_id", "scenario": "scenario_id"}[kind]
        docs = (
            await self.db["collaboration_runs"]
            .find({field: entity_id, "status": {"$in": list(ACTIVE_STATUSES)}}, {"_id": 1})
            .to_list(100)
        )
        return [str(d["_id"]) for d in docs]
