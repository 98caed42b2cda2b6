"""Member extraction: a paced background job per request, run by the replica holding the account,
with its progress (offset, counts) stored after every page so that another replica (or this one,
restarted) carries on where it stopped. Collected users are stored per job; export as CSV or XLSX.

The fleet's own accounts are not collected (matched by Telegram user id, else by phone) unless the
request's filters say `includeFleet`: they are not members to reach, and an export would carry their
phones. They count as `skipped`."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tgm_contracts.base import Page, utcnow
from tgm_contracts.commands import telegram_ops as telegram_cmd
from tgm_contracts.events_session import ExtractionFinished, ExtractionProgress
from tgm_contracts.models.analytics import ExportFile
from tgm_contracts.models.session import (
    AccountState,
    ChatView,
    CollectedUserView,
    ExtractionFilters,
    ExtractionJobView,
    GroupMemberView,
)
from tgm_runtime import Conflict, NotFound
from tgm_runtime.cursor import Keyset
from tgm_runtime.exports import Exports
from tgm_runtime.routes import answers

from ..accounts.service import Accounts
from ..base_store import put_ops
from ..capabilities import Emit, Spawn
from ..fleet.health import HOLDABLE, Health
from ..fleet.pool import AccountPool
from ..ports import PeerNotFound, TelegramFailure, TelegramUnreachable
from ..settings import SessionSettings
from ..store import Doc, Repos
from ..views import record_view
from .store import digits, fleet_identities

log = logging.getLogger("tgm.session.extraction")

FINAL = ("completed", "failed", "cancelled")
# get-collected-users sort fields a row may lack (no username, never seen online); the keyset
# filter then follows the database, which sorts a missing value lowest (indexes: store.py, migration 6).
_COLLECTED_NULLABLE = frozenset({"last_online_at", "username"})
PRESENCE_DAYS = {"online": 0, "recently": 3, "last_week": 7, "last_month": 30}
ALL_COLUMNS = list(telegram_cmd.CollectedUserColumn.__args__)  # type: ignore[attr-defined]
#: Inline exports stay below one NATS message (1 MiB by default), base64 included.


def keep(member: GroupMemberView, f: ExtractionFilters, now: datetime) -> bool:
    if f.exclude_bots and member.is_bot:
        return False
    if f.exclude_deleted and member.is_deleted:
        return False
    if f.exclude_admins and member.role in ("creator", "admin"):
        return False
    if f.require_username and not member.username:
        return False
    if f.premium_only and not member.is_premium:
        return False
    if f.online_only and member.presence != "online":
        return False
    if f.active_within_days is not None:
        if member.last_online_at is not None:
            if now - member.last_online_at > timedelta(days=f.active_within_days):
                return False
        else:
            days = PRESENCE_DAYS.get(member.presence)
            if days is None or days > f.active_within_days:
                return False
    return True


@dataclass(kw_only=True, eq=False)
class Extractions:
    repos: Repos
    pool: AccountPool
    accounts: Accounts
    health: Health
    emit: Emit
    spawn: Spawn
    settings: SessionSettings
    replica_id: str
    #: Where an export too large for one reply goes (the object store, served by the gateway; without
    #: one: inline, cut to fit).
    exports: Exports = field(default_factory=Exports)
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict, init=False)

    # --- commands ----------------------------------------------------------------------------------

    @answers(telegram_cmd.ExtractMembers)
    async def start(self, req: telegram_cmd.ExtractMembersRequest) -> ExtractionJobView:
        doc = await self.accounts.find(req)
        if not doc.get("session_enc") or AccountState(doc["state"]) not in HOLDABLE:
            raise Conflict(f"account {doc['_id']} is {doc['state']}: log it in before extracting members")
        now = utcnow()
        job: Doc = {
            "_id": f"ext_{uuid.uuid4().hex[:16]}",
            "account_id": doc["_id"],
            "chat_ref": str(req.group),
            "chat": None,
            "source": req.source,
            "filters": req.filters.model_dump(by_alias=False),
            "limit": req.limit,
            "message_limit": req.message_limit,
            "state": "queued",
            "progress": 0.0,
            "scanned": 0,
            "collected": 0,
            "skipped": 0,
            "offset": 0,
            "offset_id": 0,
            "total_estimate": None,
            "error": None,
            "runner": None,
            "runner_seen_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.repos.extractions.insert(job)
        return job_view(job)

    @answers(telegram_cmd.GetExtractionStatus)
    async def status(self, req: telegram_cmd.GetExtractionStatusRequest) -> telegram_cmd.ExtractionJobList:
        if req.job_id:
            job = await self.repos.extractions.get(req.job_id)
            if job is None:
                raise NotFound(f"no extraction job {req.job_id}")
            return telegram_cmd.ExtractionJobList(items=[job_view(job)])
        q: Doc = {}
        if req.account_id:
            q["account_id"] = req.account_id
        if req.state:
            q["state"] = {"$in": list(req.state)}
        jobs = await self.repos.extractions.find(q, sort=[("created_at", -1)], limit=req.limit)
        return telegram_cmd.ExtractionJobList(items=[job_view(j) for j in jobs])

    @answers(telegram_cmd.CancelExtraction)
    async def cancel(self, req: telegram_cmd.JobRef) -> ExtractionJobView:
        job = await self.repos.extractions.get(req.job_id)
        if job is None:
            raise NotFound(f"no extraction job {req.job_id}")
        if job["state"] in FINAL:
            raise Conflict(f"extraction {req.job_id} already ended ({job['state']})")
        now = utcnow()
        res = await self.repos.extractions.set_if_open(
            req.job_id, {"state": "cancelled", "finished_at": now, "updated_at": now}
        )
        if res is None:
            raise Conflict(f"extraction {req.job_id} ended meanwhile")
        task = self.running.get(req.job_id)
        if task is not None:
            task.cancel()
        await self._finished(res)
        return job_view(res)

    # --- the worker --------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Run the open jobs of accounts this replica holds (new ones, and ones whose runner died)."""
        held = [a for a, live in self.pool.live.items() if live.ready.is_set()]
        if not held:
            return
        stale = utcnow() - timedelta(seconds=max(30.0, self.settings.extraction_page_delay_seconds * 5 + 30))
        jobs = await self.repos.extractions.find(
            {"state": {"$in": ["queued", "running"]}, "account_id": {"$in": held}}, sort=[("created_at", 1)]
        )
        for job in jobs:
            if job["_id"] in self.running:
                continue
            claimed = await self.repos.extractions.claim(job["_id"], self.replica_id, stale)
            if claimed is None:
                continue
            task = self.spawn(self._run(claimed), f"extraction-{job['_id']}")
            self.running[job["_id"]] = task
            task.add_done_callback(functools.partial(self._forget, job["_id"]))

    def _forget(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self.running.pop(job_id, None)

    async def stop(self) -> None:
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _save(self, job_id: str, fields: Doc) -> Doc | None:
        fields["runner_seen_at"] = utcnow()
        return await self.repos.extractions.set_if_open(
            job_id, {**fields, "updated_at": utcnow()}, runner=self.replica_id
        )

    async def _run(self, job: Doc) -> None:
        job_id = job["_id"]
        account_id = job["account_id"]
        started = utcnow()
        try:
            while True:
                live = self.pool.get(account_id)
                if live is None:
                    await self.repos.extractions.let_go(job_id, self.replica_id)
                    return  # the account moved: its new holder carries on
                client = await self.pool.client_of(live)
                try:
                    done = await self._page(job, client)
                except (TelegramFailure, TelegramUnreachable, PeerNotFound) as exc:
                    if isinstance(exc, TelegramFailure) and exc.is_flood:
                        await self.health.failure(account_id, exc, method=exc.method)
                        await self._save(
                            job_id, {"resume_at": utcnow() + timedelta(seconds=exc.seconds or 1)}
                        )
                        await asyncio.sleep(exc.seconds or 1)  # a background job waits; no request is held
                        job = await self.repos.extractions.get(job_id) or job
                        continue
                    if isinstance(exc, TelegramUnreachable):
                        await asyncio.sleep(self.settings.worker_interval_seconds)
                        continue
                    err = await self.health.failure(account_id, exc, method="channels.getParticipants")
                    failed = await self._save(
                        job_id, {"state": "failed", "error": err.message, "finished_at": utcnow()}
                    )
                    if failed is not None:
                        await self._finished(failed, started)
                    return
                if done is None:
                    return  # cancelled, or taken over
                job = done
                if job["state"] == "completed":
                    await self._finished(job, started)
                    return
                await asyncio.sleep(self.settings.extraction_page_delay_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("extraction %s failed", job_id)
            failed = await self._save(
                job_id,
                {
                    "state": "failed",
                    "error": f"internal error: {type(exc).__name__}",
                    "finished_at": utcnow(),
                },
            )
            if failed is not None:
                await self._finished(failed, started)

    async def _page(self, job: Doc, client: Any) -> Doc | None:
        """One page: fetch, filter, store, record progress. The updated job, or None to stop."""
        job_id = job["_id"]
        filters = ExtractionFilters.model_validate(job["filters"])
        fields: Doc = {"state": "running"}
        if job.get("chat") is None:
            chat = await client.chat_info(job["chat_ref"])
            fields.update(
                chat=chat.model_dump(mode="json", by_alias=False),
                started_at=utcnow(),
                total_estimate=chat.members_count,
            )
            job = {**job, **fields}
        chat = ChatView.model_validate(job["chat"])
        now = utcnow()
        if job["source"] == "participants":
            page = await client.participants(
                job["chat_ref"],
                filter="recent",
                query=filters.query,
                offset=job["offset"],
                limit=self.settings.extraction_page_size,
            )
            members = page.members
            fields["total_estimate"] = page.total
            fields["offset"] = job["offset"] + len(members)
            scanned_now = len(members)
            exhausted = not members or fields["offset"] >= page.total
            last_seen: dict[int, datetime] = {}
            with_photo = page.with_photo
        else:
            batch = min(100, job["message_limit"] - job["scanned"])
            authors, next_id = await client.message_authors(job["chat_ref"], job.get("offset_id") or 0, batch)
            with_photo = {u.user_id for u, _, photo in authors if photo}
            scanned_now = batch if next_id is not None else len(authors)
            fields["offset_id"] = next_id or 0
            exhausted = next_id is None or job["scanned"] + batch >= job["message_limit"]
            last_seen = {}
            unique: dict[int, GroupMemberView] = {}
            for user, date, _photo in authors:
                if user.user_id not in unique:
                    unique[user.user_id] = GroupMemberView(**user.model_dump(by_alias=False))
                last_seen[user.user_id] = max(date, last_seen.get(user.user_id, date))
            members = list(unique.values())
            fields["total_estimate"] = job["message_limit"]
        kept = [m for m in members if keep(m, filters, now)]
        if not filters.include_fleet and kept:
            ids, phones = await fleet_identities(self.repos.accounts)
            kept = [
                m for m in kept if m.user_id not in ids and (not m.phone or digits(m.phone) not in phones)
            ]
        if filters.require_photo:
            kept = [m for m in kept if m.user_id in with_photo]
        skipped = len(members) - len(kept)
        if filters.skip_already_collected and kept:
            known = await self.repos.collected.known_ids(chat.chat_id, [m.user_id for m in kept])
            known_here = await self.repos.collected.find(
                {"job_id": job_id, "user_id": {"$in": [m.user_id for m in kept]}}, projection={"user_id": 1}
            )
            known -= {d["user_id"] for d in known_here}  # this job's own rows (a page redone after a restart)
            skipped += sum(1 for m in kept if m.user_id in known)
            kept = [m for m in kept if m.user_id not in known]
        if job.get("limit") is not None:
            room = max(0, job["limit"] - job["collected"])
            if len(kept) >= room:
                kept = kept[:room]
                exhausted = True
        docs = [
            {
                **m.model_dump(exclude={"role", "joined_at"}, by_alias=False),
                "_id": f"{job_id}:{m.user_id}",
                "source_chat_id": chat.chat_id,
                "source_chat_title": chat.title,
                "job_id": job_id,
                "account_id": job["account_id"],
                "member_role": m.role,
                "collected_at": now,
                "last_message_at": last_seen.get(m.user_id),
            }
            for m in kept
        ]
        added = await self.repos.collected.upsert_many(docs) if docs else 0
        fields["scanned"] = job["scanned"] + scanned_now
        fields["collected"] = job["collected"] + added
        fields["skipped"] = job["skipped"] + skipped
        total = fields.get("total_estimate") or 0
        if exhausted:
            fields.update(state="completed", progress=1.0, finished_at=utcnow())
        else:
            fields["progress"] = min(0.99, fields["scanned"] / total) if total else 0.0
        saved = await self._save(job_id, fields)
        if saved is None:
            return None
        await self.emit(
            ExtractionProgress(
                job_id=job_id,
                account_id=job["account_id"],
                chat_id=chat.chat_id,
                progress=saved["progress"],
                scanned=saved["scanned"],
                collected=saved["collected"],
                skipped=saved["skipped"],
                total_estimate=saved.get("total_estimate"),
            )
        )
        return saved

    async def _finished(self, job: Doc, started: datetime | None = None) -> None:
        chat = job.get("chat") or {}
        begin = job.get("started_at") or started or job["created_at"]
        await self.emit(
            ExtractionFinished(
                job_id=job["_id"],
                account_id=job["account_id"],
                chat_id=chat.get("chat_id") or chat.get("chatId"),
                chat_title=chat.get("title"),
                state=job["state"],
                scanned=job["scanned"],
                collected=job["collected"],
                error=job.get("error"),
                duration_seconds=max(0.0, ((job.get("finished_at") or utcnow()) - begin).total_seconds()),
            )
        )

    # --- collected users ---------------------------------------------------------------------------

    def _query(self, f: telegram_cmd.CollectedUserFilters) -> Doc:
        q: Doc = {}
        if f.job_id:
            q["job_id"] = f.job_id
        if f.source_chat_id is not None:
            q["source_chat_id"] = f.source_chat_id
        if f.account_id:
            q["account_id"] = f.account_id
        if f.has_username is not None:
            q["username"] = {"$ne": None} if f.has_username else None
        if f.is_bot is not None:
            q["is_bot"] = f.is_bot
        if f.is_premium is not None:
            q["is_premium"] = f.is_premium
        if f.presence:
            q["presence"] = {"$in": list(f.presence)}
        if f.active_within_days is not None:
            ok = [p for p, d in PRESENCE_DAYS.items() if d <= f.active_within_days]
            q["$or"] = [
                {"last_online_at": {"$gte": utcnow() - timedelta(days=f.active_within_days)}},
                {"last_online_at": None, "presence": {"$in": ok}},
            ]
        if f.text:
            import re

            rx = {"$regex": re.escape(f.text), "$options": "i"}
            q.setdefault("$and", []).append(
                {"$or": [{"username": rx}, {"first_name": rx}, {"last_name": rx}]}
            )
        put_ops(q, "collected_at", {"$gte": f.collected_since, "$lt": f.collected_until})
        return q

    @answers(telegram_cmd.GetCollectedUsers)
    async def collected(self, req: telegram_cmd.GetCollectedUsersRequest) -> Page[CollectedUserView]:
        q = self._query(req)
        # A keyset page in (sort field, _id), both in the asked order; the cursor carries the last
        # row's sort value and _id, and names the order, so a cursor of another sort or order is
        # Invalid (VALIDATION_ERROR), as is a malformed one. A row without the sort field (no
        # username, never seen online) sorts lowest, as the database sorts a missing value.
        order = Keyset((req.sort, "_id"), req.order == "desc", _COLLECTED_NULLABLE & {req.sort})
        if req.sort == "collected_at" and req.order == "desc":  # the default: read as time windows
            docs, next_cursor = await self.repos.collected.newest_page(order, q, req.cursor, req.limit)
        else:
            docs = await self.repos.collected.find(
                order.where(q, req.cursor), sort=order.sort(), limit=req.limit + 1
            )
            docs, next_cursor = order.page(docs, req.limit)
        total = await self.repos.collected.count(q)
        return Page[CollectedUserView](
            items=[collected_view(d) for d in docs], next_cursor=next_cursor, total=total
        )

    @answers(telegram_cmd.ExportCollectedUsers)
    async def export(self, req: telegram_cmd.ExportCollectedUsersRequest) -> ExportFile:
        q = self._query(req)
        columns = list(req.columns or ALL_COLUMNS)
        docs = await self.repos.collected.find(
            q, sort=[("collected_at", 1), ("_id", 1)], limit=req.max_rows + 1
        )
        rows = [[d.get(c) for c in columns] for d in docs[: req.max_rows]]
        return await self.exports.file(
            req.format,
            columns,
            rows,
            name="collected-users",
            sheet="collected users",
            truncated=len(docs) > req.max_rows,
            role=telegram_cmd.ExportCollectedUsers.ROLE,
        )


def job_view(job: Doc) -> ExtractionJobView:
    return ExtractionJobView(
        job_id=job["_id"],
        account_id=job["account_id"],
        chat=ChatView.model_validate(job["chat"]) if job.get("chat") else None,
        chat_ref=job["chat_ref"],
        source=job["source"],
        filters=job.get("filters") or {},
        limit=job.get("limit"),
        state=job["state"],
        progress=job.get("progress", 0.0),
        scanned=job.get("scanned", 0),
        collected=job.get("collected", 0),
        skipped=job.get("skipped", 0),
        total_estimate=job.get("total_estimate"),
        error=job.get("error"),
        created_at=job["created_at"],
        started_at=job.get("started_at"),
        finished_at=job.get("finished_at"),
        updated_at=job.get("updated_at"),
    )


def collected_view(d: Doc) -> CollectedUserView:
    return record_view(CollectedUserView, d)
