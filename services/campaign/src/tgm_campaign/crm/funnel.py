"""The funnel: per-stage counts, how many ever reached each stage and the conversion between them,
time spent in each stage; and the leads of a stage, longest in it first.

Funnel order is the `LeadStage` order; reaching a later stage of the path counts as having reached
the earlier ones (`closed_won` counts the whole path), and `closed_lost` is a way out from any stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tgm_contracts.base import Page
from tgm_contracts.commands import crm as crm_cmd
from tgm_contracts.models.campaign import LeadStage
from tgm_runtime import Invalid
from tgm_runtime.cursor import Keyset
from tgm_runtime.routes import answers

from ..messaging.window_store import between
from .service import FUNNEL, LINEAR, PREVIOUS, Contacts, aware, display_name, name_search
from .store import LeadStore, stages_reached

#: Leads of a stage, longest in it first (never moved: lowest).
LONGEST_IN_STAGE = Keyset(("stage_changed_at", "_id"), nullable=frozenset({"stage_changed_at"}))


class FunnelService:
    def __init__(self, contacts: Contacts, leads: LeadStore) -> None:
        self.contacts = contacts
        self.leads = leads

    @answers(crm_cmd.GetFunnelStats)
    async def funnel_stats(self, req: crm_cmd.GetFunnelStatsRequest) -> crm_cmd.FunnelStats:
        query: dict[str, Any] = {}
        created = between(req.since, req.until)
        if created:
            query["created_at"] = created
        for name in ("campaign_id", "source_group_id", "keyword_set_id", "assigned_account_id"):
            if getattr(req, name) is not None:
                query[name] = getattr(req, name)
        docs = await self.leads.scan(
            query,
            {"stage": 1, "stage_history": 1, "stage_changed_at": 1, "created_at": 1, "source_type": 1},
        )
        now = self.contacts.now()
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
                crm_cmd.FunnelStageCount(
                    stage=s,
                    count=count[s],
                    reached=reached[s],
                    conversion_from_previous=rate,
                    avg_hours_in_stage=(sum(stays) / len(stays)) if stays else None,
                )
            )
        total = len(docs)
        return crm_cmd.FunnelStats(
            stages=stages,
            total=total,
            conversion_rate=(count[LeadStage.CLOSED_WON] / total) if total else None,
            new_last_7_days=new_week,
            by_source=by_source,
        )

    @answers(crm_cmd.GetFunnelUsers)
    async def funnel_users(self, req: crm_cmd.GetFunnelUsersRequest) -> Page[crm_cmd.FunnelUser]:
        if (
            req.min_intent_score is not None
            and req.max_intent_score is not None
            and req.min_intent_score > req.max_intent_score
        ):
            raise Invalid("minIntentScore is above maxIntentScore", {"field": "minIntentScore"})
        now = self.contacts.now()
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
            query.update(name_search(req.search))
        total = await self.leads.count(query)
        docs, nxt = await self.leads.page(query, LONGEST_IN_STAGE, req.cursor, req.limit)
        items = []
        for d in docs:
            since = aware(d.get("stage_changed_at"))
            touched = [t for t in (aware(d.get("last_contacted_at")), aware(d.get("last_replied_at"))) if t]
            items.append(
                crm_cmd.FunnelUser(
                    lead_id=d["_id"],
                    user_id=d.get("user_id"),
                    username=d.get("username"),
                    display_name=display_name(d),
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
        return Page[crm_cmd.FunnelUser](items=items, next_cursor=nxt, total=total)


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
