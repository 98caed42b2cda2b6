"""The 15 multi-role commands: thin handlers, one use case each; and the consumer of group and
private messages that runs and swarms react to."""

from __future__ import annotations

from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.events_campaign import LeadStageChanged
from tgm_contracts.events_session import MessageReceived

from ..app import Runtime


def register(runtime: Runtime) -> None:
    # --- roles, scripts, scenarios --------------------------------------------------------------

    runtime.route_with_principal(cmd.SaveRole, lambda app: app.library.save_role)
    runtime.route_with_principal(cmd.DeleteRole, lambda app: app.library.delete_role)
    runtime.route(cmd.GetRoles, lambda app: app.library.roles)
    runtime.route_with_principal(cmd.SaveScript, lambda app: app.library.save_script)
    runtime.route_with_principal(cmd.DeleteScript, lambda app: app.library.delete_script)
    runtime.route(cmd.GetScripts, lambda app: app.library.scripts)
    runtime.route_with_principal(cmd.SaveScenario, lambda app: app.library.save_scenario)
    runtime.route_with_principal(cmd.DeleteScenario, lambda app: app.library.delete_scenario)
    runtime.route(cmd.GetScenarios, lambda app: app.library.scenarios)

    # --- collaboration runs ---------------------------------------------------------------------

    runtime.route_with_principal(cmd.StartCollaboration, lambda app: app.collaboration.start)
    runtime.route_with_principal(cmd.StopCollaboration, lambda app: app.collaboration.stop)
    runtime.route(cmd.GetCollaborationStatus, lambda app: app.collaboration.status)

    # --- swarms ---------------------------------------------------------------------------------

    runtime.route_with_principal(cmd.StartSwarm, lambda app: app.swarms.start)
    runtime.route_with_principal(cmd.StopSwarm, lambda app: app.swarms.stop)
    runtime.route(cmd.GetSwarmStatus, lambda app: app.swarms.status)

    # --- what runs and swarms react to ----------------------------------------------------------

    @runtime.on_event(MessageReceived, "collaboration_messages")
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.collaboration.on_message(evt)

    @runtime.on_event(MessageReceived, "swarm_messages")
    async def on_swarm_message(evt: MessageReceived) -> None:
        await runtime.app.swarms.on_message(evt)

    @runtime.on_event(LeadStageChanged, "scenario_lead_stage")
    async def on_lead_stage(evt: LeadStageChanged) -> None:
        await runtime.app.collaboration.on_lead_stage(evt)
