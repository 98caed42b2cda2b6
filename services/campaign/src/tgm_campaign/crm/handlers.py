"""The 14 contacts commands (leads, the funnel, tracked users, a user's timeline): thin handlers,
one use case each; and the CRM's durable consumers (replies, tracked users' group messages, keyword
matches and trigger runs)."""

from __future__ import annotations

from tgm_contracts.base import Ack
from tgm_contracts.commands import crm as crm_cmd
from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import LeadView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    # --- contacts (CRM) -------------------------------------------------------------------------

    @runtime.command(crm_cmd.AddLead)
    async def add_lead(req: crm_cmd.AddLeadRequest, ctx: Ctx) -> LeadView:
        return await ctx.app.leads.add_lead(req, ctx.principal)

    @runtime.command(crm_cmd.UpdateLead)
    async def update_lead(req: crm_cmd.UpdateLeadRequest, ctx: Ctx) -> LeadView:
        return await ctx.app.leads.update_lead(req, ctx.principal)

    @runtime.command(crm_cmd.DeleteLead)
    async def delete_lead(req: crm_cmd.LeadIdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.leads.delete_lead(req, ctx.principal)

    runtime.route(crm_cmd.GetLeads, lambda app: app.leads.get_leads)
    runtime.route(crm_cmd.GetLeadDetails, lambda app: app.leads.lead_details)

    @runtime.command(crm_cmd.UpdateLeadStage)
    async def update_lead_stage(req: crm_cmd.UpdateLeadStageRequest, ctx: Ctx) -> LeadView:
        return await ctx.app.leads.update_lead_stage(req, ctx.principal)

    @runtime.command(crm_cmd.UpdateFunnelStage)
    async def update_funnel_stage(req: crm_cmd.UpdateFunnelStageRequest, ctx: Ctx) -> crm_cmd.BulkLeadResult:
        return await ctx.app.leads.update_funnel_stage(req, ctx.principal)

    @runtime.command(crm_cmd.AssignLead)
    async def assign_lead(req: crm_cmd.AssignLeadRequest, ctx: Ctx) -> crm_cmd.BulkLeadResult:
        return await ctx.app.leads.assign_lead(req, ctx.principal)

    runtime.route(crm_cmd.GetFunnelStats, lambda app: app.funnel.funnel_stats)
    runtime.route(crm_cmd.GetFunnelUsers, lambda app: app.funnel.funnel_users)

    @runtime.command(crm_cmd.TrackUser)
    async def track_user(req: crm_cmd.TrackUserRequest, ctx: Ctx) -> crm_cmd.TrackedUserView:
        return await ctx.app.tracking.track(req, ctx.principal)

    @runtime.command(crm_cmd.UntrackUser)
    async def untrack_user(req: crm_cmd.UntrackUserRequest, ctx: Ctx) -> Ack:
        return await ctx.app.tracking.untrack(req, ctx.principal)

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
