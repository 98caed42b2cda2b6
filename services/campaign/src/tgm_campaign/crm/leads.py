"""Leads: adding (with `ifExists`), patching, deleting, moving through the funnel (one or many),
assigning, listing by keyset cursor in any sort, and one lead's details.

One lead per Telegram user (user id, username and phone are each unique); `crm/store.py` is the one
writer of that shape. A delete cancels the lead's waiting jobs; do-not-contact skips them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import crm as crm_cmd
from tgm_contracts.events_campaign import LeadCaptured
from tgm_contracts.models.campaign import JobReason, JobState, LeadStage, LeadView
from tgm_runtime import Conflict, NotFound
from tgm_runtime.cursor import Keyset
from tgm_runtime.routes import answers

from ..messaging.compliance import user_keys
from ..messaging.history_store import message_view
from ..messaging.job_events import JobEvents
from ..messaging.store import attempt, job_view
from ..messaging.stores import MessagingStores
from ..messaging.window_store import between
from .service import Contacts, aware, name_search, to_ms
from .store import LeadTaken, lead_view, new_lead_id, stage_history, username_key
from .tracking_store import ActivityStore, TrackedUserStore

#: How many messages and jobs a lead's details show.
RECENT = 20
#: Sort fields that may be missing or null (they sort lowest, as in the database).
SORT_NULLABLE = frozenset({"intent_score", "last_contacted_at"})
#: What `LeadCaptured` tells of a new lead as it was stored (same names in both).
CAPTURED_AS_STORED = (
    "user_id",
    "username",
    "first_name",
    "last_name",
    "source_type",
    "source_group_id",
    "triggered_keyword",
    "intent_score",
)


class LeadService:
    def __init__(
        self,
        contacts: Contacts,
        stores: MessagingStores,
        events: JobEvents,
        tracked: TrackedUserStore,
        activity: ActivityStore,
    ) -> None:
        self.contacts = contacts
        self.stores = stores
        self.events = events
        self.leads = stores.leads
        self.tracked = tracked
        self.activity = activity

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
            await self.stores.history.remember_user(user_id, at=self.contacts.now(), **fill)

    async def _cancel_jobs(self, lead_id: str, state: JobState, reason: JobReason, why: str) -> int:
        now = self.contacts.now()
        moved = await self.stores.jobs.settle_many_waiting(
            {"lead_id": lead_id},
            {"state": state.value, "reason": reason.value, "last_error": why, "updated_at": now},
            attempt(now, "cancelled" if state is JobState.CANCELLED else "skipped", reason=reason, error=why),
        )
        for doc in moved:
            await self.events.job_changed(doc, state, doc["state"], reason=reason, error=why)
        return len(moved)

    @answers(crm_cmd.AddLead, principal=True)
    async def add_lead(self, req: crm_cmd.AddLeadRequest, by: str | None) -> LeadView:
        user_id, username, first, last = req.user_id, req.username, req.first_name, req.last_name
        keys = await self.contacts.keys(user_id, username, req.phone)
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
            doc = await self._create(
                {
                    "user_id": user_id,
                    "username": username,
                    "first_name": first,
                    "last_name": last,
                    "phone": req.phone,
                    "stage": req.stage.value,
                    "source_type": req.source_type,
                    "source_chat_id": req.source_chat_id,
                    "source_chat_title": req.source_chat_title,
                    "notes": req.notes,
                    "tags": list(dict.fromkeys(req.tags)),
                    "custom_fields": dict(req.custom_fields),
                    "assigned_account_id": req.assigned_account_id,
                },
                keys,
                by,
                "added",
            )
            if doc is None:
                continue  # someone added the same user just now: answer per ifExists
            return lead_view(doc)
        raise Conflict("the lead changed concurrently; try again")

    async def _create(
        self,
        fields: dict[str, Any],
        keys: Sequence[str],
        by: str | None,
        reason: str,
        *,
        group_title: str | None = None,
    ) -> dict[str, Any] | None:
        """Insert a new lead: `fields` (identity, stage, source …) over what every new lead starts
        with; then teach the users directory its names and announce it (LeadCaptured, told from the
        stored lead, plus `group_title`, the monitored group's, for a keyword capture; then
        EntityChanged). None when the user's lead was inserted just now by someone else (LeadTaken)."""
        now = self.contacts.now()
        doc: dict[str, Any] = {
            "_id": new_lead_id(),
            "username_key": username_key(fields.get("username")),
            "stage_changed_at": now,
            "custom_fields": {},
            "intent_level": "none",
            "do_not_contact": False,
            "blacklisted": await self._blacklisted(keys),
            "message_count": 0,
            "created_at": now,
            "updated_at": now,
            "stage_history": [
                {"from_stage": None, "to_stage": fields["stage"], "at": now, "by": by, "reason": reason}
            ],
            **fields,
        }
        doc = {k: v for k, v in doc.items() if v is not None}  # unique identity fields: omitted, not null
        try:
            await self.leads.insert(doc)
        except LeadTaken:
            return None
        await self._remember(doc)
        await self.events.emit(
            LeadCaptured(
                lead_id=doc["_id"],
                stage=LeadStage(doc["stage"]),
                source_group_title=group_title,
                **{name: doc.get(name) for name in CAPTURED_AS_STORED},
            )
        )
        await self.contacts.entity_changed("lead", doc["_id"], "created", by)
        return doc

    async def find_for_user(self, user_id: int | None, username: str | None = None) -> LeadView | None:
        """The lead of a Telegram user (by id, else username), or None."""
        if user_id is None and not username:
            return None
        doc = await self.leads.by_identity(user_id, username)
        return lead_view(doc) if doc is not None else None

    async def capture(
        self,
        *,
        user_id: int,
        username: str | None,
        first_name: str | None,
        last_name: str | None,
        group_id: str | None,
        group_title: str | None,
        chat_id: int | None,
        keyword: str | None,
        keyword_set_id: str | None,
        intent_score: int | None,
        stage: LeadStage,
        tags: Sequence[str],
        by: str | None,
    ) -> tuple[LeadView, bool]:
        """A trigger rule's `add_lead`: create the user's lead with source `keyword` (the monitored
        group, the keyword that matched, its set, the intent), or update the existing one (tags
        merged, a higher intent kept, the keyword and group filled where it had none; its first
        source is kept). Idempotent (one lead per user, so a redelivered message or two replicas
        racing create one); `LeadCaptured` only when it was created. Returns (lead, created)."""
        for _ in range(5):
            existing = await self.leads.by_identity(user_id, username)
            if existing is not None:
                set_: dict[str, Any] = {}
                merged = list(dict.fromkeys([*(existing.get("tags") or []), *tags]))
                if merged != (existing.get("tags") or []):
                    set_["tags"] = merged
                if intent_score is not None and intent_score > (existing.get("intent_score") or -1):
                    set_["intent_score"] = intent_score
                for name, value in (
                    ("triggered_keyword", keyword),
                    ("keyword_set_id", keyword_set_id),
                    ("source_group_id", group_id),
                    ("source_chat_id", chat_id),
                    ("source_chat_title", group_title),
                    ("username", username),
                    ("first_name", first_name),
                    ("last_name", last_name),
                ):
                    if value is not None and existing.get(name) is None:
                        set_[name] = value
                if "username" in set_:
                    set_["username_key"] = username_key(set_["username"])
                if not set_:
                    return lead_view(existing), False
                set_["updated_at"] = self.contacts.next_updated(existing)
                try:
                    ok = await self.leads.patch(
                        existing["_id"], set_, expected_updated_at=existing["updated_at"]
                    )
                except LeadTaken:  # the username belongs to another lead: keep the rest
                    set_.pop("username", None)
                    set_.pop("username_key", None)
                    ok = await self.leads.patch(
                        existing["_id"], set_, expected_updated_at=existing["updated_at"]
                    )
                if not ok:
                    continue
                doc = await self.contacts.lead(existing["_id"])
                await self._remember(doc)
                await self.contacts.entity_changed("lead", doc["_id"], "updated", by)
                return lead_view(doc), False
            created = await self._create(
                {
                    "user_id": user_id,
                    "username": username,
                    "first_name": first_name,
                    "last_name": last_name,
                    "stage": stage.value,
                    "source_type": "keyword",
                    "source_group_id": group_id,
                    "source_chat_id": chat_id,
                    "source_chat_title": group_title,
                    "triggered_keyword": keyword,
                    "keyword_set_id": keyword_set_id,
                    "intent_score": intent_score,
                    "tags": list(dict.fromkeys(tags)),
                },
                await self.contacts.keys(user_id, username),
                by,
                "keyword trigger",
                group_title=group_title,
            )
            if created is None:
                continue  # captured just now by another replica or listener: update that one
            return lead_view(created), True
        raise Conflict("the lead keeps changing; try again")

    async def _exists(
        self, existing: dict[str, Any], req: crm_cmd.AddLeadRequest, by: str | None
    ) -> LeadView:
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
            set_["updated_at"] = self.contacts.next_updated(existing)
            try:
                ok = await self.leads.patch(existing["_id"], set_, expected_updated_at=existing["updated_at"])
            except LeadTaken:
                raise Conflict("another lead already has that user id, username or phone") from None
            if not ok:
                raise Conflict("the lead changed concurrently; try again")
            doc = await self.contacts.lead(existing["_id"])
            await self._remember(doc)
            await self.contacts.entity_changed("lead", doc["_id"], "updated", by)
        if "stage" in given and req.stage.value != doc.get("stage"):
            doc, _ = await self.contacts.move(doc["_id"], req.stage, by, "added again")
        return lead_view(doc)

    @answers(crm_cmd.UpdateLead, principal=True)
    async def update_lead(self, req: crm_cmd.UpdateLeadRequest, by: str | None) -> LeadView:
        given = req.model_fields_set - {"lead_id", "expected_updated_at"}
        expected = to_ms(req.expected_updated_at) if req.expected_updated_at is not None else None
        for _ in range(5):
            doc = await self.contacts.lead(req.lead_id)
            if expected is not None and to_ms(doc["updated_at"]) != expected:
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
            set_["updated_at"] = self.contacts.next_updated(doc)
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
            doc = await self.contacts.lead(doc["_id"])
            await self._remember(doc)
            await self.contacts.entity_changed("lead", doc["_id"], "updated", by)
            return lead_view(doc)
        raise Conflict("the lead keeps changing; try again")

    @answers(crm_cmd.DeleteLead, principal=True)
    async def delete_lead(self, req: crm_cmd.LeadIdRequest, by: str | None) -> Ack:
        await self.contacts.lead(req.lead_id)
        if not await self.leads.delete(req.lead_id):
            raise NotFound(f"lead {req.lead_id} does not exist")
        await self._cancel_jobs(req.lead_id, JobState.CANCELLED, JobReason.CLEARED, "lead deleted")
        await self.contacts.entity_changed("lead", req.lead_id, "deleted", by)
        return Ack(affected=1)

    @answers(crm_cmd.UpdateLeadStage, principal=True)
    async def update_lead_stage(self, req: crm_cmd.UpdateLeadStageRequest, by: str | None) -> LeadView:
        doc, _ = await self.contacts.move(req.lead_id, req.stage, by, req.reason)
        return lead_view(doc)

    @answers(crm_cmd.UpdateFunnelStage, principal=True)
    async def update_funnel_stage(
        self, req: crm_cmd.UpdateFunnelStageRequest, by: str | None
    ) -> crm_cmd.BulkLeadResult:
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
                _, moved = await self.contacts.move(lead_id, req.stage, by, req.reason)
            except NotFound:  # deleted meanwhile
                missing.append(lead_id)
                continue
            affected += moved
            unchanged += not moved
        return crm_cmd.BulkLeadResult(affected=affected, unchanged=unchanged, missing=missing)

    @answers(crm_cmd.AssignLead, principal=True)
    async def assign_lead(self, req: crm_cmd.AssignLeadRequest, by: str | None) -> crm_cmd.BulkLeadResult:
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
            set_["updated_at"] = self.contacts.next_updated(doc)
            await self.leads.patch(lead_id, set_, unset)
            await self.contacts.entity_changed("lead", lead_id, "updated", by)
            affected += 1
        return crm_cmd.BulkLeadResult(
            affected=affected, unchanged=unchanged, missing=[i for i in wanted if i not in found]
        )

    @answers(crm_cmd.GetLeads)
    async def get_leads(self, req: crm_cmd.GetLeadsRequest) -> Page[LeadView]:
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
        created = between(req.created_since, req.created_until)
        if created:
            query["created_at"] = created
        if req.search:
            query.update(name_search(req.search))
        total = await self.leads.count(query)
        order = Keyset(
            (req.sort, "_id"),
            descending=req.descending,
            nullable=frozenset({req.sort}) & SORT_NULLABLE,
        )
        docs, nxt = await self.leads.page(query, order, req.cursor, req.limit)
        return Page[LeadView](items=[lead_view(d) for d in docs], next_cursor=nxt, total=total)

    @answers(crm_cmd.GetLeadDetails)
    async def lead_details(self, req: crm_cmd.LeadIdRequest) -> crm_cmd.LeadDetails:
        doc = await self.contacts.lead(req.lead_id)
        now = self.contacts.now()
        keys = await self.contacts.keys(doc.get("user_id"), doc.get("username"), doc.get("phone"))
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
        jobs = await self.stores.jobs.recent_of(doc["_id"], keys, RECENT)
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
        return crm_cmd.LeadDetails(
            **lead_view(doc).model_dump(),
            stage_history=stage_history(doc),
            recent_messages=messages,
            recent_jobs=[job_view(j, now) for j in jobs],
            matched_keywords=matched,
            tracked=tracked is not None,
        )
