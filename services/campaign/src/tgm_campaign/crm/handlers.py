"""The 14 contacts commands (leads, the funnel, tracked users, a user's timeline): thin handlers,
one use case each; and the CRM's durable consumers (replies, tracked users' group messages, keyword
matches and trigger runs)."""

from __future__ import annotations

from tgm_contracts.commands import crm as crm_cmd
from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import MessageReceived

from ..app import Runtime


def register(runtime: Runtime) -> None:
    # --- contacts (CRM) -------------------------------------------------------------------------

    runtime.route_with_principal(crm_cmd.AddLead, lambda app: app.leads.add_lead)
    runtime.route_with_principal(crm_cmd.UpdateLead, lambda app: app.leads.update_lead)
    runtime.route_with_principal(crm_cmd.DeleteLead, lambda app: app.leads.delete_lead)
    runtime.route(crm_cmd.GetLeads, lambda app: app.leads.get_leads)
    runtime.route(crm_cmd.GetLeadDetails, lambda app: app.leads.lead_details)
    runtime.route_with_principal(crm_cmd.UpdateLeadStage, lambda app: app.leads.update_lead_stage)
    runtime.route_with_principal(crm_cmd.UpdateFunnelStage, lambda app: app.leads.update_funnel_stage)
    runtime.route_with_principal(crm_cmd.AssignLead, lambda app: app.leads.assign_lead)
    runtime.route(crm_cmd.GetFunnelStats, lambda app: app.funnel.funnel_stats)
    runtime.route(crm_cmd.GetFunnelUsers, lambda app: app.funnel.funnel_users)
    runtime.route_with_principal(crm_cmd.TrackUser, lambda app: app.tracking.track)
    runtime.route_with_principal(crm_cmd.UntrackUser, lambda app: app.tracking.untrack)
    runtime.route(crm_cmd.GetTrackedUsers, lambda app: app.tracking.tracked_users)
    runtime.route(crm_cmd.GetUserActivity, lambda app: app.timeline.user_activity)

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
