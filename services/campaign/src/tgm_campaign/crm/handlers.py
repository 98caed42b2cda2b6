"""The 14 contacts commands (leads, the funnel, tracked users, a user's timeline), each declared once on
the use case method that answers it (`@answers(Cmd)`, `tgm_runtime.routes`); and the CRM's durable
consumers (replies, tracked users' group messages, keyword matches and trigger runs)."""

from __future__ import annotations

from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import MessageReceived
from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .funnel import FunnelService
from .leads import LeadService
from .timeline import TimelineService
from .tracking import TrackingService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, LeadService, lambda app: app.leads)
    route_use_case(runtime, FunnelService, lambda app: app.funnel)
    route_use_case(runtime, TrackingService, lambda app: app.tracking)
    route_use_case(runtime, TimelineService, lambda app: app.timeline)

    # one consumer of message-received for all of campaign (runtime.on_event); a private chat in order
    @runtime.on_event(
        MessageReceived, "crm_received", order_by=lambda e: e.chat_id if e.chat_kind == "private" else None
    )
    async def on_crm_received(evt: MessageReceived) -> None:
        await runtime.app.crm_consumers.on_received(evt)

    @runtime.subscribe_events(KeywordMatched, durable="crm_keywords")
    async def on_keyword_matched(evt: KeywordMatched) -> None:
        await runtime.app.crm_consumers.on_keyword(evt)

    @runtime.subscribe_events(TriggerFired, durable="crm_triggers")
    async def on_trigger_fired(evt: TriggerFired) -> None:
        await runtime.app.crm_consumers.on_trigger(evt)
