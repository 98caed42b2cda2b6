"""Use cases of the 14 contacts commands (leads, the funnel, tracked users, a user's timeline) and
the CRM side of the events campaign consumes (replies, group messages of tracked users, keyword
matches and trigger runs).

Stage changes are conditional updates on the stage read (retried when someone moved the lead in
between) and land in the lead's `stage_history` with who and why; each is published as
`lead-stage-changed`. Creations, changes and deletions publish `entity-changed`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import crm as CRM
from tgm_contracts.events_campaign import (
    EntityChanged,
    KeywordMatched,
    LeadCaptured,
    LeadStageChanged,
    TriggerFired,
)
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import JobReason, JobState, LeadStage, LeadView
from tgm_runtime import Conflict, Invalid, NotFound

from ..messaging.clock import Clock, utc
from ..messaging.compliance import user_keys
from ..messaging.history_store import message_view
from ..messaging.job_events import JobEvents
from ..messaging.store import attempt, job_view
from ..messaging.stores import MessagingStores
from .store import LeadTaken, lead_view, new_lead_id, stage_history, stages_reached, username_key
from .tracking_store import ActivityStore, TrackedTaken, TrackedUserStore, new_tracked_id

log = logging.getLogger("tgm.campaign.crm")

FUNNEL: tuple[LeadStage, ...] = tuple(LeadStage)
LINEAR = (LeadStage.NEW, LeadStage.CONTACTED, LeadStage.REPLIED, LeadStage.FOLLOW_UP)
"""The path a lead walks; `closed_won` ends it, `closed_lost` is a way out from any stage."""
PREVIOUS = {
    LeadStage.CONTACTED: LeadStage.NEW,
    LeadStage.REPLIED: LeadStage.CONTACTED,
    LeadStage.FOLLOW_UP: LeadStage.REPLIED,
    LeadStage.CLOSED_WON: LeadStage.FOLLOW_UP,
    LeadStage.CLOSED_LOST: LeadStage.NEW,  # lost from anywhere: its rate is over every lead
}
REPLY_MOVES = (LeadStage.NEW.value, LeadStage.CONTACTED.value)
"""Stages an inbound private message moves to `replied`."""
TEXT_MAX = 500
RECENT = 20
ACTIVITY_SOURCES_MAX = 1000
SORT_NULLABLE = {"intent_score", "last_contacted_at"}


def aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _ms(at: datetime) -> datetime:
    at = aware(at)  # type: ignore[assignment]
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _cursor(values: Mapping[str, Any]) -> str:
    def enc(v: Any) -> Any:
        return {"d": v.isoformat()} if isinstance(v, datetime) else v

    raw = json.dumps({k: enc(v) for k, v in values.items()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _uncursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(data, dict):
            raise ValueError
        return {
            k: datetime.fromisoformat(v["d"]) if isinstance(v, dict) and "d" in v else v
            for k, v in data.items()
        }
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise Invalid("cursor is not one this command gave out", {"field": "cursor"}) from None


def _after(field: str, value: Any, last_id: str, descending: bool, nullable: bool) -> dict[str, Any]:
    """Documents after (value, id) in the order `field, _id` (nulls sort lowest, as in the database)."""
    op = "$lt" if descending else "$gt"
    if value is None:
        same = {field: None, "_id": {op: last_id}}
        return same if descending else {"$or": [same, {field: {"$ne": None}}]}
    ors: list[dict[str, Any]] = [{field: {op: value}}, {field: value, "_id": {op: last_id}}]
    if nullable and descending:
        ors.append({field: None})
    return {"$or": ors}


def _and(query: dict[str, Any], cond: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [query, cond]} if query else cond


def _rx(text: str) -> dict[str, Any]:
    import re

    return {"$regex": re.escape(text), "$options": "i"}


def _display(doc: Mapping[str, Any]) -> str | None:
    name = " ".join(x for x in (doc.get("first_name"), doc.get("last_name")) if x)
    return name or doc.get("username")


def _detail(**values: Any) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in values.items() if v is not None}


class CrmService:
    def __init__(
        self,
        stores: MessagingStores,
        events: JobEvents,
        clock: Clock,
        tracked: TrackedUserStore,
        activity: ActivityStore,
    ) -> None:
        self.stores = stores
        self.events = events
        self.clock = clock
        leads = stores.leads
        self.leads = leads
        self.tracked = tracked
        self.activity = activity

    def _now(self) -> datetime:
        return utc(self.clock())

    async def _entity(self, entity: str, entity_id: str, action: str, by: str | None) -> None:
        await self.events.emit(EntityChanged(entity=entity, entity_id=entity_id, action=action, by=by))

    async def _lead(self, lead_id: str) -> dict[str, Any]:
        doc = await self.leads.get(lead_id)
        if doc is None:
            raise NotFound(f"lead {lead_id} does not exist")
        return doc

    async def _keys(self, user_id: int | None, username: str | None, phone: str | None = None) -> list[str]:
        base = user_keys(user_id, username_key(username), phone)
        if not base:
            return []
        aliases = await self.stores.history.aliases(base)
        return list(dict.fromkeys(k for ks in aliases.values() for k in ks))

    async def _blacklisted(self, keys: Sequence[str]) -> bool:
        return any(doc.get("blacklisted") for doc in (await self.stores.compliance.blocked(keys)).values())

    async def _remember(self, doc: Mapping[str, Any]) -> None:
        """Teach the users directory a lead's names (templates render `{first_name}` from it) where
        Telegram has not told us them yet."""
        user_id = doc.get("user_id")
        if user_id is None or not (doc.get("first_name") or doc.get("last_name") or doc.get("username")):
            return
        known = (await self.stores.history.users(user_keys(user_id))).get(user_keys(user_id)[0]) or {}
        fill = {
            k: doc.get(k)
            for k in ("first_name", "last_name", "username", "phone")
            if doc.get(k) and not known.get(k)
        }
        if fill:
            await self.stores.history.remember_user(user_id, at=self._now(), **fill)

    async def _cancel_jobs(self, lead_id: str, state: JobState, reason: JobReason, why: str) -> int:
        now = self._now()
        moved = await self.stores.jobs.settle_many_waiting(
            {"lead_id": lead_id},
            {"state": state.value, "reason": reason.value, "last_error": why, "updated_at": now},
            attempt(now, "cancelled" if state is JobState.CANCELLED else "skipped", reason=reason, error=why),
        )
        for doc in moved:
            await self.events.job_changed(doc, state, doc["state"], reason=reason, error=why)
        return len(moved)

    # --- leads -------------------------------------------------------------------------------------

    async def add_lead(self, req: CRM.AddLeadRequest, by: str | None) -> LeadView:
        user_id, username, first, last = req.user_id, req.username, req.first_name, req.last_name
        keys = await self._keys(user_id, username, req.phone)
        if user_id is None or username is None:  # the users directory may know the rest of the identity
            for known in (await self.stores.history.users(keys)).values():
                user_id = user_id if user_id is not None else known.get("user_id")
                username = username or known.get("username")
                first = first or known.get("first_name")
                last = last or known.get("last_name")
        for _ in range(3):
            existing = await self.leads.by_identity(user_id, username, req.phone)
            if existing is not None:
                return await self._exists(existing, req, by)
            now = self._now()
            doc: dict[str, Any] = {
                "_id": new_lead_id(),
                "user_id": user_id,
                "username": username,
                "username_key": username_key(username),
                "first_name": first,
                "last_name": last,
                "phone": req.phone,
                "stage": req.stage.value,
                "stage_changed_at": now,
                "source_type": req.source_type,
                "source_chat_id": req.source_chat_id,
                "source_chat_title": req.source_chat_title,
                "notes": req.notes,
                "tags": list(dict.fromkeys(req.tags)),
                "custom_fields": dict(req.custom_fields),
                "assigned_account_id": req.assigned_account_id,
                "intent_level": "none",
                "do_not_contact": False,
                "blacklisted": await self._blacklisted(keys),
                "message_count": 0,
                "created_at": now,
                "updated_at": now,
                "stage_history": [
                    {"from_stage": None, "to_stage": req.stage.value, "at": now, "by": by, "reason": "added"}
                ],
            }
            doc = {k: v for k, v in doc.items() if v is not None}  # unique identity fields: omitted, not null
            try:
                await self.leads.insert(doc)
            except LeadTaken:
                continue  # someone added the same user just now: answer per ifExists
            await self._remember(doc)
            await self.events.emit(
                LeadCaptured(
                    lead_id=doc["_id"],
                    user_id=user_id,
                    username=username,
                    first_name=first,
                    last_name=last,
                    source_type=req.source_type,
                    source_group_id=None,
                    stage=req.stage,
                )
            )
            await self._entity("lead", doc["_id"], "created", by)
            return lead_view(doc)
        raise Conflict("the lead changed concurrently; try again")

    async def _exists(self, existing: dict[str, Any], req: CRM.AddLeadRequest, by: str | None) -> LeadView:
        if req.if_exists == "error":
            raise Conflict(f"the user is already lead {existing['_id']}", {"leadId": existing["_id"]})
        if req.if_exists == "return":
            return lead_view(existing)
        given = req.model_fields_set
        set_: dict[str, Any] = {}
        for name in ("first_name", "last_name", "phone", "source_chat_id", "source_chat_title", "notes"):
            if name in given and getattr(req, name) is not None:
                set_[name] = getattr(req, name)
        for name in ("user_id", "username", "assigned_account_id"):
            if name in given and getattr(req, name) is not None and existing.get(name) is None:
                set_[name] = getattr(req, name)
        if "username" in set_:
            set_["username_key"] = username_key(set_["username"])
        if "tags" in given:
            set_["tags"] = list(dict.fromkeys([*(existing.get("tags") or []), *req.tags]))
        if "custom_fields" in given:
            set_["custom_fields"] = {**(existing.get("custom_fields") or {}), **req.custom_fields}
        set_ = {k: v for k, v in set_.items() if existing.get(k) != v}
        doc = existing
        if set_:
            set_["updated_at"] = self._next_updated(existing)
            try:
                ok = await self.leads.patch(existing["_id"], set_, expected_updated_at=existing["updated_at"])
            except LeadTaken:
                raise Conflict("another lead already has that user id, username or phone") from None
            if not ok:
                raise Conflict("the lead changed concurrently; try again")
            doc = await self._lead(existing["_id"])
            await self._remember(doc)
            await self._entity("lead", doc["_id"], "updated", by)
        if "stage" in given and req.stage.value != doc.get("stage"):
            doc, _ = await self._move(doc["_id"], req.stage, by, "added again")
        return lead_view(doc)

    def _next_updated(self, doc: Mapping[str, Any]) -> datetime:
        """Now, but strictly after the last change (so `expectedUpdatedAt` tells every change apart)."""
        now = self._now()
        last = aware(doc.get("updated_at"))
        return now if last is None or now > last else last + timedelta(milliseconds=1)

    async def update_lead(self, req: CRM.UpdateLeadRequest, by: str | None) -> LeadView:
        given = req.model_fields_set - {"lead_id", "expected_updated_at"}
        expected = _ms(req.expected_updated_at) if req.expected_updated_at is not None else None
        for _ in range(5):
            doc = await self._lead(req.lead_id)
            if expected is not None and _ms(doc["updated_at"]) != expected:
                raise Conflict(
                    f"lead {req.lead_id} changed since {expected.isoformat()}",
                    {"updatedAt": aware(doc["updated_at"]).isoformat()},  # type: ignore[union-attr]
                )
            set_: dict[str, Any] = {}
            unset: list[str] = []
            for name in ("first_name", "last_name", "phone", "notes", "intent_score"):
                if name in given:
                    value = getattr(req, name)
                    if value is None:
                        unset.append(name)
                    else:
                        set_[name] = value
            if "username" in given:
                if req.username is None:
                    unset += ["username", "username_key"]
                else:
                    set_["username"], set_["username_key"] = req.username, username_key(req.username)
            if "tags" in given:
                set_["tags"] = list(dict.fromkeys(req.tags or []))
            if "custom_fields" in given:
                merged = dict(doc.get("custom_fields") or {})
                if req.custom_fields is None:
                    merged = {}
                for k, v in (req.custom_fields or {}).items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                set_["custom_fields"] = merged
            if "intent_level" in given:
                set_["intent_level"] = req.intent_level or "none"
            if "do_not_contact" in given:
                set_["do_not_contact"] = bool(req.do_not_contact)
            set_["updated_at"] = self._next_updated(doc)
            try:
                ok = await self.leads.patch(doc["_id"], set_, unset, expected_updated_at=doc["updated_at"])
            except LeadTaken:
                raise Conflict("another lead already has that username or phone") from None
            if not ok:
                continue  # changed between our read and write: read again (and re-check expected)
            if set_.get("do_not_contact") and not doc.get("do_not_contact"):
                await self._cancel_jobs(
                    doc["_id"], JobState.SKIPPED, JobReason.DO_NOT_CONTACT, "lead marked do not contact"
                )
            doc = await self._lead(doc["_id"])
            await self._remember(doc)
            await self._entity("lead", doc["_id"], "updated", by)
            return lead_view(doc)
        raise Conflict("the lead keeps changing; try again")

    async def delete_lead(self, req: CRM.LeadIdRequest, by: str | None) -> Ack:
        await self._lead(req.lead_id)
        if not await self.leads.delete(req.lead_id):
            raise NotFound(f"lead {req.lead_id} does not exist")
        await self._cancel_jobs(req.lead_id, JobState.CANCELLED, JobReason.CLEARED, "lead deleted")
        await self._entity("lead", req.lead_id, "deleted", by)
        return Ack(affected=1)

    async def _move(
        self,
        lead_id: str,
        to: LeadStage,
        by: str | None,
        reason: str | None,
        only_from: Sequence[str] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Move one lead (only from `only_from` stages when given); (the lead after, whether it
        moved). Retried while others move it."""
        for _ in range(5):
            doc = await self._lead(lead_id)
            frm = doc.get("stage") or LeadStage.NEW.value
            if frm == to.value or (only_from is not None and frm not in only_from):
                return doc, False
            now = self._now()
            entry = {"from_stage": frm, "to_stage": to.value, "at": now, "by": by, "reason": reason}
            ok = await self.leads.patch(
                lead_id,
                {"stage": to.value, "stage_changed_at": now, "updated_at": self._next_updated(doc)},
                expected_stage=frm,
                push_history=entry,
            )
            if not ok:
                continue
            await self.events.emit(
                LeadStageChanged(
                    lead_id=lead_id,
                    user_id=doc.get("user_id"),
                    from_stage=LeadStage(frm),
                    to_stage=to,
                    reason=reason,
                    by=by,
                )
            )
            await self._entity("lead", lead_id, "updated", by)
            return await self._lead(lead_id), True
        raise Conflict(f"lead {lead_id} keeps changing stage; try again")

    async def update_lead_stage(self, req: CRM.UpdateLeadStageRequest, by: str | None) -> LeadView:
        doc, _ = await self._move(req.lead_id, req.stage, by, req.reason)
        return lead_view(doc)

    async def update_funnel_stage(
        self, req: CRM.UpdateFunnelStageRequest, by: str | None
    ) -> CRM.BulkLeadResult:
        if req.lead_ids is not None:
            wanted = list(dict.fromkeys(req.lead_ids))
            found = await self.leads.many(wanted)
            ids = [i for i in wanted if i in found]
            missing = [i for i in wanted if i not in found]
        else:
            users = list(dict.fromkeys(req.user_ids or []))
            by_user = await self.leads.by_users(users)
            ids = [by_user[u]["_id"] for u in users if u in by_user]
            missing = [str(u) for u in users if u not in by_user]
        affected = unchanged = 0
        for lead_id in ids:
            try:
                _, moved = await self._move(lead_id, req.stage, by, req.reason)
            except NotFound:  # deleted meanwhile
                missing.append(lead_id)
                continue
            affected += moved
            unchanged += not moved
        return CRM.BulkLeadResult(affected=affected, unchanged=unchanged, missing=missing)

    async def assign_lead(self, req: CRM.AssignLeadRequest, by: str | None) -> CRM.BulkLeadResult:
        wanted = list(dict.fromkeys(req.lead_ids))
        found = await self.leads.many(wanted)
        affected = unchanged = 0
        fields = {n: getattr(req, n) for n in ("account_id", "assignee") if n in req.model_fields_set}
        target = {("assigned_account_id" if n == "account_id" else n): v for n, v in fields.items()}
        for lead_id in wanted:
            doc = found.get(lead_id)
            if doc is None:
                continue
            if all(doc.get(k) == v for k, v in target.items()):
                unchanged += 1
                continue
            set_ = {k: v for k, v in target.items() if v is not None}
            unset = [k for k, v in target.items() if v is None]
            set_["updated_at"] = self._next_updated(doc)
            await self.leads.patch(lead_id, set_, unset)
            await self._entity("lead", lead_id, "updated", by)
            affected += 1
        return CRM.BulkLeadResult(
            affected=affected, unchanged=unchanged, missing=[i for i in wanted if i not in found]
        )

    # --- reading leads -----------------------------------------------------------------------------

    async def get_leads(self, req: CRM.GetLeadsRequest) -> Page[LeadView]:
        query: dict[str, Any] = {}
        if req.stages:
            query["stage"] = {"$in": [s.value for s in req.stages]}
        if req.tags:
            query["tags"] = {"$all": list(req.tags)}
        for name in (
            "source_type",
            "source_group_id",
            "keyword_set_id",
            "campaign_id",
            "assigned_account_id",
            "assignee",
        ):
            value = getattr(req, name)
            if value is not None:
                query[name] = value
        if req.intent_levels:
            query["intent_level"] = {"$in": list(req.intent_levels)}
        if not req.include_do_not_contact:
            query["do_not_contact"] = {"$ne": True}
        created: dict[str, Any] = {}
        if req.created_since:
            created["$gte"] = req.created_since
        if req.created_until:
            created["$lt"] = req.created_until
        if created:
            query["created_at"] = created
        if req.search:
            rx = _rx(req.search.lstrip("@"))
            query["$or"] = [{"first_name": rx}, {"last_name": rx}, {"username": rx}, {"notes": rx}]
        total = await self.leads.count(query)
        field, desc = req.sort, req.descending
        page_query = query
        if req.cursor:
            c = _uncursor(req.cursor)
            if c.get("f") != field or "i" not in c:
                raise Invalid("cursor belongs to another sort order", {"field": "cursor"})
            page_query = _and(query, _after(field, c.get("v"), c["i"], desc, field in SORT_NULLABLE))
        direction = DESCENDING if desc else ASCENDING
        docs = await self.leads.find(
            page_query, [(field, direction), ("_id", direction)], req.limit + 1, {"stage_history": 0}
        )
        more = len(docs) > req.limit
        docs = docs[: req.limit]
        nxt = _cursor({"f": field, "v": docs[-1].get(field), "i": docs[-1]["_id"]}) if more else None
        return Page[LeadView](items=[lead_view(d) for d in docs], next_cursor=nxt, total=total)

    async def lead_details(self, req: CRM.LeadIdRequest) -> CRM.LeadDetails:
        doc = await self._lead(req.lead_id)
        now = self._now()
        keys = await self._keys(doc.get("user_id"), doc.get("username"), doc.get("phone"))
        messages: list[Any] = []
        if keys:
            msgs, _ = await self.stores.history.page(
                keys=keys,
                account_id=None,
                since=None,
                until=None,
                search=None,
                newest_first=True,
                limit=RECENT,
                cursor=None,
            )
            users = await self.stores.history.users({m["chat_key"] for m in msgs})
            messages = [message_view(m, users.get(m["chat_key"])) for m in msgs]
        job_query: dict[str, Any] = {"lead_id": doc["_id"]}
        if keys:
            job_query = {"$or": [job_query, {"peer_keys": {"$in": keys}}]}
        jobs = (
            await self.stores.jobs.c.find(job_query)
            .sort([("created_at", DESCENDING)])
            .limit(RECENT)
            .to_list()
        )
        matched: list[str] = [doc["triggered_keyword"]] if doc.get("triggered_keyword") else []
        for item in await self.activity.of(
            doc.get("user_id"),
            doc["_id"],
            kinds=["keyword_match"],
            since=None,
            before=None,
            at=None,
            limit=200,
        ):
            kw = (item.get("detail") or {}).get("keyword")
            if kw and kw not in matched:
                matched.append(kw)
        tracked = await self.tracked.find_one(doc.get("user_id"), doc.get("username"))
        return CRM.LeadDetails(
            **lead_view(doc).model_dump(),
            stage_history=stage_history(doc),
            recent_messages=messages,
            recent_jobs=[job_view(j, now) for j in jobs],
            matched_keywords=matched,
            tracked=tracked is not None,
        )

    # --- funnel ------------------------------------------------------------------------------------

    async def funnel_stats(self, req: CRM.GetFunnelStatsRequest) -> CRM.FunnelStats:
        query: dict[str, Any] = {}
        created: dict[str, Any] = {}
        if req.since:
            created["$gte"] = req.since
        if req.until:
            created["$lt"] = req.until
        if created:
            query["created_at"] = created
        for name in ("campaign_id", "source_group_id", "keyword_set_id", "assigned_account_id"):
            if getattr(req, name) is not None:
                query[name] = getattr(req, name)
        docs = await self.leads.scan(
            query,
            {"stage": 1, "stage_history": 1, "stage_changed_at": 1, "created_at": 1, "source_type": 1},
        )
        now = self._now()
        week_ago = now - timedelta(days=7)
        count = dict.fromkeys(FUNNEL, 0)
        reached = dict.fromkeys(FUNNEL, 0)
        hours: dict[LeadStage, list[float]] = {s: [] for s in FUNNEL}
        by_source: dict[str, int] = {}
        new_week = 0
        for doc in docs:
            stage = LeadStage(doc.get("stage") or "new")
            count[stage] += 1
            seen = {LeadStage(s) for s in stages_reached(doc)}
            furthest = max((LINEAR.index(s) for s in seen if s in LINEAR), default=0)
            if LeadStage.CLOSED_WON in seen:
                furthest = len(LINEAR) - 1  # won means the whole path was walked
            for i, s in enumerate(LINEAR):
                reached[s] += i <= furthest
            reached[LeadStage.CLOSED_WON] += LeadStage.CLOSED_WON in seen
            reached[LeadStage.CLOSED_LOST] += LeadStage.CLOSED_LOST in seen
            for s, h in _stays(doc, now):
                hours[s].append(h)
            src = doc.get("source_type") or "manual"
            by_source[src] = by_source.get(src, 0) + 1
            created_at = aware(doc.get("created_at"))
            new_week += created_at is not None and created_at >= week_ago
        stages = []
        for s in FUNNEL:
            prev = PREVIOUS.get(s)
            rate = None
            if prev is not None and reached[prev]:
                rate = min(1.0, reached[s] / reached[prev])
            stays = hours[s]
            stages.append(
                CRM.FunnelStageCount(
                    stage=s,
                    count=count[s],
                    reached=reached[s],
                    conversion_from_previous=rate,
                    avg_hours_in_stage=(sum(stays) / len(stays)) if stays else None,
                )
            )
        total = len(docs)
        return CRM.FunnelStats(
            stages=stages,
            total=total,
            conversion_rate=(count[LeadStage.CLOSED_WON] / total) if total else None,
            new_last_7_days=new_week,
            by_source=by_source,
        )

    async def funnel_users(self, req: CRM.GetFunnelUsersRequest) -> Page[CRM.FunnelUser]:
        if (
            req.min_intent_score is not None
            and req.max_intent_score is not None
            and req.min_intent_score > req.max_intent_score
        ):
            raise Invalid("minIntentScore is above maxIntentScore", {"field": "minIntentScore"})
        now = self._now()
        query: dict[str, Any] = {}
        if req.stage is not None:
            query["stage"] = req.stage.value
        if req.tags:
            query["tags"] = {"$all": list(req.tags)}
        score: dict[str, Any] = {}
        if req.min_intent_score is not None:
            score["$gte"] = req.min_intent_score
        if req.max_intent_score is not None:
            score["$lte"] = req.max_intent_score
        if score:
            query["intent_score"] = score
        if req.stale_days is not None:
            query["stage_changed_at"] = {"$lte": now - timedelta(days=req.stale_days)}
        if req.search:
            rx = _rx(req.search.lstrip("@"))
            query["$or"] = [{"first_name": rx}, {"last_name": rx}, {"username": rx}, {"notes": rx}]
        total = await self.leads.count(query)
        page_query = query
        if req.cursor:
            c = _uncursor(req.cursor)
            if c.get("f") != "stage_changed_at" or "i" not in c:
                raise Invalid("cursor is not one this command gave out", {"field": "cursor"})
            page_query = _and(query, _after("stage_changed_at", c.get("v"), c["i"], False, True))
        docs = await self.leads.find(
            page_query,
            [("stage_changed_at", ASCENDING), ("_id", ASCENDING)],
            req.limit + 1,
            {"stage_history": 0},
        )
        more = len(docs) > req.limit
        docs = docs[: req.limit]
        items = []
        for d in docs:
            since = aware(d.get("stage_changed_at"))
            touched = [t for t in (aware(d.get("last_contacted_at")), aware(d.get("last_replied_at"))) if t]
            items.append(
                CRM.FunnelUser(
                    lead_id=d["_id"],
                    user_id=d.get("user_id"),
                    username=d.get("username"),
                    display_name=_display(d),
                    stage=d.get("stage") or "new",
                    stage_since=since,
                    days_in_stage=round((now - since).total_seconds() / 86400, 3) if since else None,
                    intent_score=d.get("intent_score"),
                    intent_level=d.get("intent_level") or "none",
                    tags=d.get("tags") or [],
                    last_interaction_at=max(touched) if touched else None,
                    assigned_account_id=d.get("assigned_account_id"),
                )
            )
        nxt = (
            _cursor({"f": "stage_changed_at", "v": docs[-1].get("stage_changed_at"), "i": docs[-1]["_id"]})
            if more
            else None
        )
        return Page[CRM.FunnelUser](items=items, next_cursor=nxt, total=total)

    # --- tracked users -----------------------------------------------------------------------------

    async def _tracked_view(self, doc: Mapping[str, Any]) -> CRM.TrackedUserView:
        lead = await self.leads.by_identity(doc.get("user_id"), doc.get("username"))
        return CRM.TrackedUserView(
            id=doc["_id"],
            user_id=doc.get("user_id"),
            username=doc.get("username"),
            first_name=doc.get("first_name"),
            last_name=doc.get("last_name"),
            value_level=doc.get("value_level") or "medium",
            status=doc.get("status") or "active",
            source=doc.get("source"),
            source_group_id=doc.get("source_group_id"),
            notes=doc.get("notes"),
            lead_id=lead["_id"] if lead else None,
            groups_seen=len(doc.get("groups") or []),
            message_count=doc.get("message_count", 0),
            last_seen_at=doc.get("last_seen_at"),
            tracked_since=doc["tracked_since"],
        )

    async def track(self, req: CRM.TrackUserRequest, by: str | None) -> CRM.TrackedUserView:
        given = req.model_fields_set
        fields: dict[str, Any] = {
            n: getattr(req, n)
            for n in ("first_name", "last_name", "value_level", "source", "source_group_id", "notes")
            if n in given and getattr(req, n) is not None
        }
        for _ in range(3):
            doc = await self.tracked.find_one(req.user_id, req.username)
            if doc is not None:
                set_ = dict(fields)
                if req.user_id is not None and doc.get("user_id") is None:
                    set_["user_id"] = req.user_id
                if req.username is not None and doc.get("username") is None:
                    set_["username"], set_["username_key"] = req.username, username_key(req.username)
                changed = {k: v for k, v in set_.items() if doc.get(k) != v}
                if changed:
                    try:
                        doc = await self.tracked.update(doc["_id"], changed) or doc
                    except TrackedTaken:
                        raise Conflict("another tracked user already has that user id or username") from None
                    await self._entity("tracked_user", doc["_id"], "updated", by)
                return await self._tracked_view(doc)
            user_id, username = req.user_id, req.username
            known = (await self.stores.history.users(await self._keys(user_id, username))).values()
            for k in known:
                user_id = user_id if user_id is not None else k.get("user_id")
                username = username or k.get("username")
                fields.setdefault("first_name", k.get("first_name"))
                fields.setdefault("last_name", k.get("last_name"))
            now = self._now()
            new = {
                "_id": new_tracked_id(),
                "user_id": user_id,
                "username": username,
                "username_key": username_key(username),
                "value_level": "medium",
                "status": "active",
                **fields,
                "message_count": 0,
                "groups": [],
                "tracked_since": now,
                "seen_sort": now,
                "by": by,
            }
            new = {k: v for k, v in new.items() if v is not None}
            try:
                await self.tracked.insert(new)
            except TrackedTaken:
                continue
            await self._entity("tracked_user", new["_id"], "created", by)
            return await self._tracked_view(new)
        raise Conflict("the tracked user changed concurrently; try again")

    async def untrack(self, req: CRM.UntrackUserRequest, by: str | None) -> Ack:
        doc = await self.tracked.find_one(req.user_id, req.username)
        if doc is None:
            raise NotFound("that user is not tracked")
        await self.tracked.delete(doc["_id"])
        if req.forget_activity:
            await self.activity.forget(doc.get("user_id"), doc.get("username"))
        await self._entity("tracked_user", doc["_id"], "deleted", by)
        return Ack(affected=1)

    async def tracked_users(self, req: CRM.GetTrackedUsersRequest) -> Page[CRM.TrackedUserView]:
        query: dict[str, Any] = {}
        if req.value_level:
            query["value_level"] = req.value_level
        if req.status:
            query["status"] = req.status
        if req.search:
            rx = _rx(req.search.lstrip("@"))
            query["$or"] = [{"first_name": rx}, {"last_name": rx}, {"username": rx}, {"notes": rx}]
        after = None
        if req.cursor:
            c = _uncursor(req.cursor)
            if not isinstance(c.get("v"), datetime) or "i" not in c:
                raise Invalid("cursor is not one this command gave out", {"field": "cursor"})
            after = (c["v"], c["i"])
        total = await self.tracked.count(query)
        docs = await self.tracked.page(query, req.limit, after)
        more = len(docs) > req.limit
        docs = docs[: req.limit]
        nxt = _cursor({"v": docs[-1]["seen_sort"], "i": docs[-1]["_id"]}) if more else None
        return Page[CRM.TrackedUserView](
            items=[await self._tracked_view(d) for d in docs], next_cursor=nxt, total=total
        )

    # --- a user's timeline -------------------------------------------------------------------------

    async def user_activity(self, req: CRM.GetUserActivityRequest) -> Page[CRM.ActivityItem]:
        if req.lead_id is not None:
            lead: dict[str, Any] | None = await self._lead(req.lead_id)
            user_id = lead.get("user_id")  # type: ignore[union-attr]
        else:
            user_id = req.user_id
            lead = await self.leads.by_identity(user_id)
        username = (lead or {}).get("username")
        keys = await self._keys(user_id, username, (lead or {}).get("phone"))
        kinds = set(req.kinds) if req.kinds else None
        cursor_at: datetime | None = None
        cursor_key = ""
        if req.cursor:
            c = _uncursor(req.cursor)
            if not isinstance(c.get("a"), datetime) or not isinstance(c.get("k"), str):
                raise Invalid("cursor is not one this command gave out", {"field": "cursor"})
            cursor_at, cursor_key = aware(c["a"]), c["k"]
        since, until = aware(req.since), aware(req.until)
        want = req.limit + 1
        items: list[tuple[datetime, str, CRM.ActivityItem]] = []

        def keep(kind: str, at: datetime | None) -> bool:
            at = aware(at)
            if at is None or (kinds is not None and kind not in kinds):
                return False
            return (since is None or at >= since) and (until is None or at < until)

        def add(at: datetime, key: str, kind: str, **fields: Any) -> None:
            at = aware(at)  # type: ignore[assignment]
            if not keep(kind, at):
                return
            if cursor_at is not None and (at, key) >= (cursor_at, cursor_key):
                return
            items.append((at, key, CRM.ActivityItem(at=at, kind=kind, **fields)))

        async def window(find: Any, date_field: str, base: dict[str, Any]) -> list[dict[str, Any]]:
            """The newest `want` documents before the cursor, plus every one at the cursor's instant."""
            dates: dict[str, Any] = {}
            if since is not None:
                dates["$gte"] = since
            if until is not None:
                dates["$lt"] = until
            if cursor_at is not None:
                dates["$lt"] = min(cursor_at, dates.get("$lt", cursor_at))
            q = _and(base, {date_field: dates}) if dates else base
            docs = await find(q).sort([(date_field, DESCENDING), ("_id", DESCENDING)]).limit(want).to_list()
            if cursor_at is not None:
                docs += await find(_and(base, {date_field: cursor_at})).limit(ACTIVITY_SOURCES_MAX).to_list()
            return docs

        # private messages, from chat history
        directions = [
            d for d, k in (("in", "private_in"), ("out", "private_out")) if kinds is None or k in kinds
        ]
        if keys and directions:
            base = {"peer_keys": {"$in": keys}, "private": True, "direction": {"$in": directions}}
            for m in await window(self.stores.history.messages.find, "date", base):
                add(
                    m["date"],
                    "m:" + m["_id"],
                    "private_in" if m["direction"] == "in" else "private_out",
                    account_id=m.get("account_id"),
                    text=(m.get("text") or "")[:TEXT_MAX] or None,
                    ref_id=m.get("job_id") or m["_id"],
                    detail=_detail(
                        messageId=m.get("message_id"), jobId=m.get("job_id"), source=m.get("source")
                    ),
                )
        # skipped and failed sends, from the queue
        job_kinds = {"skipped": "job_skipped", "failed": "job_failed"}
        states = [s for s, k in job_kinds.items() if kinds is None or k in kinds]
        if states and (keys or lead):
            who: list[dict[str, Any]] = []
            if lead:
                who.append({"lead_id": lead["_id"]})
            if keys:
                who.append({"peer_keys": {"$in": keys}})
            base = {"$and": [{"$or": who} if len(who) > 1 else who[0], {"state": {"$in": states}}]}
            for j in await window(self.stores.jobs.c.find, "updated_at", base):
                add(
                    j["updated_at"],
                    "j:" + j["_id"],
                    job_kinds[j["state"]],
                    account_id=j.get("account_id"),
                    text=(j.get("last_error") or j.get("text") or "")[:TEXT_MAX] or None,
                    ref_id=j["_id"],
                    detail=_detail(reason=j.get("reason"), campaignId=j.get("campaign_id")),
                )
        # the lead's capture and stage changes
        if lead:
            add(
                lead["created_at"],
                "c:" + lead["_id"],
                "lead_captured",
                text=f"added as a lead ({lead.get('source_type') or 'manual'})",
                ref_id=lead["_id"],
                group_id=lead.get("source_group_id"),
                group_title=lead.get("source_chat_title"),
                detail=_detail(sourceType=lead.get("source_type"), keyword=lead.get("triggered_keyword")),
            )
            for i, h in enumerate(lead.get("stage_history") or []):
                if h.get("from_stage") is None:
                    continue
                add(
                    h["at"],
                    f"s:{lead['_id']}:{i:06d}",
                    "stage_change",
                    text=f"{h['from_stage']} → {h['to_stage']}"
                    + (f": {h['reason']}" if h.get("reason") else ""),
                    ref_id=lead["_id"],
                    detail=_detail(fromStage=h["from_stage"], toStage=h["to_stage"], by=h.get("by")),
                )
        # bans and opt-outs, from compliance (one per user, whichever key holds it)
        if keys:
            blocked = await self.stores.compliance.blocked(keys)
            ban = next((b for b in blocked.values() if b.get("blacklisted")), None)
            if ban and ban.get("blacklist_changed_at"):
                add(
                    ban["blacklist_changed_at"],
                    "b:" + ban["_id"],
                    "blacklisted",
                    text=ban.get("blacklist_reason"),
                    detail=_detail(by=ban.get("blacklist_by")),
                )
            out = next((b for b in blocked.values() if b.get("opted_out")), None)
            if out and out.get("opted_out_at"):
                add(
                    out["opted_out_at"],
                    "o:" + out["_id"],
                    "opted_out",
                    account_id=out.get("opted_out_via"),
                    text=out.get("stop_word"),
                    detail=_detail(stopWord=out.get("stop_word")),
                )
        # what only the CRM keeps: group messages of tracked users, keyword matches, trigger runs
        act_who: list[dict[str, Any]] = []
        if user_id is not None:
            act_who.append({"user_id": user_id})
        if lead:
            act_who.append({"lead_id": lead["_id"]})
        if act_who:
            base = {"$or": act_who} if len(act_who) > 1 else act_who[0]
            if kinds is not None:
                base = _and(base, {"kind": {"$in": sorted(kinds)}})
            for a in await window(self.activity.c.find, "at", base):
                add(
                    a["at"],
                    "a:" + a["_id"],
                    a["kind"],
                    account_id=a.get("account_id"),
                    group_id=a.get("group_id"),
                    group_title=a.get("group_title"),
                    text=a.get("text"),
                    ref_id=a.get("ref_id"),
                    detail=a.get("detail") or {},
                )
        items.sort(key=lambda t: (t[0], t[1]), reverse=True)
        page = items[: req.limit]
        nxt = _cursor({"a": page[-1][0], "k": page[-1][1]}) if len(items) > req.limit else None
        return Page[CRM.ActivityItem](items=[t[2] for t in page], next_cursor=nxt)

    # --- events ------------------------------------------------------------------------------------

    async def on_received(self, evt: MessageReceived) -> None:
        if evt.is_outgoing or evt.sender_id is None:
            return
        at = utc(evt.date.timestamp())
        sender = evt.sender
        if evt.chat_kind == "private":
            lead = await self.leads.by_identity(evt.sender_id)
            if lead is not None:
                last = aware(lead.get("last_replied_at"))
                if last is None or last < at:
                    await self.leads.patch(lead["_id"], {"last_replied_at": at})
                if lead.get("stage") in REPLY_MOVES:
                    try:
                        await self._move(
                            lead["_id"], LeadStage.REPLIED, "system", "the user wrote", only_from=REPLY_MOVES
                        )
                    except (NotFound, Conflict):
                        pass
            tracked = await self.tracked.active_by_user(evt.sender_id)
            if tracked is not None:
                key = f"{evt.account_id}|{evt.chat_id}|{evt.message_id}"
                await self.tracked.seen(tracked["_id"], None, at, {}, message_key=key)
            return
        tracked = await self.tracked.active_by_user(evt.sender_id)
        if tracked is None:
            return  # group traffic of users nobody tracks is monitoring's data
        group = await self.stores.groups.c.find_one({"chat_id": evt.chat_id}, {"_id": 1, "title": 1})
        lead = await self.leads.by_identity(evt.sender_id)
        stored = await self.activity.add(
            {
                "_id": f"g|{evt.chat_id}|{evt.message_id}",  # heard by several listeners: once
                "user_id": evt.sender_id,
                "username_key": username_key(sender.username if sender else None),
                "lead_id": lead["_id"] if lead else None,
                "kind": "group_message",
                "at": at,
                "account_id": evt.account_id,
                "group_id": group["_id"] if group else str(evt.chat_id),
                "group_title": evt.chat_title or (group or {}).get("title"),
                "text": (evt.text or "")[:TEXT_MAX] or None,
                "ref_id": str(evt.message_id),
                "detail": _detail(chatId=evt.chat_id, messageId=evt.message_id, mediaKind=evt.media_kind),
            }
        )
        if stored:
            fill = {}
            if sender is not None:
                for name in ("first_name", "last_name"):
                    if getattr(sender, name) and not tracked.get(name):
                        fill[name] = getattr(sender, name)
            await self.tracked.seen(tracked["_id"], str(evt.chat_id), at, fill)

    async def _concerned(self, user_id: int | None, lead_id: str | None) -> tuple[int | None, str | None]:
        """(user id, lead id) when a tracked user or a lead is concerned, else (None, None)."""
        lead = await self.leads.get(lead_id) if lead_id else None
        if lead is None and user_id is not None:
            lead = await self.leads.by_identity(user_id)
        user_id = user_id if user_id is not None else (lead or {}).get("user_id")
        tracked = await self.tracked.active_by_user(user_id) if user_id is not None else None
        if lead is None and tracked is None:
            return None, None
        return user_id, lead["_id"] if lead else None

    async def on_keyword(self, evt: KeywordMatched) -> None:
        user_id, lead_id = await self._concerned(evt.user_id, None)
        if user_id is None and lead_id is None:
            return
        await self.activity.add(
            {
                "_id": f"k|{evt.event_id}",
                "user_id": user_id,
                "lead_id": lead_id,
                "kind": "keyword_match",
                "at": utc(evt.occurred_at.timestamp()),
                "account_id": evt.listener_account_id,
                "group_id": evt.group_id,
                "group_title": evt.group_title,
                "text": evt.message_preview,
                "ref_id": evt.keyword_id or evt.keyword_set_id,
                "detail": _detail(
                    keyword=evt.keyword, keywordSetId=evt.keyword_set_id, matchType=evt.match_type
                ),
            }
        )

    async def on_trigger(self, evt: TriggerFired) -> None:
        user_id, lead_id = await self._concerned(evt.user_id, evt.lead_id)
        if user_id is None and lead_id is None:
            return
        await self.activity.add(
            {
                "_id": f"t|{evt.event_id}",
                "user_id": user_id,
                "lead_id": lead_id,
                "kind": "trigger_fired",
                "at": utc(evt.occurred_at.timestamp()),
                "group_id": evt.group_id,
                "text": f"{evt.rule_name}: {', '.join(evt.actions)}"[:TEXT_MAX],
                "ref_id": evt.rule_id,
                "detail": _detail(outcome=evt.outcome, keyword=evt.keyword, jobs=len(evt.job_ids)),
            }
        )


def _stays(doc: Mapping[str, Any], now: datetime) -> list[tuple[LeadStage, float]]:
    """(stage, hours) for every stay of the lead in a stage, the current one measured to now."""
    history = sorted(
        (h for h in doc.get("stage_history") or [] if h.get("at") and h.get("to_stage")),
        key=lambda h: aware(h["at"]),  # type: ignore[arg-type,return-value]
    )
    if not history:
        start = aware(doc.get("stage_changed_at") or doc.get("created_at"))
        return [(LeadStage(doc.get("stage") or "new"), (now - start).total_seconds() / 3600)] if start else []
    out = []
    for i, h in enumerate(history):
        start = aware(h["at"])
        end = aware(history[i + 1]["at"]) if i + 1 < len(history) else now
        out.append((LeadStage(h["to_stage"]), max(0.0, (end - start).total_seconds() / 3600)))  # type: ignore[operator]
    return out
