"""The `campaigns` and `campaign_targets` collections of automation, and the read-only queries a
campaign makes of the CRM's `leads` (its audience, who replied, who converted) and of messaging's
`jobs` (what happened to its messages: the stats are aggregations of the jobs, never counters kept on
the side, so they equal what the queue did).

`campaigns`
    {_id "cmp_…", spec (the `CampaignSpec` fields, snake_case, JSON-typed), name, type, status,
     reason, last_error, start_at, end_at (datetimes, for the runner's queries), by, created_at,
     updated_at, started_at, finished_at, cancel_pending (what the last stop asked),
     run: {phase "leads"|"peers"|"done", after (last lead id / peer index resolved), resolved_at,
           watermark (jobs settled before it were seen)}}
`campaign_targets`
    {_id "t…" (digest of campaign + recipient: inserting twice is a no-op), campaign_id, peer,
     peer_key, lead_id|None, step (the next step to enqueue or the one in the queue), gen (re-arms
     after a stop cancelled its job), job_id|None (the job of `step` in the queue), key, next_at
     (when `step` is due), done, outcome, first_sent_at, last_sent_at, created_at, updated_at}

A target's job key is `cmp:<campaign>:<target>:<step>` (`:r<gen>` appended after a re-arm), so an
enqueue redone after a crash finds the job it made before instead of making a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ..crm.store import LeadStore
from ..messaging.store import JobStore
from .status_store import Scope, StatusStore, aggregate, campaign_match, job_breakdown

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "campaigns": [
        ([("status", ASCENDING)], {"name": "status"}),
        ([("created_at", DESCENDING), ("_id", DESCENDING)], {"name": "created"}),
    ],
    "campaign_targets": [
        (
            [("campaign_id", ASCENDING), ("done", ASCENDING), ("job_id", ASCENDING), ("next_at", ASCENDING)],
            {"name": "due"},
        ),
        ([("job_id", ASCENDING)], {"name": "job", "sparse": True}),
    ],
}

WAITING = ("pending", "scheduled")
OPEN = ("pending", "scheduled", "in_flight")
#: An aggregation expression: the step a campaign job's key names (`cmp:<campaign>:<target>:<step>`).
KEY_STEP = {"$arrayElemAt": [{"$split": ["$key", ":"]}, 3]}
TERMINAL = ("sent", "failed", "skipped", "cancelled")


def target_id(campaign_id: str, peer_key: str) -> str:
    return "t" + hashlib.sha256(f"{campaign_id}|{peer_key}".encode()).hexdigest()[:20]


def job_key(campaign_id: str, tid: str, step: int, gen: int) -> str:
    key = f"cmp:{campaign_id}:{tid}:{step}"
    return f"{key}:r{gen}" if gen else key


def step_of_key(key: str | None) -> int | None:
    """The step a campaign job's key names (None for a job some other caller tagged)."""
    parts = (key or "").split(":")
    if len(parts) >= 4 and parts[0] == "cmp" and parts[3].isdigit():
        return int(parts[3])
    return None


