"""Tracked users: the users whose activity the CRM keeps (group messages, counts, when last seen),
started and stopped by command; listed most recently seen first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import crm as crm_cmd
from tgm_runtime import Conflict, NotFound
from tgm_runtime.routes import answers

from ..messaging.history_store import HistoryStore
from .service import Contacts, name_search
from .store import LeadStore, username_key
from .tracking_store import ActivityStore, TrackedTaken, TrackedUserStore, new_tracked_id


class TrackingService:
    """track-user, untrack-user, get-tracked-users; names a new tracked user from the users directory."""

    def __init__(
        self,
        contacts: Contacts,
        leads: LeadStore,
        users: HistoryStore,
        tracked: TrackedUserStore,
        activity: ActivityStore,
    ) -> None:
        self.contacts, self.leads, self.users = contacts, leads, users
        self.tracked, self.activity = tracked, activity

    async def _tracked_view(self, doc: Mapping[str, Any]) -> crm_cmd.TrackedUserView:
        lead = await self.leads.by_identity(doc.get("user_id"), doc.get("username"))
        return tracked_view(doc, lead["_id"] if lead else None)

    @answers(crm_cmd.TrackUser, principal=True)
    async def track(self, req: crm_cmd.TrackUserRequest, by: str | None) -> crm_cmd.TrackedUserView:
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
                    await self.contacts.entity_changed("tracked_user", doc["_id"], "updated", by)
                return await self._tracked_view(doc)
            user_id, username = req.user_id, req.username
            known = (await self.users.users(await self.contacts.keys(user_id, username))).values()
            for k in known:
                user_id = user_id if user_id is not None else k.get("user_id")
                username = username or k.get("username")
                fields.setdefault("first_name", k.get("first_name"))
                fields.setdefault("last_name", k.get("last_name"))
            now = self.contacts.now()
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
            await self.contacts.entity_changed("tracked_user", new["_id"], "created", by)
            return await self._tracked_view(new)
        raise Conflict("the tracked user changed concurrently; try again")

    @answers(crm_cmd.UntrackUser, principal=True)
    async def untrack(self, req: crm_cmd.UntrackUserRequest, by: str | None) -> Ack:
        doc = await self.tracked.find_one(req.user_id, req.username)
        if doc is None:
            raise NotFound("that user is not tracked")
        await self.tracked.delete(doc["_id"])
        if req.forget_activity:
            await self.activity.forget(doc.get("user_id"), doc.get("username"))
        await self.contacts.entity_changed("tracked_user", doc["_id"], "deleted", by)
        return Ack(affected=1)

    @answers(crm_cmd.GetTrackedUsers)
    async def tracked_users(self, req: crm_cmd.GetTrackedUsersRequest) -> Page[crm_cmd.TrackedUserView]:
        query: dict[str, Any] = {}
        if req.value_level:
            query["value_level"] = req.value_level
        if req.status:
            query["status"] = req.status
        if req.search:
            query.update(name_search(req.search))
        total = await self.tracked.count(query)
        docs, nxt = await self.tracked.page(query, req.cursor, req.limit)
        leads = await self.leads.ids_by_identity([(d.get("user_id"), d.get("username")) for d in docs])
        return Page[crm_cmd.TrackedUserView](
            items=[tracked_view(d, lead) for d, lead in zip(docs, leads, strict=True)],
            next_cursor=nxt,
            total=total,
        )


def tracked_view(doc: Mapping[str, Any], lead_id: str | None) -> crm_cmd.TrackedUserView:
    return crm_cmd.TrackedUserView(
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
        lead_id=lead_id,
        groups_seen=len(doc.get("groups") or []),
        message_count=doc.get("message_count", 0),
        last_seen_at=doc.get("last_seen_at"),
        tracked_since=doc["tracked_since"],
    )
