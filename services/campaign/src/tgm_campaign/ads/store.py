"""The ads store: `ad_campaigns` (a `StatusStore`), `ad_runs`, `ad_replies`, and the read-only
queries an ad campaign makes of messaging's `jobs` through its `JobStore` (its posts: every figure of
`get-ad-stats` is an aggregation of the jobs, of the runs' skipped targets and of the replies, never a
counter kept on the side, so it equals what the queue did and what the groups said).

`ad_campaigns`
    {_id "ad_…", spec (the `AdCampaignSpec` fields, snake_case, JSON-typed), name, name_key,
     template_ids, status, reason, last_error, by, created_at, updated_at, started_at, finished_at,
     cancel_pending (what the last stop asked), runs (how many runs were opened), anchor (an
     interval's phase: its first run), next_run_at, last_run_at}
`ad_runs` (one per campaign and run number: the run's record, what makes it resumable)
    {_id "<campaign>:<run>", campaign_id, run, due_at, phase "open" (opened, no plan yet) |
     "planned" (plan written, posts being queued) | "queued" (every post is a job; waiting for them
     to settle) | "done", accounts (the run's account list, frozen at planning), plan: [{tk (target
     key), peer, group_id, label, account_id|None, template_id, skip|None, detail}], posted, failed,
     skipped, reasons {reason: n}, created_at, planned_at, finished_at}
`ad_replies` (one per group message that replies to one of our posts)
    {_id "<chat>:<message>" ("<chat>:<account>:<message>" in a basic group, where message ids are
     per account: inserting it twice is a no-op, so every listener's copy, a redelivery and a second
     replica count it once), campaign_id, run, job_id, account_id (who posted), template_id,
     peer_key (the group), sender_id, replied_to (our post's message id), at (when it was written),
     created_at}

A post's job key is `ad:<campaign>:<run>:<tk>`: a run redone after a crash finds the jobs it made
before instead of making second ones, whatever account or template it picks the second time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts.models.campaign import peer_key

from ..automation.status_store import (
    Scope,
    StatusStore,
    aggregate,
    campaign_match,
    insert_new,
    job_breakdown,
    local_day,
)
from ..messaging.store import JobStore

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "ad_campaigns": [
        ([("status", ASCENDING)], {"name": "status"}),
        ([("created_at", DESCENDING), ("_id", DESCENDING)], {"name": "created"}),
        ([("template_ids", ASCENDING)], {"name": "templates"}),
    ],
    "ad_runs": [
        ([("campaign_id", ASCENDING), ("phase", ASCENDING), ("run", ASCENDING)], {"name": "campaign_phase"}),
        ([("planned_at", ASCENDING)], {"name": "planned"}),
    ],
    "ad_replies": [
        ([("campaign_id", ASCENDING), ("at", ASCENDING)], {"name": "campaign_at"}),
    ],
}

WAITING = ("pending", "scheduled")
OPEN = ("pending", "scheduled", "in_flight")


def run_id(campaign_id: str, run: int) -> str:
    return f"{campaign_id}:{run}"


def job_key(campaign_id: str, run: int, tk: str) -> str:
    return f"ad:{campaign_id}:{run}:{tk}"


def run_prefix(campaign_id: str, run: int) -> str:
    return "^" + re.escape(f"ad:{campaign_id}:{run}:")


class AdStore(StatusStore):
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        super().__init__(db["ad_campaigns"])
        self.db = db
        self.r = db["ad_runs"]
        self.replies = db["ad_replies"]
        self.jobs = JobStore(db)  # messaging's, read only

    # --- campaigns (insert, get, many, redefine, transition, set_fields, in_statuses: StatusStore) -

    async def delete(self, campaign_id: str) -> bool:
        """The definition goes; its runs and jobs stay (history, stats)."""
        result = await self.c.delete_one({"_id": campaign_id})
        return result.deleted_count == 1

    async def using_templates(self, template_ids: Sequence[str]) -> dict[str, list[str]]:
        """Template id -> the ad campaigns naming it."""
        out: dict[str, list[str]] = {}
        docs = await self.c.find({"template_ids": {"$in": list(template_ids)}}, {"template_ids": 1}).to_list()
        for d in docs:
            for t in d.get("template_ids") or []:
                out.setdefault(t, []).append(d["_id"])
        return out

    # --- runs ------------------------------------------------------------------------------------

    async def open_run(self, doc: dict[str, Any]) -> bool:
        """Insert a run; False when it exists already (opened before a crash, or by another round)."""
        return await insert_new(self.r, doc)

    async def get_run(self, campaign_id: str, run: int) -> dict[str, Any] | None:
        return await self.r.find_one({"_id": run_id(campaign_id, run)})

    async def unfinished_runs(self, campaign_id: str) -> list[dict[str, Any]]:
        return (
            await self.r.find({"campaign_id": campaign_id, "phase": {"$ne": "done"}})
            .sort([("run", ASCENDING)])
            .to_list()
        )

    async def campaigns_with_unfinished_runs(self, exclude: set[str]) -> list[str]:
        ids: list[str] = await self.r.distinct("campaign_id", {"phase": {"$ne": "done"}})
        return [i for i in ids if i not in exclude]

    async def skip_entries(
        self, campaign_id: str, run: int, tks: Sequence[str], skip: str, detail: str
    ) -> None:
        """Mark planned targets skipped (their batch was refused as a whole)."""
        await self.r.update_one(
            {"_id": run_id(campaign_id, run)},
            {"$set": {"plan.$[e].skip": skip, "plan.$[e].detail": detail}},
            array_filters=[{"e.tk": {"$in": list(tks)}}],
        )

    async def move_run(
        self, campaign_id: str, run: int, from_phase: str, set_: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        result = await self.r.update_one(
            {"_id": run_id(campaign_id, run), "phase": from_phase}, {"$set": dict(set_)}
        )
        return await self.get_run(campaign_id, run) if result.modified_count else None

    async def runs_of(self, campaign_ids: Sequence[str]) -> list[dict[str, Any]]:
        return await self.r.find(
            {"campaign_id": {"$in": list(campaign_ids)}}, {"plan": 0, "accounts": 0}
        ).to_list()

    async def plans_of(self, campaign_ids: Iterable[str]) -> list[dict[str, Any]]:
        return await self.r.find(
            {"campaign_id": {"$in": list(campaign_ids)}}, {"plan.peer": 1, "plan.label": 1}
        ).to_list()

    async def skipped_targets(self, scope: Scope) -> list[dict[str, Any]]:
        """Targets a run skipped without a job: rows `{c, run, tk, peer, group_id, label, account_id,
        template_id, skip, at}`."""
        skipped = {"plan": {"$elemMatch": {"skip": {"$ne": None}}}}
        match = campaign_match(scope, "planned_at", skipped)
        rows = await aggregate(
            self.r,
            [
                {"$match": match},
                {"$unwind": "$plan"},
                {"$match": {"plan.skip": {"$ne": None}}},
                {
                    "$project": {
                        "_id": 0,
                        "c": "$campaign_id",
                        "run": 1,
                        "tk": "$plan.tk",
                        "peer": "$plan.peer",
                        "group_id": "$plan.group_id",
                        "label": "$plan.label",
                        "account_id": "$plan.account_id",
                        "template_id": "$plan.template_id",
                        "skip": "$plan.skip",
                        "at": "$planned_at",
                    }
                },
            ],
        )
        return rows

    # --- replies to the posts ----------------------------------------------------------------------

    async def posted_chats(self, since: datetime) -> set[int]:
        """The chats the runs planned since `since` post in (where a reply may answer a post). Read
        whole (a `distinct` on `plan.peer` finds nothing on the embedded server; runs are few)."""
        runs = await self.r.find({"planned_at": {"$gte": since}}, {"plan.peer": 1}).to_list()
        return {e["peer"] for r in runs for e in r.get("plan") or [] if isinstance(e.get("peer"), int)}

    async def posts_as(self, chat_id: int, message_id: int) -> list[dict[str, Any]]:
        """Our ad posts in `chat_id` that are Telegram message `message_id` there."""
        jobs = await self.jobs.sent_as(peer_key(chat_id), message_id)
        return [j for j in jobs if str(j.get("key") or "").startswith("ad:")]

    async def record_reply(self, doc: Mapping[str, Any]) -> bool:
        """False when that message was counted already."""
        return await insert_new(self.replies, doc)

    async def reply_breakdown(self, scope: Scope) -> list[dict[str, Any]]:
        """Replies counted by campaign, poster account, template, group and local day of the reply:
        rows `{c, a, t, p, d, n, senders}`."""
        match = campaign_match(scope, "at")
        rows = await aggregate(
            self.replies,
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {
                            "c": "$campaign_id",
                            "a": "$account_id",
                            "t": "$template_id",
                            "p": "$peer_key",
                            "d": local_day("$at", scope.timezone),
                        },
                        "n": {"$sum": 1},
                        "senders": {"$addToSet": "$sender_id"},
                    }
                },
            ],
        )
        return [{**r["_id"], "n": int(r["n"]), "senders": [u for u in r["senders"] if u]} for r in rows]

    # --- messaging's jobs (read only) --------------------------------------------------------------

    async def run_jobs(self, campaign_id: str, run: int) -> list[dict[str, Any]]:
        """The jobs of one run: state, reason, account, key."""
        return await self.jobs.scan(
            {"campaign_id": campaign_id, "key": {"$regex": run_prefix(campaign_id, run)}},
            {"state": 1, "reason": 1, "account_id": 1, "key": 1, "peer_key": 1, "sent_at": 1},
        )

    async def refused_pairs(self, campaign_id: str) -> set[tuple[str, str]]:
        """(account, peer key) pairs where this campaign's post failed because the account may not
        write there (banned, not a member, posting forbidden): later runs give that group to another
        account."""
        rows = await self.jobs.aggregate(
            [
                {
                    "$match": {
                        "campaign_id": campaign_id,
                        "state": "failed",
                        "reason": {"$in": ["chat_write_forbidden", "peer_invalid"]},
                    }
                },
                {"$group": {"_id": {"a": "$account_id", "p": "$peer_key"}}},
            ],
        )
        return {(r["_id"]["a"], r["_id"]["p"]) for r in rows if r["_id"].get("a")}

    async def made_since(
        self, campaign_id: str, since: datetime
    ) -> tuple[dict[str, int], dict[str, int], dict[str, datetime]]:
        """This campaign's posts made since `since` that were or will be sent: per account, per peer
        key (the daily caps); and the last send per peer key, at any time (the group interval)."""
        live = [*OPEN, "sent"]
        rows = await self.jobs.aggregate(
            [
                {
                    "$match": {
                        "campaign_id": campaign_id,
                        "created_at": {"$gte": since},
                        "state": {"$in": live},
                    }
                },
                {"$group": {"_id": {"a": "$account_id", "p": "$peer_key"}, "n": {"$sum": 1}}},
            ],
        )
        per_account: dict[str, int] = {}
        per_peer: dict[str, int] = {}
        for r in rows:
            a, p, n = r["_id"].get("a"), r["_id"].get("p"), int(r["n"])
            if a:
                per_account[a] = per_account.get(a, 0) + n
            if p:
                per_peer[p] = per_peer.get(p, 0) + n
        last = await self.jobs.aggregate(
            [
                {"$match": {"campaign_id": campaign_id, "state": "sent"}},
                {"$group": {"_id": "$peer_key", "at": {"$max": "$sent_at"}}},
            ],
        )
        return per_account, per_peer, {r["_id"]: r["at"] for r in last if r.get("at")}

    async def open_jobs(self, campaign_id: str) -> int:
        return await self.jobs.count({"campaign_id": campaign_id, "state": {"$in": list(OPEN)}})

    async def job_breakdown(self, scope: Scope) -> list[dict[str, Any]]:
        """Ad posts counted by campaign, state, reason, account, template, group and local day (of the
        send, or of the last change for posts not sent): rows `{c, s, r, a, t, p, d, n, last}`."""
        match = campaign_match(scope, "updated_at", {"key": {"$regex": "^ad:"}})
        keys = {"t": "$body.template_id", "p": "$peer_key"}
        return await job_breakdown(self.jobs, match, scope.timezone, keys, last={"$max": "$sent_at"})

    async def posted_by_template(self, template_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.jobs.aggregate(
            [
                {
                    "$match": {
                        "key": {"$regex": "^ad:"},
                        "state": "sent",
                        "body.template_id": {"$in": list(template_ids)},
                    }
                },
                {"$group": {"_id": "$body.template_id", "n": {"$sum": 1}}},
            ],
        )
        return {r["_id"]: int(r["n"]) for r in rows}
