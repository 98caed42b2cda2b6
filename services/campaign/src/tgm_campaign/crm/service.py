"""What every CRM use case shares (leads, funnel, tracking, timeline, consumers): a lead by id (or
NOT_FOUND), a user's keys with the aliases the users directory knows, and the one way a lead's stage
changes.

Stage changes are conditional updates on the stage read (retried when someone moved the lead in
between) and land in the lead's `stage_history` with who and why; each is published as
`lead-stage-changed`. Creations, changes and deletions publish `entity-changed`. The CRM reads the
messaging domain's data (chat history, the queue's jobs, compliance) only through its stores' methods.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts.events_campaign import EntityChanged, LeadStageChanged
from tgm_contracts.models.campaign import LeadStage
from tgm_runtime import Conflict, NotFound

from ..messaging.clock import Clock, utc
from ..messaging.compliance import user_keys
from ..messaging.job_events import JobEvents
from ..messaging.stores import MessagingStores
from .store import username_key

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


def aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def to_ms(at: datetime) -> datetime:
    at = aware(at)  # type: ignore[assignment]
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def rx(text: str) -> dict[str, Any]:
    return {"$regex": re.escape(text), "$options": "i"}


def name_search(text: str) -> dict[str, Any]:
    """Leads or tracked users whose names, username or notes contain `text` (case ignored)."""
    pattern = rx(text.lstrip("@"))
    return {
        "$or": [{"first_name": pattern}, {"last_name": pattern}, {"username": pattern}, {"notes": pattern}]
    }


def display_name(doc: Mapping[str, Any]) -> str | None:
    name = " ".join(x for x in (doc.get("first_name"), doc.get("last_name")) if x)
    return name or doc.get("username")


def detail(**values: Any) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in values.items() if v is not None}


class Contacts:
    """Leads and users as every CRM use case sees them."""

    def __init__(self, stores: MessagingStores, events: JobEvents, clock: Clock) -> None:
        self.stores = stores
        self.events = events
        self.clock = clock
        self.leads = stores.leads

    def now(self) -> datetime:
        return utc(self.clock())

    async def entity_changed(self, entity: str, entity_id: str, action: str, by: str | None) -> None:
        await self.events.emit(EntityChanged(entity=entity, entity_id=entity_id, action=action, by=by))

    async def lead(self, lead_id: str) -> dict[str, Any]:
        doc = await self.leads.get(lead_id)
        if doc is None:
            raise NotFound(f"lead {lead_id} does not exist")
        return doc

    async def keys(self, user_id: int | None, username: str | None, phone: str | None = None) -> list[str]:
        base = user_keys(user_id, username_key(username), phone)
        if not base:
            return []
        aliases = await self.stores.history.aliases(base)
        return list(dict.fromkeys(k for ks in aliases.values() for k in ks))

    def next_updated(self, doc: Mapping[str, Any]) -> datetime:
        """Now, but strictly after the last change (so `expectedUpdatedAt` tells every change apart)."""
        now = self.now()
        last = aware(doc.get("updated_at"))
        return now if last is None or now > last else last + timedelta(milliseconds=1)

    async def move(
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
            doc = await self.lead(lead_id)
            frm = doc.get("stage") or LeadStage.NEW.value
            if frm == to.value or (only_from is not None and frm not in only_from):
                return doc, False
            now = self.now()
            entry = {"from_stage": frm, "to_stage": to.value, "at": now, "by": by, "reason": reason}
            ok = await self.leads.patch(
                lead_id,
                {"stage": to.value, "stage_changed_at": now, "updated_at": self.next_updated(doc)},
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
            await self.entity_changed("lead", lead_id, "updated", by)
            return await self.lead(lead_id), True
        raise Conflict(f"lead {lead_id} keeps changing stage; try again")
