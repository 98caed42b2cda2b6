"""The CRM's durable consumers: a lead's reply moves it to `replied`; a tracked user's messages are
kept and counted (group messages once, however many of our accounts heard them); keyword matches and
trigger runs are kept for tracked users and leads.

Who is tracked is asked of a cached set of the active tracked user ids, not of the database per
message or per keyword match and trigger run (every group message of every monitored group passes
here; almost none is from a tracked user): the set is read again when this process changed a tracked user (`TrackedUserStore.version`)
and at most `TRACKED_REFRESH_SECONDS` after the last read, so a user tracked or untracked through
ANOTHER replica is seen here within that delay (the messages of that window are not kept / still
kept: tracking is an operator's watch list, not a ledger). A sender in the set is then read in full.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import LeadStage
from tgm_runtime import Conflict, NotFound
from tgm_runtime.routes import consumes, hears

from ..messaging.clock import utc
from ..messaging.group_store import GroupStore
from ..messaging.history_service import by_private_chat
from .service import REPLY_MOVES, TEXT_MAX, Contacts, aware, detail
from .store import LeadStore, username_key
from .tracking_store import ActivityStore, TrackedUserStore

#: How old the cached set of tracked user ids may get (changes made by other replicas show this late).
TRACKED_REFRESH_SECONDS = 5.0


class CrmConsumers:
    """The CRM's side of `message-received`, `keyword-matched` and `trigger-fired`."""

    def __init__(
        self,
        contacts: Contacts,
        leads: LeadStore,
        groups: GroupStore,
        tracked: TrackedUserStore,
        activity: ActivityStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.contacts, self.leads, self.groups = contacts, leads, groups
        self.tracked, self.activity = tracked, activity
        self.clock = clock
        self._tracked_ids: set[int] | None = None
        self._tracked_read = (0.0, -1)  # (when, the store's version then)
        self._tracked_lock = asyncio.Lock()

    async def tracked_ids(self) -> set[int]:
        """The active tracked user ids, at most `TRACKED_REFRESH_SECONDS` old (one read at a time)."""
        if self._fresh():
            assert self._tracked_ids is not None
            return self._tracked_ids
        async with self._tracked_lock:
            if not self._fresh():  # not read meanwhile by the event that held the lock
                read = (self.clock(), self.tracked.version)
                self._tracked_ids = await self.tracked.active_user_ids()
                self._tracked_read = read
            assert self._tracked_ids is not None
            return self._tracked_ids

    def _fresh(self) -> bool:
        at, version = self._tracked_read
        return (
            self._tracked_ids is not None
            and version == self.tracked.version
            and self.clock() - at < TRACKED_REFRESH_SECONDS
        )

    async def _active_tracked(self, user_id: int) -> dict[str, Any] | None:
        if user_id not in await self.tracked_ids():
            return None  # most senders: no query
        return await self.tracked.active_by_user(user_id)

    @hears(MessageReceived, "crm_received", order_by=by_private_chat)
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
            tracked = await self._active_tracked(evt.sender_id)
            if tracked is not None:
                key = f"{evt.account_id}|{evt.chat_id}|{evt.message_id}"
                await self.tracked.seen(tracked["_id"], None, at, {}, message_key=key)
            return
        tracked = await self._active_tracked(evt.sender_id)
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
        """Keep an activity item for a tracked user or a lead (nobody else's is kept). Whether the
        user is tracked is asked of the cached set first, as for a group message: a matched message
        of a user nobody tracks costs the lead's read only."""
        lead = await self.leads.get(lead_id) if lead_id else None
        if lead is None and user_id is not None:
            lead = await self.leads.by_identity(user_id)
        user_id = user_id if user_id is not None else (lead or {}).get("user_id")
        tracked = await self._active_tracked(user_id) if user_id is not None else None
        if lead is None and tracked is None:
            return
        doc = {"_id": item_id, "user_id": user_id, "lead_id": lead["_id"] if lead else None, "kind": kind}
        await self.activity.add({**doc, "at": utc(at.timestamp()), **item})

    @consumes(KeywordMatched, durable="crm_keywords")
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

    @consumes(TriggerFired, durable="crm_triggers")
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
