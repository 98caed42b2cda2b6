"""The 30 automation commands: thin handlers, one use case each; and the inbound consumers (group
messages and member joins of monitored chats, from tg-session's events)."""

from __future__ import annotations

from tgm_contracts.base import Empty
from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_session import MemberJoined, MessageReceived

from ..app import Ctx, Runtime
from .service import INBOUND_WORKERS


def register(runtime: Runtime) -> None:
    # --- keyword sets ---------------------------------------------------------------------------

    runtime.route_with_principal(cmd.AddKeywordSet, lambda app: app.keyword_sets.add)
    runtime.route_with_principal(cmd.SaveKeywordSet, lambda app: app.keyword_sets.save)
    runtime.route_with_principal(cmd.DeleteKeywordSet, lambda app: app.keyword_sets.delete)
    runtime.route_with_principal(cmd.RemoveKeywordSet, lambda app: app.keyword_sets.delete)
    runtime.route(cmd.GetKeywordSets, lambda app: app.keyword_sets.list)
    runtime.route_with_principal(cmd.AddKeyword, lambda app: app.keyword_sets.add_keyword)
    runtime.route_with_principal(cmd.RemoveKeyword, lambda app: app.keyword_sets.remove_keyword)

    # --- monitored groups -----------------------------------------------------------------------

    runtime.route_with_principal(cmd.AddGroup, lambda app: app.groups.add)
    runtime.route_with_principal(cmd.RemoveGroup, lambda app: app.groups.remove)
    runtime.route(cmd.GetMonitoredGroups, lambda app: app.groups.list)
    runtime.route_with_principal(cmd.BindKeywordSet, lambda app: app.groups.bind)
    runtime.route_with_principal(cmd.UnbindKeywordSet, lambda app: app.groups.unbind)
    runtime.route_with_principal(cmd.PauseMonitoring, lambda app: app.groups.pause)
    runtime.route_with_principal(cmd.ResumeMonitoring, lambda app: app.groups.resume)

    # --- monitoring, one-click, status ----------------------------------------------------------

    runtime.route_with_principal(cmd.StartMonitoring, lambda app: app.monitoring.start)

    @runtime.command(cmd.StopMonitoring)
    async def stop_monitoring(req: Empty, ctx: Ctx) -> cmd.MonitoringStatus:
        return await ctx.app.monitoring.stop(ctx.principal)

    runtime.route_with_principal(cmd.OneClickStart, lambda app: app.oneclick.start)
    runtime.route_with_principal(cmd.OneClickStop, lambda app: app.oneclick.stop)
    runtime.route(cmd.GetSystemStatus, lambda app: app.system.status)

    # --- trigger rules --------------------------------------------------------------------------

    runtime.route_with_principal(cmd.SaveTriggerRule, lambda app: app.triggers.save)
    runtime.route_with_principal(cmd.DeleteTriggerRule, lambda app: app.triggers.delete)
    runtime.route_with_principal(cmd.ToggleTriggerRule, lambda app: app.triggers.toggle)
    runtime.route(cmd.GetTriggerRules, lambda app: app.triggers.list)
    runtime.route(cmd.TestTriggerRule, lambda app: app.triggers.test)

    # --- campaigns ------------------------------------------------------------------------------

    runtime.route_with_principal(cmd.AddCampaign, lambda app: app.campaigns.add)
    runtime.route_with_principal(cmd.RemoveCampaign, lambda app: app.campaigns.remove)
    runtime.route(cmd.GetCampaigns, lambda app: app.campaigns.list)
    runtime.route_with_principal(cmd.StartCampaign, lambda app: app.campaigns.start)
    runtime.route_with_principal(cmd.StopCampaign, lambda app: app.campaigns.stop)
    runtime.route(cmd.GetCampaignStats, lambda app: app.campaigns.stats)

    # --- inbound: tg-session's events of monitored chats ----------------------------------------

    # concurrent: the inbound path is exact under any interleaving (claims, conditional reservations)
    @runtime.on_event(MessageReceived, "automation_messages", max_workers=INBOUND_WORKERS)
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.automation.on_message(evt)

    @runtime.subscribe_events(MemberJoined, durable="automation_joins")
    async def on_join(evt: MemberJoined) -> None:
        await runtime.app.automation.on_join(evt)
