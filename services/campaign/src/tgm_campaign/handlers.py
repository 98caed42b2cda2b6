"""The 18 messaging commands and the 15 contacts commands: thin handlers, one use case each.

Also the durable consumers of tg-session's message events (chat history, stop-word opt-outs, the
CRM's replies and tracked users' group messages) and of this service's keyword and trigger events."""

from __future__ import annotations

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_contracts.events_campaign import KeywordMatched, TriggerFired
from tgm_contracts.events_session import FloodWaitRecorded, MessageReceived
from tgm_contracts.events_session import MessageSent as SessionMessageSent
from tgm_runtime import CallContext, ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    def m(ctx: CallContext):  # the messaging use cases built at start
        return ctx.state.messaging

    # --- sends and the queue --------------------------------------------------------------------

    @runtime.command(M.SendMessage)
    async def send_message(req: M.SendMessageRequest, ctx: CallContext) -> M.SendResult:
        return await m(ctx).queue.send_message(req)

    @runtime.command(M.SendPrivateMessage)
    async def send_private_message(req: M.SendPrivateMessageRequest, ctx: CallContext) -> M.SendResult:
        return await m(ctx).queue.send_private(req)

    @runtime.command(M.SendDirectMessage)
    async def send_direct_message(req: M.SendDirectMessageRequest, ctx: CallContext) -> M.SendResult:
        return await m(ctx).queue.send_direct(req)

    @runtime.command(M.SendGroupMessage)
    async def send_group_message(req: M.SendGroupMessageRequest, ctx: CallContext) -> M.SendResult:
        return await m(ctx).queue.send_group(req)

    @runtime.command(M.QueueMessage)
    async def queue_message(req: M.QueueMessageRequest, ctx: CallContext) -> M.QueueMessageResult:
        return await m(ctx).queue.queue_message(req, ctx.request_id)

    @runtime.command(M.GetQueueStatus)
    async def get_queue_status(req: M.GetQueueStatusRequest, ctx: CallContext) -> M.QueueStatus:
        return await m(ctx).status.status(req)

    @runtime.command(M.PauseQueue)
    async def pause_queue(req: M.PauseQueueRequest, ctx: CallContext) -> M.QueueControlResult:
        return await m(ctx).queue.pause(req, ctx.principal)

    @runtime.command(M.ResumeQueue)
    async def resume_queue(req: M.QueueScope, ctx: CallContext) -> M.QueueControlResult:
        return await m(ctx).queue.resume(req, ctx.principal)

    @runtime.command(M.ClearQueue)
    async def clear_queue(req: M.ClearQueueRequest, ctx: CallContext) -> M.ClearQueueResult:
        return await m(ctx).queue.clear(req, ctx.principal)

    # --- templates ------------------------------------------------------------------------------

    @runtime.command(M.AddTemplate)
    async def add_template(req: M.AddTemplateRequest, ctx: CallContext) -> M.TemplateSaveResult:
        return await m(ctx).templates.add(req, ctx.principal)

    @runtime.command(M.SaveChatTemplate)
    async def save_chat_template(req: M.SaveChatTemplateRequest, ctx: CallContext) -> M.TemplateSaveResult:
        return await m(ctx).templates.save(req, ctx.principal)

    @runtime.command(M.RemoveTemplate)
    async def remove_template(req: M.TemplateIdRequest, ctx: CallContext) -> Ack:
        return await m(ctx).templates.delete(req.id, ctx.principal)

    @runtime.command(M.DeleteChatTemplate)
    async def delete_chat_template(req: M.TemplateIdRequest, ctx: CallContext) -> Ack:
        return await m(ctx).templates.delete(req.id, ctx.principal)

    @runtime.command(M.ToggleTemplateStatus)
    async def toggle_template_status(req: M.ToggleTemplateStatusRequest, ctx: CallContext):
        return await m(ctx).templates.toggle(req, ctx.principal)

    @runtime.command(M.GetChatTemplates)
    async def get_chat_templates(req: M.GetChatTemplatesRequest, ctx: CallContext) -> Page:
        return await m(ctx).templates.list(req)

    # --- chat history ---------------------------------------------------------------------------

    @runtime.command(M.GetChatHistory)
    async def get_chat_history(req: M.GetChatHistoryRequest, ctx: CallContext) -> Page:
        return await m(ctx).history.chat_history(req)

    @runtime.command(M.SaveChatHistory)
    async def save_chat_history(req: M.SaveChatHistoryRequest, ctx: CallContext) -> M.SaveChatHistoryResult:
        return await m(ctx).history.save(req)

    @runtime.command(M.GetPrivateMessages)
    async def get_private_messages(req: M.GetPrivateMessagesRequest, ctx: CallContext) -> Page:
        return await m(ctx).history.private_messages(req)

    # --- compliance -----------------------------------------------------------------------------

    @runtime.command(CRM.BlacklistUser)
    async def blacklist_user(req: CRM.BlacklistUserRequest, ctx: CallContext) -> CRM.BlacklistResult:
        return await m(ctx).queue.blacklist(req, ctx.principal)

    # --- tg-session's message events, consumed durably ------------------------------------------

    @runtime.subscribe_events(MessageReceived, durable="history_received")
    async def on_message_received(evt: MessageReceived) -> None:
        await runtime.state.messaging.history.on_received(evt)

    @runtime.subscribe_events(SessionMessageSent, durable="history_sent")
    async def on_message_sent(evt: SessionMessageSent) -> None:
        await runtime.state.messaging.history.on_sent(evt)

    @runtime.subscribe_events(FloodWaitRecorded, durable="pacing_flood_waits")
    async def on_flood_wait(evt: FloodWaitRecorded) -> None:
        # A wait Telegram imposed on a send by anyone (an AI reply, another service) holds the queue too.
        if evt.category == "send":
            await runtime.state.messaging.scheduler.flood_recorded(evt.account_id, evt.until)

    # --- contacts (CRM) -------------------------------------------------------------------------

    def crm(ctx: CallContext):  # the CRM use cases built at start
        return ctx.state.crm

    @runtime.command(CRM.AddLead)
    async def add_lead(req: CRM.AddLeadRequest, ctx: CallContext):
        return await crm(ctx).add_lead(req, ctx.principal)

    @runtime.command(CRM.UpdateLead)
    async def update_lead(req: CRM.UpdateLeadRequest, ctx: CallContext):
        return await crm(ctx).update_lead(req, ctx.principal)

    @runtime.command(CRM.DeleteLead)
    async def delete_lead(req: CRM.LeadIdRequest, ctx: CallContext) -> Ack:
        return await crm(ctx).delete_lead(req, ctx.principal)

    @runtime.command(CRM.GetLeads)
    async def get_leads(req: CRM.GetLeadsRequest, ctx: CallContext) -> Page:
        return await crm(ctx).get_leads(req)

    @runtime.command(CRM.GetLeadDetails)
    async def get_lead_details(req: CRM.LeadIdRequest, ctx: CallContext) -> CRM.LeadDetails:
        return await crm(ctx).lead_details(req)

    @runtime.command(CRM.UpdateLeadStage)
    async def update_lead_stage(req: CRM.UpdateLeadStageRequest, ctx: CallContext):
        return await crm(ctx).update_lead_stage(req, ctx.principal)

    @runtime.command(CRM.UpdateFunnelStage)
    async def update_funnel_stage(req: CRM.UpdateFunnelStageRequest, ctx: CallContext) -> CRM.BulkLeadResult:
        return await crm(ctx).update_funnel_stage(req, ctx.principal)

    @runtime.command(CRM.AssignLead)
    async def assign_lead(req: CRM.AssignLeadRequest, ctx: CallContext) -> CRM.BulkLeadResult:
        return await crm(ctx).assign_lead(req, ctx.principal)

    @runtime.command(CRM.GetFunnelStats)
    async def get_funnel_stats(req: CRM.GetFunnelStatsRequest, ctx: CallContext) -> CRM.FunnelStats:
        return await crm(ctx).funnel_stats(req)

    @runtime.command(CRM.GetFunnelUsers)
    async def get_funnel_users(req: CRM.GetFunnelUsersRequest, ctx: CallContext) -> Page:
        return await crm(ctx).funnel_users(req)

    @runtime.command(CRM.TrackUser)
    async def track_user(req: CRM.TrackUserRequest, ctx: CallContext) -> CRM.TrackedUserView:
        return await crm(ctx).track(req, ctx.principal)

    @runtime.command(CRM.UntrackUser)
    async def untrack_user(req: CRM.UntrackUserRequest, ctx: CallContext) -> Ack:
        return await crm(ctx).untrack(req, ctx.principal)

    @runtime.command(CRM.GetTrackedUsers)
    async def get_tracked_users(req: CRM.GetTrackedUsersRequest, ctx: CallContext) -> Page:
        return await crm(ctx).tracked_users(req)

    @runtime.command(CRM.GetUserActivity)
    async def get_user_activity(req: CRM.GetUserActivityRequest, ctx: CallContext) -> Page:
        return await crm(ctx).user_activity(req)

    @runtime.subscribe_events(MessageReceived, durable="crm_received")
    async def on_crm_received(evt: MessageReceived) -> None:
        await runtime.state.crm.on_received(evt)

    @runtime.subscribe_events(KeywordMatched, durable="crm_keywords")
    async def on_keyword_matched(evt: KeywordMatched) -> None:
        await runtime.state.crm.on_keyword(evt)

    @runtime.subscribe_events(TriggerFired, durable="crm_triggers")
    async def on_trigger_fired(evt: TriggerFired) -> None:
        await runtime.state.crm.on_trigger(evt)
