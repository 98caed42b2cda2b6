"""The 15 multi-role commands: thin handlers, one use case each; and the consumer of group and
private messages that runs and swarms react to."""

from __future__ import annotations

from tgm_contracts.base import Ack
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.events_session import MessageReceived

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    # --- roles, scripts, scenarios --------------------------------------------------------------

    @runtime.command(cmd.SaveRole)
    async def save_role(req: cmd.SaveRoleRequest, ctx: Ctx) -> cmd.RoleView:
        return await ctx.app.library.save_role(req, ctx.principal)

    @runtime.command(cmd.DeleteRole)
    async def delete_role(req: cmd.IdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.library.delete_role(req, ctx.principal)

    runtime.route(cmd.GetRoles, lambda app: app.library.roles)

    @runtime.command(cmd.SaveScript)
    async def save_script(req: cmd.SaveScriptRequest, ctx: Ctx) -> cmd.ScriptView:
        return await ctx.app.library.save_script(req, ctx.principal)

    @runtime.command(cmd.DeleteScript)
    async def delete_script(req: cmd.IdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.library.delete_script(req, ctx.principal)

    runtime.route(cmd.GetScripts, lambda app: app.library.scripts)

    @runtime.command(cmd.SaveScenario)
    async def save_scenario(req: cmd.SaveScenarioRequest, ctx: Ctx) -> cmd.ScenarioView:
        return await ctx.app.library.save_scenario(req, ctx.principal)

    @runtime.command(cmd.DeleteScenario)
    async def delete_scenario(req: cmd.IdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.library.delete_scenario(req, ctx.principal)

    runtime.route(cmd.GetScenarios, lambda app: app.library.scenarios)

    # --- collaboration runs ---------------------------------------------------------------------

    @runtime.command(cmd.StartCollaboration)
    async def start_collaboration(req: cmd.StartCollaborationRequest, ctx: Ctx) -> cmd.CollaborationRunView:
        return await ctx.app.collaboration.start(req, ctx.principal)

    @runtime.command(cmd.StopCollaboration)
    async def stop_collaboration(req: cmd.StopCollaborationRequest, ctx: Ctx) -> cmd.CollaborationRunView:
        return await ctx.app.collaboration.stop(req, ctx.principal)

    runtime.route(cmd.GetCollaborationStatus, lambda app: app.collaboration.status)

    # --- swarms ---------------------------------------------------------------------------------

    @runtime.command(cmd.StartSwarm)
    async def start_swarm(req: cmd.SwarmSpec, ctx: Ctx) -> cmd.SwarmView:
        return await ctx.app.swarms.start(req, ctx.principal)

    @runtime.command(cmd.StopSwarm)
    async def stop_swarm(req: cmd.StopSwarmRequest, ctx: Ctx) -> cmd.SwarmView:
        return await ctx.app.swarms.stop(req, ctx.principal)

    runtime.route(cmd.GetSwarmStatus, lambda app: app.swarms.status)

    # --- what runs and swarms react to ----------------------------------------------------------

    @runtime.on_event(MessageReceived, "collaboration_messages")
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.collaboration.on_message(evt)

    @runtime.on_event(MessageReceived, "swarm_messages")
    async def on_swarm_message(evt: MessageReceived) -> None:
        await runtime.app.swarms.on_message(evt)
