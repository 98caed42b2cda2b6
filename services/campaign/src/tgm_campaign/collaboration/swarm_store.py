"""The `swarms` and `swarm_claims` collections of collaboration.

- `swarms`: one document per swarm: `spec` (the `SwarmSpec` as given, snake_case), `status`,
  `role_ids`/`script_id`/`group_id` at the top (what `active_using` and the filters read),
  `chat_id`, `participants`, `ends_at`, and `turns` (`turns.State`: the decisions' state) with its
  revision `rev`; `stats` (counters: `seen`, `answered`, `reasons.<outcome>`,
  `accounts.<account>.answered`/`last_at`). `active_chat` is the chat id while the swarm runs and
  absent once it stops: its unique (sparse) index is what makes a second swarm in the same chat a
  CONFLICT, whichever replica starts it.
- `swarm_claims`: one document per group message (`<chat>:<message>`), the first copy's event id
  owning it: every role account in the group publishes its own event for the same message, and
  with two campaign replicas two copies can be processed at the same time; only the owner's event
  (and its redelivery) goes on. `state` claimed -> decided (the outcome taken on the swarm) -> done
  (the answer's job made, or the AI's failure recorded). Kept `CLAIM_DAYS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from tgm_runtime.counts import cached_count

from ..automation.status_store import insert_new
from .run_store import ids_using

CLAIM_DAYS = 7

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "swarms": [
        ([("active_chat", ASCENDING)], {"unique": True, "sparse": True, "name": "one_per_chat"}),
        ([("status", ASCENDING), ("started_at", DESCENDING)], {"name": "status"}),
        ([("group_id", ASCENDING)], {"name": "group", "sparse": True}),
        ([("role_ids", ASCENDING)], {"name": "roles"}),
    ],
    "swarm_claims": [
        ([("at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": CLAIM_DAYS * 86_400}),
    ],
}

#: statuses of a swarm that still uses its roles and script
ACTIVE_STATUSES = ("starting", "running", "stopping")


class SwarmStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.c = db["swarms"]
        self.claims = db["swarm_claims"]

    async def active_using(self, kind: str, entity_id: str) -> list[str]:
        """Ids of swarms not yet stopped that use the `kind` ("role", "script"; "scenario": none)
        `entity_id` (the library refuses to delete it then). Reads `status`, `role_ids` and
        `script_id` of the `swarms` documents."""
        field = {"role": "role_ids", "script": "script_id"}.get(kind)
        if field is None:
            return []
        return await ids_using(self.c, field, entity_id, ACTIVE_STATUSES)

    # --- swarms -----------------------------------------------------------------------------------

    async def insert(self, doc: Mapping[str, Any]) -> bool:
        """False when a swarm already runs in that chat (`active_chat` is unique)."""
        return await insert_new(self.c, doc)

    async def get(self, swarm_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": swarm_id})

    async def running_in(self, chat_id: int) -> dict[str, Any] | None:
        return await self.c.find_one({"active_chat": chat_id})

    async def running(self) -> list[dict[str, Any]]:
        return await self.c.find({"active_chat": {"$exists": True}}).to_list(None)

    async def running_chats(self) -> set[int]:
        docs = await self.c.find({"active_chat": {"$exists": True}}, {"active_chat": 1}).to_list(None)
        return {int(d["active_chat"]) for d in docs}

    async def find(
        self, swarm_id: str | None, group_id: str | None, statuses: Sequence[str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if swarm_id is not None:
            query["_id"] = swarm_id
        if group_id is not None:
            query["group_id"] = group_id
        if statuses:
            query["status"] = {"$in": list(statuses)}
        docs = await self.c.find(query).sort([("started_at", DESCENDING), ("_id", DESCENDING)]).to_list(limit)
        return docs, await cached_count(self.c, query)

    async def stop(self, swarm_id: str, at: datetime, reason: str, by: str | None) -> dict[str, Any] | None:
        """Move a running swarm to `stopped` (once: None when it was not running)."""
        return await self.c.find_one_and_update(
            {"_id": swarm_id, "status": {"$in": list(ACTIVE_STATUSES)}},
            {
                "$set": {"status": "stopped", "stopped_at": at, "stop_reason": reason, "stopped_by": by},
                "$unset": {"active_chat": ""},
            },
            return_document=ReturnDocument.AFTER,
        )

    async def take_turn(
        self,
        swarm_id: str,
        rev: int,
        message_id: int,
        turns: Mapping[str, Any],
        outcome: str,
        triggered: bool,
    ) -> bool:
        """Write the decision on one message: the new `turns` state, compare-and-set on `rev` (another
        replica that decided on another message first makes this fail: read again and decide again),
        only while running, never twice for one message (it is in `turns.recent` then)."""
        inc: dict[str, int] = {"rev": 1, "stats.seen": 1}
        if outcome != "answered":  # an answer is counted when its job is made (`answered`)
            inc[f"stats.reasons.{outcome}"] = 1
        if triggered:
            inc["triggers_seen"] = 1
        result = await self.c.update_one(
            {
                "_id": swarm_id,
                "rev": rev,
                "active_chat": {"$exists": True},
                "turns.recent.m": {"$ne": message_id},
            },
            {"$set": {"turns": dict(turns)}, "$inc": inc},
        )
        return result.modified_count == 1

    async def answered(self, swarm_id: str, account_id: str, at: datetime) -> None:
        await self.c.update_one(
            {"_id": swarm_id},
            {
                "$inc": {
                    "messages_sent": 1,
                    "stats.answered": 1,
                    "stats.reasons.answered": 1,
                    f"stats.accounts.{account_id}.answered": 1,
                },
                "$max": {"last_message_at": at, f"stats.accounts.{account_id}.last_at": at},
            },
        )

    async def not_answered(self, swarm_id: str, outcome: str, error: str | None) -> None:
        """A chosen message that made no message (the AI failed or handed off, the queue refused)."""
        fields: dict[str, Any] = {"$inc": {f"stats.reasons.{outcome}": 1}}
        if error:
            fields["$set"] = {"last_error": error[:500]}
        await self.c.update_one({"_id": swarm_id}, fields)

    # --- claims -----------------------------------------------------------------------------------

    async def claim(
        self, chat_id: int, message_id: int, swarm_id: str, event_id: str, at: datetime
    ) -> dict[str, Any] | None:
        """The message's claim when this event owns it (new, or a redelivery of the owner's event);
        None when another copy owns it or it is done."""
        key = f"{chat_id}:{message_id}"
        doc = {"_id": key, "swarm_id": swarm_id, "event_id": event_id, "state": "claimed", "at": at}
        if await insert_new(self.claims, doc):
            return doc
        found = await self.claims.find_one({"_id": key})
        if found is None or found.get("event_id") != event_id or found.get("state") == "done":
            return None
        return found

    async def decided(self, chat_id: int, message_id: int, fields: Mapping[str, Any]) -> None:
        await self.claims.update_one(
            {"_id": f"{chat_id}:{message_id}", "state": "claimed"},
            {"$set": {"state": "decided", **fields}},
        )

    async def done(self, chat_id: int, message_id: int, fields: Mapping[str, Any]) -> bool:
        """Finish the claim (once: False when a concurrent run of the same event finished it)."""
        result = await self.claims.update_one(
            {"_id": f"{chat_id}:{message_id}", "state": {"$ne": "done"}},
            {"$set": {"state": "done", **fields}},
        )
        return result.modified_count == 1

    async def claims_of(
        self, swarm_id: str, message_ids: Sequence[int], chat_id: int
    ) -> dict[int, dict[str, Any]]:
        """The claims of these messages (their job ids and errors, for the status)."""
        keys = [f"{chat_id}:{m}" for m in message_ids]
        docs = await self.claims.find({"_id": {"$in": keys}, "swarm_id": swarm_id}).to_list(None)
        return {int(str(d["_id"]).rsplit(":", 1)[1]): d for d in docs}