def lead_audience_query(audience: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The leads an audience selects (the union of its lead selectors), each sendable (a user id or a
    username); None when it has no lead selector. Blacklisted and do-not-contact leads are kept: the
    queue skips them with their reason, and the stats show it."""
    ors: list[dict[str, Any]] = []
    if audience.get("lead_ids"):
        ors.append({"_id": {"$in": list(audience["lead_ids"])}})
    if audience.get("lead_stages"):
        ors.append({"stage": {"$in": [str(s) for s in audience["lead_stages"]]}})
    if audience.get("lead_tags"):
        ors.append({"tags": {"$in": list(audience["lead_tags"])}})
    if audience.get("keyword_set_ids"):
        ors.append({"keyword_set_id": {"$in": list(audience["keyword_set_ids"])}})
    if audience.get("group_ids"):
        ors.append({"source_group_id": {"$in": list(audience["group_ids"])}})
    if not ors:
        return None
    parts: list[dict[str, Any]] = [
        {"$or": ors},
        {"$or": [{"user_id": {"$gt": 0}}, {"username_key": {"$gt": ""}}]},
    ]
    days = audience.get("exclude_contacted_within_days")
    if days:
        cutoff = now - timedelta(days=int(days))
        parts.append({"$or": [{"last_contacted_at": None}, {"last_contacted_at": {"$lt": cutoff}}]})
    return {"$and": parts}


class CampaignStore(StatusStore):
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        super().__init__(db["campaigns"])
        self.t = db["campaign_targets"]
        self.jobs = JobStore(db)  # messaging's, read only
        self.leads = LeadStore(db)  # the CRM's, read only

    # --- definitions (insert, get, many, redefine, transition, in_statuses, count: StatusStore) ---

    async def set_run(self, campaign_id: str, fields: Mapping[str, Any]) -> None:
        """The runner's progress (`run.*` fields), whatever the status."""
        await self.c.update_one({"_id": campaign_id}, {"$set": {f"run.{k}": v for k, v in fields.items()}})

    async def delete(self, campaign_id: str) -> bool:
        result = await self.c.delete_one({"_id": campaign_id})
        await self.t.delete_many({"campaign_id": campaign_id})
        return result.deleted_count == 1

    # --- targets ---------------------------------------------------------------------------------

    async def add_targets(self, docs: Sequence[dict[str, Any]]) -> int:
        """Insert targets; one that exists already (same campaign and recipient) is left as it is.
        Returns how many were new."""
        if not docs:
            return 0
        try:
            result = await self.t.insert_many(list(docs), ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return int(exc.details.get("nInserted", len(docs) - len(errors)))

    async def count_targets(self, campaign_ids: Sequence[str]) -> dict[str, int]:
        rows = await aggregate(
            self.t,
            [
                {"$match": {"campaign_id": {"$in": list(campaign_ids)}}},
                {"$group": {"_id": "$campaign_id", "n": {"$sum": 1}}},
            ],
        )
        return {r["_id"]: int(r["n"]) for r in rows}

    async def open_targets(self, campaign_id: str) -> int:
        return await self.t.count_documents({"campaign_id": campaign_id, "done": False})

    async def due_targets(self, campaign_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Targets whose next step is due and not in the queue yet, earliest first."""
        return (
            await self.t.find(
                {"campaign_id": campaign_id, "done": False, "job_id": None, "next_at": {"$lte": now}}
            )
            .sort([("next_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
            .to_list()
        )

    async def next_due(self, campaign_id: str) -> datetime | None:
        doc = (
            await self.t.find({"campaign_id": campaign_id, "done": False, "job_id": None}, {"next_at": 1})
            .sort([("next_at", ASCENDING)])
            .limit(1)
            .to_list()
        )
        return doc[0]["next_at"] if doc else None

    async def update_target(self, target: Mapping[str, Any], set_: Mapping[str, Any]) -> bool:
        """Change a target nobody else moved since it was read (same step, generation and job)."""
        result = await self.t.update_one(
            {
                "_id": target["_id"],
                "step": target["step"],
                "gen": target.get("gen", 0),
                "job_id": target.get("job_id"),
                "done": False,
            },
            {"$set": dict(set_)},
        )
        return result.modified_count == 1

    async def targets_of_jobs(self, campaign_id: str, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not job_ids:
            return []
        return await self.t.find(
            {"campaign_id": campaign_id, "done": False, "job_id": {"$in": list(job_ids)}}
        ).to_list()

    async def target_leads(self, campaign_ids: Sequence[str]) -> tuple[list[str], list[int]]:
        """The lead ids and user ids of the campaigns' targets."""
        docs = await self.t.find(
            {"campaign_id": {"$in": list(campaign_ids)}}, {"lead_id": 1, "peer": 1}
        ).to_list()
        lead_ids = [d["lead_id"] for d in docs if d.get("lead_id")]
        users = [d["peer"] for d in docs if not d.get("lead_id") and isinstance(d.get("peer"), int)]
        return lead_ids, [u for u in users if u > 0]

    # --- the CRM's leads (read only) ---------------------------------------------------------------

    async def audience_leads(
        self, query: Mapping[str, Any], after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        return await self.leads.scan_after(
            query, {"user_id": 1, "username": 1, "username_key": 1}, after, limit
        )

    async def replies_of(
        self, lead_ids: Sequence[str], user_ids: Sequence[int]
    ) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
        """Leads by id and by user id: their `last_replied_at`, stage and intent."""
        fields = {"user_id": 1, "last_replied_at": 1, "stage": 1, "intent_level": 1}
        by_id: dict[str, dict[str, Any]] = {}
        by_user: dict[int, dict[str, Any]] = {}
        ids = list(dict.fromkeys(lead_ids))
        for start in range(0, len(ids), 1000):
            for d in await self.leads.scan({"_id": {"$in": ids[start : start + 1000]}}, fields):
                by_id[d["_id"]] = d
        users = list(dict.fromkeys(user_ids))
        for start in range(0, len(users), 1000):
            for d in await self.leads.scan({"user_id": {"$in": users[start : start + 1000]}}, fields):
                by_user[d["user_id"]] = d
        return by_id, by_user

    # --- messaging's jobs (read only) --------------------------------------------------------------

    async def settled_jobs(
        self, campaign_id: str, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """The campaign's jobs that reached a final state at or after `since` (all when None)."""
        query: dict[str, Any] = {"campaign_id": campaign_id, "state": {"$in": list(TERMINAL)}}
        if since is not None:
            query["updated_at"] = {"$gte": since}
        fields = {"state": 1, "reason": 1, "sent_at": 1, "updated_at": 1}
        return await self.jobs.scan(query, fields, [("updated_at", ASCENDING)], limit)

    async def jobs_made_since(self, campaign_id: str, since: datetime) -> int:
        """The campaign's jobs created since `since` that were or will be sent (its daily limit)."""
        return await self.jobs.count(
            {
                "campaign_id": campaign_id,
                "created_at": {"$gte": since},
                "state": {"$in": [*OPEN, "sent", "failed"]},
            }
        )

    async def open_jobs(self, campaign_id: str) -> int:
        return await self.jobs.count({"campaign_id": campaign_id, "state": {"$in": list(OPEN)}})

    async def job_breakdown(self, scope: Scope) -> list[dict[str, Any]]:
        """The campaigns' jobs counted by campaign, state, reason, account, key and local day (of the
        send, or of the last change for jobs not sent): rows `{c, s, r, a, k, d, n}`."""
        match = campaign_match(scope, "updated_at")
        return await job_breakdown(self.jobs, match, scope.timezone, {"k": KEY_STEP})

    async def first_sends(self, campaign_ids: Sequence[str]) -> list[dict[str, Any]]:
        """When each recipient got each step: rows `{c, l (lead id), p (peer key), k (key step), at}`."""
        rows = await self.jobs.aggregate(
            [
                {"$match": {"campaign_id": {"$in": list(campaign_ids)}, "state": "sent"}},
                {
                    "$group": {
                        "_id": {
                            "c": "$campaign_id",
                            "l": "$lead_id",
                            "p": "$peer_key",
                            "peer": "$peer",
                            "k": KEY_STEP,
                        },
                        "at": {"$min": "$sent_at"},
                    }
                },
            ],
        )
        return [{**r["_id"], "at": r["at"]} for r in rows]
