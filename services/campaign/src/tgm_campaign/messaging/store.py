"""The durable job store: one document per outgoing message, and the claims (leases) on them.

State lives in the `jobs` collection of the campaign database. Every change is a conditional update
of one document by id (compare-and-set on the fields that must not have moved), so two scheduler
replicas can never both claim a job: the second `update_one` matches nothing. A claim is
`{owner, token, until}`; a replica that dies leaves its claims to expire, and any replica then puts
those jobs back in the queue (`release_expired`) pinned to the account they were handed to, so the
retry reaches the same account and tg-session answers it from its record of the job id instead of
sending twice.

(Conditional `update_one` rather than `find_one_and_update`: on the embedded database server
`findAndModify` scans the whole collection — 300 ms at 20,000 jobs against 7 ms — and the caller
already holds the document it is claiming.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError
from tgm_contracts.models.campaign import JobAttempt, JobReason, JobState, JobView, Priority
from tgm_runtime.cursor import Keyset

from .window_store import TimeWindow

WAITING: tuple[str, ...] = (JobState.PENDING.value, JobState.SCHEDULED.value)
TERMINAL: tuple[str, ...] = (
    JobState.SENT.value,
    JobState.FAILED.value,
    JobState.SKIPPED.value,
    JobState.CANCELLED.value,
)
HISTORY_KEEP = 100
LIST_FIELDS = {"history": 0}
#: Job pages (`get-queue-status` with `includeJobs`): queue order, newest batch last.
QUEUE_ORDER = Keyset(("seq", "_id"))


def new_job_id() -> str:
    return "j" + uuid.uuid4().hex


def attempt(
    at: datetime,
    outcome: str,
    *,
    account_id: str | None = None,
    reason: JobReason | str | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> dict[str, Any]:
    """One entry of a job's audit trail (`JobAttempt`)."""
    return {
        "at": at,
        "outcome": outcome,
        "account_id": account_id,
        "reason": str(reason) if reason is not None else None,
        "error": error,
        "retry_at": retry_at,
    }


def push_history(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"history": {"$each": list(entries), "$slice": -HISTORY_KEEP}}


def shown_state(doc: Mapping[str, Any], now: datetime) -> JobState:
    """A `scheduled` job whose time has come is `pending` (due, waiting for limits)."""
    state = JobState(doc["state"])
    if state is JobState.SCHEDULED and doc.get("not_before") is not None and doc["not_before"] <= now:
        return JobState.PENDING
    return state


