"""The statistics collections: facts (history) and projections (state), and every write into them.

Each write can be repeated and applied out of order (`$setOnInsert`, `$min`/`$max`, or "set if this
event is newer"), so a redelivered or late event gives the same documents (service.py says which event
feeds which). The reads are plain finds; queries.py decides which (the read plan) and folds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import DuplicateKeyError

FACTS = "stats_facts"
USERS = "stats_users"
LEADS = "stats_leads"
ACCOUNTS = "stats_accounts"
JOBS = "stats_jobs"
GROUP_CHATS = "stats_group_chats"
META = "stats_meta"
CAMPAIGNS = "stats_campaigns"


async def create_indexes(db: Any) -> None:
    """Migration 1: the facts' time and job indexes, and the projections' time indexes."""
    facts = db[FACTS]
    await facts.create_index([("t", 1)])
    await facts.create_index([("k", 1), ("t", 1)])
    await facts.create_index([("j", 1)], sparse=True)
    await db[USERS].create_index([("first_at", 1)])
    await db[LEADS].create_index([("last_at", 1)])
    await db[LEADS].create_index([("captured_at", 1)])
    await db[JOBS].create_index([("at", 1)])


async def split_failures(db: Any) -> None:
    """Migration 5: facts of tg-session `message-send-failed` were kind `failed`; they are refused
    attempts (`attempt_failed`) now, and `failed` is a job's permanent failure (campaign
    `job-state-changed`). Jobs that failed before this migration were not recorded and stay uncounted."""
    await db[FACTS].update_many({"k": "failed", "s": "tg-session"}, {"$set": {"k": "attempt_failed"}})


async def sweep(db: Any, retention_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete facts, leads and job links last touched more than `retention_days` ago.

    Users, accounts and group links are state, not history, and stay (a user seen long ago must not
    come back as new)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    facts = await db[FACTS].delete_many({"t": {"$lt": cutoff}})
    leads = await db[LEADS].delete_many({"last_at": {"$lt": cutoff}})
    jobs = await db[JOBS].delete_many({"at": {"$lt": cutoff}})
    campaigns = await db[CAMPAIGNS].delete_many({"last_at": {"$lt": cutoff}})
    return {
        "facts": facts.deleted_count,
        "leads": leads.deleted_count,
        "jobs": jobs.deleted_count,
        "campaigns": campaigns.deleted_count,
    }


async def _set_if_newer(coll: Any, key: Any, field: str, at: Any, values: dict[str, Any]) -> None:
    """Set `values` (and `field` = `at`) unless the document already holds something newer.

    Written as insert-or-conditional-update so a redelivered or out-of-order event never overwrites a
    later state."""
    try:
        await coll.insert_one({"_id": key, field: at, **values})
    except DuplicateKeyError:
        # Two conditional updates rather than one `$or`: the embedded server scans the whole
        # collection for an `$or`, even next to `_id` (100 ms at 10k documents against 1.5 ms).
        change = {"$set": {field: at, **values}}
        done = await coll.update_one({"_id": key, field: {"$lt": at}}, change)
        if done.matched_count == 0:
            await coll.update_one({"_id": key, field: None}, change)


class FactStore:
    """The statistics collections: the consumer's writes (each idempotent and order-independent), then
    the reads the six statistics are computed from (queries.py folds them)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.facts = db[FACTS]

    # --- facts -----------------------------------------------------------------------------------

    async def job_link(self, job_id: str) -> dict[str, Any] | None:
        """What is known of a job: its campaign `c`, lead, and `auto` (the rule that queued it)."""
        link: dict[str, Any] | None = await self.db[JOBS].find_one({"_id": job_id})
        return link

    async def add_fact(self, fact: dict[str, Any]) -> None:
        """Insert a fact once (a redelivered event finds its fact and changes nothing)."""
        body = {k: v for k, v in fact.items() if k != "_id"}
        await self.facts.update_one({"_id": fact["_id"]}, {"$setOnInsert": body}, upsert=True)

    async def has_fact(self, fact_id: str) -> bool:
        return await self.facts.find_one({"_id": fact_id}, {"_id": 1}) is not None

    async def claim_send(self, fact: dict[str, Any]) -> None:
        """Our send (`fact`: origin queue or automation, with its job) of a message first recorded as
        typed elsewhere (its echo reached tg-session before the send was recorded) is ours."""
        ours = {k: fact[k] for k in ("o", "j", "c") if k in fact}
        await self.facts.update_one({"_id": fact["_id"], "o": "external"}, {"$set": ours})

    async def fill_from_link(self, fact_id: str, link: dict[str, Any]) -> None:
        """A fact written before its job's link takes the campaign and origin from it (see Ingest)."""
        if link.get("c"):
            await self.facts.update_one({"_id": fact_id, "c": None}, {"$set": {"c": link["c"]}})
        if link.get("auto"):
            await self.facts.update_one({"_id": fact_id, "o": "queue"}, {"$set": {"o": "automation"}})

    async def first_contact(self, fact: dict[str, Any]) -> None:
        """Remember the earliest private contact with a user (`new users`)."""
        direction = "outbound" if fact["k"] == "sent" else "inbound"
        values = {"fact": fact["_id"], "dir": direction, "a": fact.get("a")}
        try:
            await self.db[USERS].insert_one({"_id": fact["u"], "first_at": fact["t"], **values})
        except DuplicateKeyError:
            await self.db[USERS].update_one(
                {"_id": fact["u"], "first_at": {"$gt": fact["t"]}},
                {"$set": {"first_at": fact["t"], **values}},
            )

    # --- projections -----------------------------------------------------------------------------

    async def link_jobs(
        self, job_ids: list[str], campaign_id: str, lead_id: str | None, at: datetime
    ) -> None:
        values: dict[str, Any] = {"c": campaign_id}
        if lead_id:
            values["lead"] = lead_id
        await self.db[JOBS].bulk_write(
            [UpdateOne({"_id": j}, {"$set": values, "$max": {"at": at}}, upsert=True) for j in job_ids],
            ordered=False,
        )
        # Facts of these jobs written before the link get their campaign now.
        jobs: Any = job_ids[0] if len(job_ids) == 1 else {"$in": job_ids}  # eq is far cheaper there
        await self.facts.update_many({"j": jobs, "c": None}, {"$set": {"c": campaign_id}})

    async def automation_jobs(self, job_ids: list[str], rule_id: str, at: datetime) -> None:
        """Jobs a trigger rule queued: their sends are of origin `automation` (written before or after)."""
        await self.db[JOBS].bulk_write(
            [
                UpdateOne({"_id": j}, {"$set": {"auto": rule_id}, "$max": {"at": at}}, upsert=True)
                for j in job_ids
            ],
            ordered=False,
        )
        jobs: Any = job_ids[0] if len(job_ids) == 1 else {"$in": job_ids}
        await self.facts.update_many({"j": jobs, "o": "queue"}, {"$set": {"o": "automation"}})

    async def attribute_lead(self, lead_id: str, campaign_id: str | None, account_id: str | None) -> None:
        """The first campaign and account that messaged a lead (first touch)."""
        for field, value in (("c", campaign_id), ("a", account_id)):
            if value is None:
                continue
            try:
                await self.db[LEADS].insert_one({"_id": lead_id, field: value})
            except DuplicateKeyError:
                await self.db[LEADS].update_one({"_id": lead_id, field: None}, {"$set": {field: value}})

    async def account_added(self, account_id: str, at: datetime) -> None:
        """`new`, an account's first state: set only while no state is known, and without a `state_at`,
        so every `account-status-changed` supersedes it whichever arrives first."""
        acc = self.db[ACCOUNTS]
        await acc.update_one({"_id": account_id}, {"$max": {"added_at": at}}, upsert=True)
        await acc.update_one({"_id": account_id, "state": None}, {"$set": {"state": "new"}})

    async def account_state(self, account_id: str, state: str, at: datetime) -> None:
        """The state as of `at` (the event's `stateAt`); an older change never overwrites a newer one."""
        await _set_if_newer(self.db[ACCOUNTS], account_id, "state_at", at, {"state": state})

    async def account_as_recorded(
        self, account_id: str, state: str, telegram_id: int | None, asked_at: datetime
    ) -> None:
        """tg-session's record of an account, read at `asked_at`, replaces the projected state unless
        an event newer than the question already changed it (its `stateAt` after `asked_at`). The state
        is stamped `asked_at`, so an older event replayed or redelivered later cannot undo it."""
        values: dict[str, Any] = {"state": state}
        if telegram_id is not None:
            values["tg"] = telegram_id
        await _set_if_newer(self.db[ACCOUNTS], account_id, "state_at", asked_at, values)

    async def accounts_gone(self, kept: Iterable[str], asked_at: datetime) -> int:
        """Accounts the projection knows and tg-session's record (read at `asked_at`) does not: removed
        as of `asked_at` (one added later still counts: its `added_at` is newer)."""
        done = await self.db[ACCOUNTS].update_many(
            {"_id": {"$nin": sorted(kept)}}, {"$max": {"removed_at": asked_at}}
        )
        return int(done.modified_count)

    async def newest_fact_time(self) -> datetime | None:
        last = await self.facts.find_one({}, {"t": 1}, sort=[("t", -1)])
        return last["t"] if last else None

    async def fleet_user(self, account_id: str, telegram_id: int) -> None:
        """The account's own Telegram user id (one of the fleet's users)."""
        await self.db[ACCOUNTS].update_one({"_id": account_id}, {"$set": {"tg": telegram_id}}, upsert=True)

    async def account_removed(self, account_id: str, at: datetime) -> None:
        await self.db[ACCOUNTS].update_one({"_id": account_id}, {"$max": {"removed_at": at}}, upsert=True)

    async def lead_reached(
        self, lead_id: str, stage: str, at: datetime, captured: dict[str, Any] | None = None
    ) -> None:
        """A lead reached `stage` at `at`; `captured` (source, user, group) when it was just captured."""
        change: dict[str, Any] = {"$min": {f"reached.{stage}": at}, "$max": {"last_at": at}}
        if captured is not None:
            change = {
                "$set": captured,
                "$min": {"captured_at": at, f"reached.{stage}": at},
                "$max": {"last_at": at},
            }
        await self.db[LEADS].update_one({"_id": lead_id}, change, upsert=True)
        await _set_if_newer(self.db[LEADS], lead_id, "stage_at", at, {"stage": stage})

    async def group_chat(self, group_id: str, chat_id: int) -> None:
        await self.db[GROUP_CHATS].update_one({"_id": group_id}, {"$set": {"ch": chat_id}}, upsert=True)

    async def meta_if_newer(self, key: str, field: str, at: Any, values: dict[str, Any]) -> None:
        await _set_if_newer(self.db[META], key, field, at, values)

    async def campaign_figures(self, campaign_id: str, at: datetime, values: dict[str, Any]) -> None:
        """A campaign's counters as of `at` (`campaign-progress`); an older snapshot changes nothing."""
        await _set_if_newer(self.db[CAMPAIGNS], campaign_id, "progress_at", at, values)
        await self.db[CAMPAIGNS].update_one({"_id": campaign_id}, {"$max": {"last_at": at}})

    async def campaign_status(self, campaign_id: str, at: datetime, values: dict[str, Any]) -> None:
        """A campaign's status as of `at` (`campaign-state-changed`); an older change changes nothing."""
        await _set_if_newer(self.db[CAMPAIGNS], campaign_id, "status_at", at, values)
        await self.db[CAMPAIGNS].update_one({"_id": campaign_id}, {"$max": {"last_at": at}})

    # --- reads -----------------------------------------------------------------------------------

    def all_facts(self) -> AsyncIterator[dict[str, Any]]:
        """Every fact, in one unfiltered pass (the `scan` read plan)."""
        return self.facts.find({}, batch_size=10_000)

    async def facts_matching(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """The facts of one query (the `index` read plan: queries.py puts the time range first)."""
        return await self.facts.find(query, batch_size=10_000).to_list(None)

    async def oldest_fact_time(self) -> datetime | None:
        first = await self.facts.find_one({}, {"t": 1}, sort=[("t", 1)])
        return first["t"] if first else None

    def accounts(self) -> AsyncIterator[dict[str, Any]]:
        return self.db[ACCOUNTS].find({})

    async def fleet_users(self) -> frozenset[int]:
        """The Telegram user ids of the fleet's own accounts (every account that ever logged in)."""
        docs = await self.db[ACCOUNTS].find({"tg": {"$ne": None}}, {"tg": 1}).to_list(None)
        return frozenset(d["tg"] for d in docs if "tg" in d)

    async def leads(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.db[LEADS].find(query).to_list(None)

    async def captured_leads(self, fleet: frozenset[int] = frozenset()) -> int:
        """Every lead kept, except leads of the fleet's own accounts."""
        q: dict[str, Any] = {"captured_at": {"$ne": None}}
        if fleet:
            q["user"] = {"$nin": sorted(fleet)}
        return await self.db[LEADS].count_documents(q)

    async def chats_of_groups(self, group_ids: Iterable[str]) -> dict[str, int]:
        """Campaign group id -> Telegram chat id, for the groups known (from `keyword-matched`)."""
        return {
            g["_id"]: g["ch"] async for g in self.db[GROUP_CHATS].find({"_id": {"$in": sorted(group_ids)}})
        }

    async def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign's latest figures and status (`stats_campaigns`: a few documents per campaign
        ever run within the retention, so read whole)."""
        return await self.db[CAMPAIGNS].find({}).to_list(None)

    async def first_contacts(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        return await self.db[USERS].find({"first_at": {"$gte": since, "$lt": until}}).to_list(None)

    async def meta(self, key: str) -> dict[str, Any] | None:
        """A `stats_meta` document: `general` (the gateway's time zone) or `monitoring`."""
        return await self.db[META].find_one({"_id": key})
