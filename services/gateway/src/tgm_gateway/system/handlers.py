"""The 11 system commands on the bus: each one thin, its use case in sections.py, service.py or
backups.py."""

from __future__ import annotations

from tgm_contracts.base import Empty
from tgm_contracts.commands import system as system_cmd
from tgm_runtime.routes import route_use_case

from ..app import Ctx, Runtime
from .backups import Backups


def register(runtime: Runtime) -> None:
    @runtime.command(system_cmd.GetSettings)
    async def get_settings(req: system_cmd.GetSettingsRequest, ctx: Ctx) -> system_cmd.SettingsDocument:
        return await ctx.app.sections.document(req.sections, ctx.request_id)

    @runtime.command(system_cmd.SaveSettings)
    async def save_settings(req: system_cmd.SaveSettingsRequest, ctx: Ctx) -> system_cmd.SettingsDocument:
        return await ctx.app.sections.save(req, ctx.principal, ctx.request_id)

    @runtime.command(system_cmd.ResetSettings)
    async def reset_settings(req: system_cmd.ResetSettingsRequest, ctx: Ctx) -> system_cmd.SettingsDocument:
        return await ctx.app.sections.reset(req, ctx.principal, ctx.request_id)

    @runtime.command(system_cmd.GetSystemInfo)
    async def get_system_info(req: Empty, ctx: Ctx) -> system_cmd.SystemInfo:
        return await ctx.app.fleet.system_info(ctx.request_id)

    @runtime.command(system_cmd.GetInitialState)
    async def get_initial_state(req: Empty, ctx: Ctx) -> system_cmd.InitialState:
        return await ctx.app.fleet.initial_state(ctx.role, ctx.request_id)

    @runtime.command(system_cmd.GracefulShutdown)
    async def graceful_shutdown(
        req: system_cmd.GracefulShutdownRequest, ctx: Ctx
    ) -> system_cmd.ShutdownResult:
        return await ctx.app.fleet.shutdown(req, ctx.request_id)

    @runtime.command(system_cmd.RunMigrations)
    async def run_migrations(req: Empty, ctx: Ctx) -> system_cmd.MigrationsReport:
        return await ctx.app.fleet.run_migrations(ctx.request_id)

    @runtime.command(system_cmd.GetMigrationStatus)
    async def get_migration_status(req: Empty, ctx: Ctx) -> system_cmd.MigrationsReport:
        return await ctx.app.fleet.migration_status(ctx.request_id)

    @runtime.command(system_cmd.BackupDatabase)
    async def backup_database(req: system_cmd.BackupDatabaseRequest, ctx: Ctx) -> system_cmd.BackupStatus:
        return await ctx.app.backups.backup(req, ctx.request_id)

    route_use_case(runtime, Backups, lambda app: app.backups)