def job_view(doc: Mapping[str, Any], now: datetime) -> JobView:
    body = doc.get("body") or {}
    return JobView(
        job_id=doc["_id"],
        state=shown_state(doc, now),
        reason=doc.get("reason"),
        priority=Priority(doc["priority"]),
        kind=doc.get("kind", "private"),
        peer=doc["peer"],
        lead_id=doc.get("lead_id"),
        account_id=doc.get("account_id"),
        pool=doc.get("pool"),
        campaign_id=doc.get("campaign_id"),
        batch_id=doc.get("batch_id"),
        idempotency_key=doc["key"],
        template_id=body.get("template_id"),
        text=doc.get("text"),
        has_attachment=body.get("attachment") is not None,
        not_before=doc.get("not_before"),
        expires_at=doc.get("expires_at"),
        attempts=doc.get("attempts", 0),
        max_attempts=doc.get("max_attempts", 3),
        last_error=doc.get("last_error"),
        message_id=doc.get("message_id"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        sent_at=doc.get("sent_at"),
        history=[JobAttempt.model_validate(h) for h in doc.get("history") or []],
    )


def _held_query(kinds: Sequence[str], now: datetime) -> dict[str, Any]:
    return {"state": JobState.SCHEDULED.value, "not_before": {"$gt": now}, "held_by": {"$in": list(kinds)}}


class JobStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["jobs"]

    # --- creating ----------------------------------------------------------------------------------

    async def insert(self, docs: Sequence[dict[str, Any]]) -> set[str]:
        """Insert new jobs; returns the idempotency keys that already existed (nothing inserted for
        them). Keys are unique in the collection, so concurrent callers cannot both create one."""
        if not docs:
            return set()
        duplicates: set[str] = set()
        try:
            await self.c.insert_many(list(docs), ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                if err.get("code") != 11000:
                    raise
                duplicates.add(docs[err["index"]]["key"])
        return duplicates

    async def by_keys(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        if not keys:
            return {}
        return {d["key"]: d async for d in self.c.find({"key": {"$in": keys}}, LIST_FIELDS)}

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.c.find_one({"_id": job_id})

    async def many(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(ids)
        if not ids:
            return []
        return [d async for d in self.c.find({"_id": {"$in": ids}}, LIST_FIELDS)]

    # --- finding work ------------------------------------------------------------------------------

    async def candidates(
        self,
        now: datetime,
        limit: int,
        *,
        skip_accounts: Sequence[str] = (),
        skip_campaigns: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Due waiting jobs in queue order (priority, then creation), without their history."""
        query: dict[str, Any] = {"state": {"$in": list(WAITING)}, "not_before": {"$lte": now}}
        if skip_accounts:
            query["account_id"] = {"$nin": list(skip_accounts)}
        if skip_campaigns:
            query["campaign_id"] = {"$nin": list(skip_campaigns)}
        cursor = self.c.find(query, LIST_FIELDS).sort([("rank", ASCENDING), ("seq", ASCENDING)]).limit(limit)
        return await cursor.to_list()

    async def next_due(self, now: datetime) -> datetime | None:
        doc = await self.c.find_one(
            {"state": {"$in": list(WAITING)}, "not_before": {"$gt": now}},
            {"not_before": 1},
            sort=[("not_before", ASCENDING)],
        )
        return doc["not_before"] if doc else None

    async def expired_claims(self, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
        cursor = self.c.find({"state": JobState.IN_FLIGHT.value, "claim.until": {"$lt": now}}, LIST_FIELDS)
        return await cursor.limit(limit).to_list()

    async def claims_of(self, owner_prefix: str, exclude_owner: str) -> list[dict[str, Any]]:
        """In-flight jobs claimed by earlier incarnations of this replica (dead for sure)."""
        cursor = self.c.find(
            {
                "state": JobState.IN_FLIGHT.value,
                "claim.replica": owner_prefix,
                "claim.owner": {"$ne": exclude_owner},
            },
            LIST_FIELDS,
        )
        return await cursor.to_list()

    async def expired_waiting(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.c.find({"state": {"$in": list(WAITING)}, "expires_at": {"$lte": now}}, LIST_FIELDS)
        return await cursor.limit(limit).to_list()

    # --- claims ------------------------------------------------------------------------------------

    async def claim(
        self,
        doc: Mapping[str, Any],
        *,
        owner: str,
        replica: str,
        token: str,
        until: datetime,
        account_id: str,
        text: str | None,
        now: datetime,
    ) -> bool:
        """Take a waiting job for dispatch through `account_id`. False if anyone changed it first."""
        result = await self.c.update_one(
            {"_id": doc["_id"], "state": doc["state"], "rev": doc.get("rev", 0)},
            {
                "$set": {
                    "state": JobState.IN_FLIGHT.value,
                    "reason": None,
                    "claim": {"owner": owner, "replica": replica, "token": token, "until": until},
                    "account_id": account_id,
                    # Handed to an account: until the outcome is known it may only be retried there.
                    "pinned": True,
                    "held_by": None,
                    "text": text,
                    "updated_at": now,
                },
                "$inc": {"attempts": 1, "rev": 1},
            },
        )
        return result.modified_count == 1

    async def renew(self, job_id: str, token: str, until: datetime) -> bool:
        result = await self.c.update_one(
            {"_id": job_id, "claim.token": token}, {"$set": {"claim.until": until}}
        )
        return result.matched_count == 1

    async def settle(
        self,
        job_id: str,
        token: str,
        *,
        set_: Mapping[str, Any],
        history: Sequence[dict[str, Any]] = (),
        inc: Mapping[str, int] | None = None,
        unset: Sequence[str] = (),
    ) -> bool:
        """Record the outcome of a claimed job (and drop the claim). False if the claim was lost."""
        update: dict[str, Any] = {
            "$set": dict(set_),
            "$unset": {"claim": "", **{f: "" for f in unset}},
            "$inc": {"rev": 1, **(inc or {})},
        }
        if history:
            update["$push"] = push_history(*history)
        result = await self.c.update_one({"_id": job_id, "claim.token": token}, update)
        return result.modified_count == 1

    async def update_waiting(
        self, doc: Mapping[str, Any], set_: Mapping[str, Any], history: Sequence[dict[str, Any]] = ()
    ) -> bool:
        """Change a waiting job that nobody has claimed since `doc` was read."""
        update: dict[str, Any] = {"$set": dict(set_), "$inc": {"rev": 1}}
        if history:
            update["$push"] = push_history(*history)
        result = await self.c.update_one(
            {"_id": doc["_id"], "state": {"$in": list(WAITING)}, "rev": doc.get("rev", 0)}, update
        )
        return result.modified_count == 1

    async def held(
        self,
        kinds: Sequence[str],
        now: datetime,
        *,
        peer_keys: Sequence[str] = (),
        account_id: str | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        """Jobs the scheduler moved out of the due set for one of these limits (`held_by`) that are
        not due yet; with `peer_keys`, only those addressed to one of those keys; with `account_id`,
        only that account's."""
        query = _held_query(kinds, now)
        if peer_keys:
            query["peer_keys"] = {"$in": list(peer_keys)}
        if account_id is not None:
            query["account_id"] = account_id
        return await self.c.find(query, LIST_FIELDS).limit(limit).to_list()

    async def held_accounts(self, kinds: Sequence[str], now: datetime) -> list[str]:
        """The accounts of the jobs held by these limits."""
        rows = await self.aggregate([{"$match": _held_query(kinds, now)}, {"$group": {"_id": "$account_id"}}])
        return sorted(r["_id"] for r in rows if r["_id"])

    async def release_held(
        self, doc: Mapping[str, Any], now: datetime, why: str, wrote_to: str | None = None
    ) -> JobState | None:
        """Make a held job due again (not before the time it was asked for), so the next round plans
        it under the rules in force now; `wrote_to`: the recipient has since written to that account.
        Returns its new state; None if the job changed since `doc` was read (claimed, cancelled,
        held again)."""
        requested = doc.get("requested_at")
        due = max(now, requested) if requested is not None else now
        state = JobState.PENDING if due <= now else JobState.SCHEDULED
        update: dict[str, Any] = {
            "$set": {
                "state": state.value,
                "reason": None,
                "not_before": due,
                "held_by": None,
                "last_error": None,
                "updated_at": now,
            },
            "$inc": {"rev": 1},
            "$push": push_history(attempt(now, "requeued", reason=doc.get("reason"), error=why)),
        }
        if wrote_to is not None:
            update["$addToSet"] = {"wrote_to": wrote_to}
        result = await self.c.update_one(
            {"_id": doc["_id"], "state": doc["state"], "rev": doc.get("rev", 0)}, update
        )
        return state if result.modified_count == 1 else None

    async def settle_many_waiting(
        self, query: Mapping[str, Any], set_: Mapping[str, Any], history: dict[str, Any], limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Move every waiting job matching `query` (cancel, skip); returns the jobs actually moved, as
        they were before, so each gets its event. Jobs in flight are never touched."""
        found = (
            await self.c.find({**query, "state": {"$in": list(WAITING)}}, LIST_FIELDS).limit(limit).to_list()
        )
        moved = []
        for doc in found:
            result = await self.c.update_one(
                {"_id": doc["_id"], "state": {"$in": list(WAITING)}},
                {"$set": dict(set_), "$push": push_history(history), "$inc": {"rev": 1}},
            )
            if result.modified_count:
                moved.append(doc)
        return moved

    async def unclaim(self, doc: Mapping[str, Any], token: str, text: str, now: datetime) -> bool:
        """Give a claimed job back as it was (the limits no longer allowed its send): this attempt
        does not count, and the rendered text is kept for the next one."""
        return await self.settle(
            doc["_id"],
            token,
            set_={
                "state": doc["state"],
                "account_id": doc.get("account_id"),
                "pinned": bool(doc.get("pinned")),
                "text": text,
                "updated_at": now,
            },
            inc={"attempts": -1},
        )

    async def exclude_account(self, job_id: str, account_id: str, reason: JobReason | None) -> None:
        """A pool job leaves `account_id` out from now on; with `reason`, it fails with that reason
        once every account of the pool has refused it."""
        extra = {"$set": {"exclude_reason": reason.value}} if reason else {}
        await self.c.update_one({"_id": job_id}, {"$addToSet": {"exclude": account_id}, **extra})

    async def fixed_waiting_before(self, account_id: str, at: datetime) -> list[dict[str, Any]]:
        """Waiting jobs bound to `account_id` (fixed or pinned) due before `at`."""
        return await self.c.find(
            {
                "account_id": account_id,
                "state": {"$in": list(WAITING)},
                "not_before": {"$lt": at},
                "$or": [{"fixed": True}, {"pinned": True}],
            },
            LIST_FIELDS,
        ).to_list()

    # --- what the CRM reads of a user's jobs ---------------------------------------------------

    async def recent_of(self, lead_id: str, keys: Sequence[str], limit: int) -> list[dict[str, Any]]:
        """The newest jobs of a lead: by lead id, or addressed to any of the user's keys."""
        query: dict[str, Any] = {"lead_id": lead_id}
        if keys:
            query = {"$or": [query, {"peer_keys": {"$in": list(keys)}}]}
        return await self.c.find(query).sort([("created_at", DESCENDING)]).limit(limit).to_list()

    async def settled_in(
        self, window: TimeWindow, lead_id: str | None, keys: Sequence[str], states: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Jobs of a lead or of the user's keys that ended in `states`, in a timeline's window."""
        who: list[dict[str, Any]] = []
        if lead_id:
            who.append({"lead_id": lead_id})
        if keys:
            who.append({"peer_keys": {"$in": list(keys)}})
        base = {"$and": [{"$or": who} if len(who) > 1 else who[0], {"state": {"$in": list(states)}}]}
        return await window.read(self.c, "updated_at", base)

    async def count(self, query: Mapping[str, Any]) -> int:
        return await self.c.count_documents(dict(query))

    async def page(
        self, query: Mapping[str, Any], limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Jobs in queue order (newest batch last), `limit` at a time."""
        docs = (
            await self.c.find(QUEUE_ORDER.where(query, cursor))
            .sort(QUEUE_ORDER.sort())
            .limit(limit + 1)
            .to_list()
        )
        return QUEUE_ORDER.page(docs, limit)

    async def recent_sent(self, since: datetime) -> int:
        return await self.c.count_documents({"state": JobState.SENT.value, "sent_at": {"$gte": since}})

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cursor = await self.c.aggregate(pipeline)
        return await cursor.to_list()

    # --- what ads and automation's campaigns read of their jobs (appended by them) ---------------

    async def scan(
        self,
        query: Mapping[str, Any],
        projection: Mapping[str, int],
        sort: Sequence[tuple[str, int]] = (),
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        cursor = self.c.find(dict(query), dict(projection))
        if sort:
            cursor = cursor.sort(list(sort))
        return await cursor.limit(limit).to_list()

    async def sent_as(self, peer_key: str, message_id: int) -> list[dict[str, Any]]:
        """The sent jobs to a chat (by its key) that became Telegram message `message_id` there (more
        than one only in a basic group, where message ids are per account); uses `peer_state`."""
        return await self.c.find(
            {"peer_keys": peer_key, "state": JobState.SENT.value, "message_id": message_id},
            {"key": 1, "campaign_id": 1, "account_id": 1, "body.template_id": 1, "peer_key": 1},
        ).to_list()


INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("key", ASCENDING)], {"unique": True, "name": "key_unique"}),
    ([("state", ASCENDING), ("not_before", ASCENDING)], {"name": "state_due"}),
    ([("state", ASCENDING), ("rank", ASCENDING), ("seq", ASCENDING)], {"name": "state_order"}),
    ([("seq", ASCENDING), ("_id", ASCENDING)], {"name": "order"}),
    ([("account_id", ASCENDING), ("state", ASCENDING)], {"name": "account_state"}),
    ([("campaign_id", ASCENDING), ("state", ASCENDING)], {"name": "campaign_state"}),
    ([("batch_id", ASCENDING)], {"name": "batch"}),
    ([("peer_keys", ASCENDING), ("state", ASCENDING)], {"name": "peer_state"}),
    ([("claim.until", ASCENDING)], {"name": "claim_until", "sparse": True}),
    ([("sent_at", DESCENDING)], {"name": "sent_at", "sparse": True}),
]
