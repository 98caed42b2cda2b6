"""A user's timeline (`get-user-activity`): newest first, merged from where each fact lives.

Private messages in and out (chat history, with the queue's deliveries and their job ids), skipped and
failed jobs (the queue), the lead's capture and stage changes, ban and opt-out (compliance), and what
only the CRM keeps (group messages of tracked users, keyword matches, trigger runs). Each source is
read through its store for the same window; the cursor is (time, item), so pages never repeat or skip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tgm_contracts.base import Page
from tgm_contracts.commands import crm as crm_cmd
from tgm_runtime import Invalid, cursor
from tgm_runtime.routes import answers

from ..messaging.stores import MessagingStores
from ..messaging.window_store import TimeWindow
from .service import TEXT_MAX, Contacts, aware, detail
from .tracking_store import ActivityStore

#: The order a timeline's cursor belongs to.
TIMELINE = "timeline"


class TimelineService:
    def __init__(self, contacts: Contacts, stores: MessagingStores, activity: ActivityStore) -> None:
        self.contacts = contacts
        self.stores = stores
        self.leads = stores.leads
        self.activity = activity

    @answers(crm_cmd.GetUserActivity)
    async def user_activity(self, req: crm_cmd.GetUserActivityRequest) -> Page[crm_cmd.ActivityItem]:
        if req.lead_id is not None:
            lead: dict[str, Any] | None = await self.contacts.lead(req.lead_id)
            user_id = lead.get("user_id")  # type: ignore[union-attr]
        else:
            user_id = req.user_id
            lead = await self.leads.by_identity(user_id)
        username = (lead or {}).get("username")
        keys = await self.contacts.keys(user_id, username, (lead or {}).get("phone"))
        kinds = set(req.kinds) if req.kinds else None
        cursor_at: datetime | None = None
        cursor_key = ""
        if req.cursor:
            at, key = cursor.decode(req.cursor, 2, TIMELINE)
            if not isinstance(at, datetime) or not isinstance(key, str):
                raise Invalid("cursor is not one this command gave out", {"field": "cursor"})
            cursor_at, cursor_key = aware(at), key
        since, until = aware(req.since), aware(req.until)
        items: list[tuple[datetime, str, crm_cmd.ActivityItem]] = []

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
            items.append((at, key, crm_cmd.ActivityItem(at=at, kind=kind, **fields)))

        window = TimeWindow(since, until, cursor_at, req.limit + 1)

        # private messages, from chat history
        directions = [
            d for d, k in (("in", "private_in"), ("out", "private_out")) if kinds is None or k in kinds
        ]
        if keys and directions:
            for m in await self.stores.history.private_in(window, keys, directions):
                add(
                    m["date"],
                    "m:" + m["_id"],
                    "private_in" if m["direction"] == "in" else "private_out",
                    account_id=m.get("account_id"),
                    text=(m.get("text") or "")[:TEXT_MAX] or None,
                    ref_id=m.get("job_id") or m["_id"],
                    detail=detail(
                        messageId=m.get("message_id"), jobId=m.get("job_id"), source=m.get("source")
                    ),
                )
        # skipped and failed sends, from the queue
        job_kinds = {"skipped": "job_skipped", "failed": "job_failed"}
        states = [s for s, k in job_kinds.items() if kinds is None or k in kinds]
        if states and (keys or lead):
            lead_id = lead["_id"] if lead else None
            for j in await self.stores.jobs.settled_in(window, lead_id, keys, states):
                add(
                    j["updated_at"],
                    "j:" + j["_id"],
                    job_kinds[j["state"]],
                    account_id=j.get("account_id"),
                    text=(j.get("last_error") or j.get("text") or "")[:TEXT_MAX] or None,
                    ref_id=j["_id"],
                    detail=detail(reason=j.get("reason"), campaignId=j.get("campaign_id")),
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
                detail=detail(sourceType=lead.get("source_type"), keyword=lead.get("triggered_keyword")),
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
                    detail=detail(fromStage=h["from_stage"], toStage=h["to_stage"], by=h.get("by")),
                )
        # bans and opt-outs, from compliance (one per user, whichever key holds it)
        if keys:
            blocked = await self.stores.compliance.blocked(keys)
            if ban := _marked(blocked, "blacklisted", "blacklist_changed_at"):
                add(
                    ban["blacklist_changed_at"],
                    "b:" + ban["_id"],
                    "blacklisted",
                    text=ban.get("blacklist_reason"),
                    detail=detail(by=ban.get("blacklist_by")),
                )
            if out := _marked(blocked, "opted_out", "opted_out_at"):
                add(
                    out["opted_out_at"],
                    "o:" + out["_id"],
                    "opted_out",
                    account_id=out.get("opted_out_via"),
                    text=out.get("stop_word"),
                    detail=detail(stopWord=out.get("stop_word")),
                )
        # what only the CRM keeps: group messages of tracked users, keyword matches, trigger runs
        if user_id is not None or lead:
            lead_id = lead["_id"] if lead else None
            for a in await self.activity.in_window(window, user_id, lead_id, kinds):
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
        nxt = cursor.encode([page[-1][0], page[-1][1]], TIMELINE) if len(items) > req.limit else None
        return Page[crm_cmd.ActivityItem](items=[t[2] for t in page], next_cursor=nxt)


def _marked(blocked: dict[str, dict[str, Any]], flag: str, at: str) -> dict[str, Any] | None:
    """The compliance document holding the user's mark `flag` (a ban or an opt-out: one per user,
    whichever of its keys holds it), when the time it was set (its field `at`) is known."""
    doc = next((b for b in blocked.values() if b.get(flag)), None)
    return doc if doc and doc.get(at) else None
