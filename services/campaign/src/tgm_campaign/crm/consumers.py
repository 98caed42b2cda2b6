"""The CRM's durable consumers: a lead's reply moves it to `replied`; a tracked user's messages are
kept and counted (group messages once, however many of our accounts heard them); keyword matches and
trigger runs are kept for tracked users and leads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import LeadStage
from tgm_runtime import Conflict, NotFound

from ..messaging.clock import utc
from ..messaging.group_store import GroupStore
from .service import REPLY_MOVES, TEXT_MAX, Contacts, aware, detail
from .store import LeadStore, username_key
from .tracking_store import ActivityStore, TrackedUserStore


class CrmConsumers:
    """The CRM's side of `message-received`, `keyword-matched` and `trigger-fired`."""

    def __init__(
        self,
        contacts: Contacts,
        leads: LeadStore,
        groups: GroupStore,
        tracked: TrackedUserStore,
        activity: ActivityStore,
    ) -> None:
        self.contacts, self.leads, self.groups = contacts, leads, groups
        self.tracked, self.activity = tracked, activity

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
                        await self.contacts.move(
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
        group = await self.groups.by_chat_id(evt.chat_id)
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
                "detail": detail(chatId=evt.chat_id, messageId=evt.message_id, mediaKind=evt.media_kind),
            }
        )
        if stored:
            fill = {}
            if sender is not None:
                for name in ("first_name", "last_name"):
                    if getattr(sender, name) and not tracked.get(name):
                        fill[name] = getattr(sender, name)
            await self.tracked.seen(tracked["_id"], str(evt.chat_id), at, fill)

    async def _keep_if_concerned(
        self, user_id: int | None, lead_id: str | None, item_id: str, kind: str, at: datetime, **item: Any
    ) -> None:
        """Keep an activity item for a tracked user or a lead (nobody else's is kept)."""
        lead = await self.leads.get(lead_id) if lead_id else None
        if lead is None and user_id is not None:
            lead = await self.leads.by_identity(user_id)
        user_id = user_id if user_id is not None else (lead or {}).get("user_id")
        tracked = await self.tracked.active_by_user(user_id) if user_id is not None else None
        if lead is None and tracked is None:
            return
        doc = {"_id": item_id, "user_id": user_id, "lead_id": lead["_id"] if lead else None, "kind": kind}
        await self.activity.add({**doc, "at": utc(at.timestamp()), **item})

    async def on_keyword(self, evt: KeywordMatched) -> None:
        await self._keep_if_concerned(
            evt.user_id,
            None,
            f"k|{evt.event_id}",
            "keyword_match",
            evt.occurred_at,
            account_id=evt.listener_account_id,
            group_id=evt.group_id,
            group_title=evt.group_title,
            text=evt.message_preview,
            ref_id=evt.keyword_id or evt.keyword_set_id,
            detail=detail(keyword=evt.keyword, keywordSetId=evt.keyword_set_id, matchType=evt.match_type),
        )

    async def on_trigger(self, evt: TriggerFired) -> None:
        await self._keep_if_concerned(
            evt.user_id,
            evt.lead_id,
            f"t|{evt.event_id}",
            "trigger_fired",
            evt.occurred_at,
            group_id=evt.group_id,
            text=f"{evt.rule_name}: {', '.join(evt.actions)}"[:TEXT_MAX],
            ref_id=evt.rule_id,
            detail=detail(outcome=evt.outcome, keyword=evt.keyword, jobs=len(evt.job_ids)),
        )
