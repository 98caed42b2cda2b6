"""The 30 automation commands: thin handlers, one use case each; and the inbound consumers (group
messages and member joins of monitored chats, from tg-session's events)."""

from __future__ import annotations

from tgm_contracts.base import Ack, Empty
from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_session import MemberJoined, MessageReceived

from ..app import Ctx, Runtime
from .service import INBOUND_WORKERS


def register(runtime: Runtime) -> None:
    # --- keyword sets ---------------------------------------------------------------------------

    @runtime.command(cmd.AddKeywordSet)
    async def add_keyword_set(req: cmd.KeywordSetSpec, ctx: Ctx) -> cmd.KeywordSetView:
        return await ctx.app.keyword_sets.add(req, ctx.principal)

    @runtime.command(cmd.SaveKeywordSet)
    async def save_keyword_set(req: cmd.SaveKeywordSetRequest, ctx: Ctx) -> cmd.KeywordSetView:
        return await ctx.app.keyword_sets.save(req, ctx.principal)

    @runtime.command(cmd.DeleteKeywordSet)
    async def delete_keyword_set(req: cmd.DeleteKeywordSetRequest, ctx: Ctx) -> Ack:
        return await ctx.app.keyword_sets.delete(req, ctx.principal)

    @runtime.command(cmd.RemoveKeywordSet)
    async def remove_keyword_set(req: cmd.DeleteKeywordSetRequest, ctx: Ctx) -> Ack:
        return await ctx.app.keyword_sets.delete(req, ctx.principal)

    runtime.route(cmd.GetKeywordSets, lambda app: app.keyword_sets.list)

    @runtime.command(cmd.AddKeyword)
    async def add_keyword(req: cmd.AddKeywordRequest, ctx: Ctx) -> cmd.KeywordSetView:
        return await ctx.app.keyword_sets.add_keyword(req, ctx.principal)

    @runtime.command(cmd.RemoveKeyword)
    async def remove_keyword(req: cmd.RemoveKeywordRequest, ctx: Ctx) -> cmd.KeywordSetView:
        return await ctx.app.keyword_sets.remove_keyword(req, ctx.principal)

    # --- monitored groups -----------------------------------------------------------------------

    @runtime.command(cmd.AddGroup)
    async def add_group(req: cmd.AddGroupRequest, ctx: Ctx) -> cmd.MonitoredGroupView:
        return await ctx.app.groups.add(req, ctx.principal)

    @runtime.command(cmd.RemoveGroup)
    async def remove_group(req: cmd.GroupIdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.groups.remove(req, ctx.principal)

    runtime.route(cmd.GetMonitoredGroups, lambda app: app.groups.list)

    @runtime.command(cmd.BindKeywordSet)
    async def bind_keyword_set(req: cmd.KeywordBindingRequest, ctx: Ctx) -> cmd.MonitoredGroupView:
        return await ctx.app.groups.bind(req, ctx.principal)

    @runtime.command(cmd.UnbindKeywordSet)
    async def unbind_keyword_set(req: cmd.KeywordBindingRequest, ctx: Ctx) -> cmd.MonitoredGroupView:
        return await ctx.app.groups.unbind(req, ctx.principal)

    @runtime.command(cmd.PauseMonitoring)
    async def pause_monitoring(req: cmd.PauseMonitoringRequest, ctx: Ctx) -> cmd.MonitoredGroupView:
        return await ctx.app.groups.pause(req, ctx.principal)

    @runtime.command(cmd.ResumeMonitoring)
    async def resume_monitoring(req: cmd.ResumeMonitoringRequest, ctx: Ctx) -> cmd.MonitoredGroupView:
        return await ctx.app.groups.resume(req, ctx.principal)

    # --- monitoring, one-click, status ----------------------------------------------------------

    @runtime.command(cmd.StartMonitoring)
    async def start_monitoring(req: cmd.StartMonitoringRequest, ctx: Ctx) -> cmd.MonitoringStatus:
        return await ctx.app.monitoring.start(req, ctx.principal)

    @runtime.command(cmd.StopMonitoring)
    async def stop_monitoring(req: Empty, ctx: Ctx) -> cmd.MonitoringStatus:
        return await ctx.app.monitoring.stop(ctx.principal)

    @runtime.command(cmd.OneClickStart)
    async def one_click_start(req: cmd.OneClickStartRequest, ctx: Ctx) -> cmd.OneClickResult:
        return await ctx.app.oneclick.start(req, ctx.principal)

    @runtime.command(cmd.OneClickStop)
    async def one_click_stop(req: cmd.OneClickStopRequest, ctx: Ctx) -> cmd.OneClickResult:
        return await ctx.app.oneclick.stop(req, ctx.principal)

    runtime.route(cmd.GetSystemStatus, lambda app: app.system.status)

    # --- trigger rules --------------------------------------------------------------------------

    @runtime.command(cmd.SaveTriggerRule)
    async def save_trigger_rule(req: cmd.SaveTriggerRuleRequest, ctx: Ctx) -> cmd.TriggerRuleView:
        return await ctx.app.triggers.save(req, ctx.principal)

    @runtime.command(cmd.DeleteTriggerRule)
    async def delete_trigger_rule(req: cmd.RuleIdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.triggers.delete(req, ctx.principal)

    @runtime.command(cmd.ToggleTriggerRule)
    async def toggle_trigger_rule(req: cmd.ToggleTriggerRuleRequest, ctx: Ctx) -> cmd.TriggerRuleView:
        return await ctx.app.triggers.toggle(req, ctx.principal)

    runtime.route(cmd.GetTriggerRules, lambda app: app.triggers.list)
    runtime.route(cmd.TestTriggerRule, lambda app: app.triggers.test)

    # --- campaigns ------------------------------------------------------------------------------

    @runtime.command(cmd.AddCampaign)
    async def add_campaign(req: cmd.AddCampaignRequest, ctx: Ctx) -> cmd.CampaignView:
        return await ctx.app.campaigns.add(req, ctx.principal)

    @runtime.command(cmd.RemoveCampaign)
    async def remove_campaign(req: cmd.RemoveCampaignRequest, ctx: Ctx) -> Ack:
        return await ctx.app.campaigns.remove(req, ctx.principal)

    runtime.route(cmd.GetCampaigns, lambda app: app.campaigns.list)

    @runtime.command(cmd.StartCampaign)
    async def start_campaign(req: cmd.CampaignIdRequest, ctx: Ctx) -> cmd.CampaignView:
        return await ctx.app.campaigns.start(req, ctx.principal)

    @runtime.command(cmd.StopCampaign)
    async def stop_campaign(req: cmd.StopCampaignRequest, ctx: Ctx) -> cmd.CampaignView:
        return await ctx.app.campaigns.stop(req, ctx.principal)

    runtime.route(cmd.GetCampaignStats, lambda app: app.campaigns.stats)

    # --- inbound: tg-session's events of monitored chats ----------------------------------------

    # concurrent: the inbound path is exact under any interleaving (claims, conditional reservations)
    @runtime.on_event(MessageReceived, "automation_messages", max_workers=INBOUND_WORKERS)
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.automation.on_message(evt)

    @runtime.subscribe_events(MemberJoined, durable="automation_joins")
    async def on_join(evt: MemberJoined) -> None:
        await runtime.app.automation.on_join(evt)
