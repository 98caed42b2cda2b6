"""The `collaboration_runs` store: one document per run (every query of the runs is here).

A run's document:

- `_id` (`col_<hex>`, or a digest of `idempotency_key` when one was given: a second start with the
  same key finds the first run), `status` (`creating`, `running`, `completed`, `stopped`, `failed`),
  `scenario_id`, `script_id`, `script` (the script as it was at start: a run keeps its version),
  `participants` (`[{slot, role_id, role_name, account_id, typing_speed, prompt, persona}]`, copied
  from the roles at start), `target` (`{user_id, username, first_name, last_name, peer}`),
  `lead_id`, `chat` (`{chat_id, title, username}`; null while a new group is being created),
  `new_group` (its spec), `variables`, `start_at`;
- `state`: the script engine's `RunState` (`script_engine.py`); `rev`: bumped by every save, which
  is compare-and-set on it (the runner's round and a target's message never overwrite each other);
- `next_at`: when the runner must look again with nothing happening (null: only an event or a
  settled job moves it); `pending_job`: the job id of the line waiting to settle;
- `transcript`: the last `TRANSCRIPT` lines and replies (`{who, slot, text, at}`), what an AI line
  is written from; `messages_total`, `last_error`, `created_at`, `started_at`, `finished_at`,
  `updated_at`; `group_attempt_at` while a new group is being created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from tgm_runtime.counts import cached_count

from ..automation.group_store import MonitoredGroupStore
from ..automation.status_store import insert_new

RUNS = "collaboration_runs"

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    RUNS: [
        ([("status", ASCENDING), ("next_at", ASCENDING)], {"name": "due"}),
        ([("chat.chat_id", ASCENDING), ("status", ASCENDING)], {"name": "by_chat"}),
        ([("scenario_id", ASCENDING), ("status", ASCENDING)], {"name": "by_scenario"}),
        ([("script_id", ASCENDING), ("status", ASCENDING)], {"name": "by_script"}),
        ([("participants.role_id", ASCENDING), ("status", ASCENDING)], {"name": "by_role"}),
        ([("lead_id", ASCENDING), ("created_at", DESCENDING)], {"name": "by_lead"}),
        ([("created_at", DESCENDING), ("_id", DESCENDING)], {"name": "newest"}),
    ]
}

#: statuses of a run that still uses its scenario, script and roles
ACTIVE_STATUSES = ("creating", "inviting", "running", "paused")

TRANSCRIPT = 30
"""Lines and replies kept in a run's document (oldest dropped)."""


async def ids_using(
    collection: AsyncCollection[Any], field: str, entity_id: str, statuses: Sequence[str]
) -> list[str]:
    """Ids (at most 100) of the documents in `statuses` whose `field` names `entity_id`."""
    docs = await collection.find({field: entity_id, "status": {"$in": list(statuses)}}, {"_id": 1}).to_list(
        100
    )
    return [str(d["_id"]) for d in docs]


class RunStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.c = db[RUNS]
        self.groups = MonitoredGroupStore(db)  # automation's, read only

    async def active_using(self, kind: str, entity_id: str) -> list[str]:
        """Ids of runs not yet finished that use the `kind` ("role", "script" or "scenario") `entity_id`
        (the library refuses to delete it then). Reads `status`, `scenario_id`, `script_id` and
        `participants[].role_id` of the `collaboration_runs` documents."""
        field = {"role": "participants.role_id", "script": "script_id", "scenario": "scenario_id"}[kind]
        return await ids_using(self.c, field, entity_id, ACTIVE_STATUSES)

    async def active_per_scenario(self, scenario_ids: Sequence[str]) -> dict[str, int]:
        """scenario id -> how many runs not yet finished play it: one query for a list of scenarios
        (get-scenarios of 1,000 asked once per scenario and took 1.1 s, `bench/lists`)."""
        out = dict.fromkeys(scenario_ids, 0)
        if not scenario_ids:
            return out
        docs = await self.c.find(
            {"scenario_id": {"$in": list(out)}, "status": {"$in": list(ACTIVE_STATUSES)}}, {"scenario_id": 1}
        ).to_list()
        for d in docs:
            if d.get("scenario_id") in out:
                out[d["scenario_id"]] += 1
        return out

    async def insert(self, doc: Mapping[str, Any]) -> bool:
        """False when a run with this id (the same idempotency key) exists."""
        return await insert_new(self.c, doc)

    async def get(self, run_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": run_id})

    async def save(self, run_id: str, rev: int, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Compare-and-set on `rev`: the updated document, or None when another writer came first."""
        return await self.c.find_one_and_update(
            {"_id": run_id, "rev": rev},
            {"$set": dict(fields), "$inc": {"rev": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def remember(self, run_id: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """Append to the run's transcript (bounded); not part of the state, so not compare-and-set."""
        if entries:
            await self.c.update_one(
                {"_id": run_id},
                {"$push": {"transcript": {"$each": [dict(e) for e in entries], "$slice": -TRANSCRIPT}}},
            )

    async def due(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Active runs the runner must look at: due now, with a line waiting to settle, or a group to
        create (when `next_at` has come: a create-group refused with FLOOD_WAIT waits it out)."""
        return (
            await self.c.find(
                {
                    "status": {"$in": list(ACTIVE_STATUSES)},
                    "$or": [
                        {"next_at": {"$lte": now}},
                        {"pending_job": {"$ne": None}},
                        {"status": "creating", "next_at": None},
                    ],
                }
            )
            .sort("next_at", ASCENDING)
            .to_list(limit)
        )

    async def active(self, limit: int = 5000) -> list[dict[str, Any]]:
        return await self.c.find({"status": {"$in": list(ACTIVE_STATUSES)}}).to_list(limit)

    async def active_chat_ids(self) -> set[int]:
        ids = await self.c.distinct("chat.chat_id", {"status": {"$in": list(ACTIVE_STATUSES)}})
        return {int(i) for i in ids if isinstance(i, int)}

    async def in_chat(self, chat_id: int) -> list[dict[str, Any]]:
        return await self.c.find({"chat.chat_id": chat_id, "status": {"$in": list(ACTIVE_STATUSES)}}).to_list(
            100
        )

    async def set_pending_job(self, run_id: str, key: str, job_id: str) -> bool:
        """Record the job of the pending line `key` (False: the run has moved on from that line)."""
        result = await self.c.update_one(
            {"_id": run_id, "status": "running", "state.pending.key": key},
            {"$set": {"state.pending.job_id": job_id, "pending_job": job_id}, "$inc": {"rev": 1}},
        )
        return result.matched_count == 1

    async def monitored_group(self, username: str) -> dict[str, Any] | None:
        """A monitored group (automation's, through its store) by its username, with its chat id."""
        return await self.groups.resolved_by_username(username)

    async def count_active(self, scenario_id: str) -> int:
        return await self.c.count_documents(
            {"scenario_id": scenario_id, "status": {"$in": list(ACTIVE_STATUSES)}}
        )

    async def page(
        self,
        query: Mapping[str, Any],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first; `after` is the (created_at, _id) of the previous page's last run."""
        q = dict(query)
        total = await cached_count(self.c, q)
        if after is not None:
            at, rid = after
            q = {"$and": [q, {"$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": rid}}]}]}
        docs = (
            await self.c.find(q, {"transcript": 0})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .to_list(limit)
        )
        return docs, total
