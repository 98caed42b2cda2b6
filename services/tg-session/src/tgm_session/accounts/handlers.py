"""The account commands (fleet records, bulk changes, groups, tags, personas, live profile and status) and the pool-wide RPCs `pick-accounts` and `describe-accounts`."""

from __future__ import annotations

from tgm_contracts.base import Empty
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.rpc_session import (
    DescribeAccounts,
    PickAccounts,
)

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    runtime.route(accounts_cmd.AddAccount, lambda app: app.accounts.add)
    runtime.route(accounts_cmd.GetAccounts, lambda app: app.accounts.list)
    runtime.route(accounts_cmd.UpdateAccount, lambda app: app.accounts.update)
    runtime.route(accounts_cmd.UpdateAccountData, lambda app: app.accounts.update_data)
    runtime.route(accounts_cmd.SyncAccountInfo, lambda app: app.accounts.sync_info)
    runtime.route(accounts_cmd.RemoveAccount, lambda app: app.accounts.remove)
    runtime.route(accounts_cmd.BulkDeleteAccounts, lambda app: app.accounts.bulk_delete)
    runtime.route(accounts_cmd.BatchUpdateAccounts, lambda app: app.accounts.batch_update)
    runtime.route(accounts_cmd.BulkAssignGroup, lambda app: app.accounts.bulk_assign_group)
    runtime.route(accounts_cmd.BulkAssignRole, lambda app: app.accounts.bulk_assign_role)
    runtime.route(accounts_cmd.CheckAccountStatus, lambda app: app.accounts.check_status)

    @runtime.command(accounts_cmd.GetGroups)
    async def get_groups(req: Empty, ctx: Ctx) -> accounts_cmd.AccountGroupList:
        return await ctx.app.accounts.groups()

    runtime.route(accounts_cmd.SaveGroups, lambda app: app.accounts.save_groups)

    @runtime.command(accounts_cmd.GetTags)
    async def get_tags(req: Empty, ctx: Ctx) -> accounts_cmd.TagList:
        return await ctx.app.accounts.tags()

    runtime.route(accounts_cmd.SaveTags, lambda app: app.accounts.save_tags)

    @runtime.command(accounts_cmd.GetPersonas)
    async def get_personas(req: Empty, ctx: Ctx) -> accounts_cmd.PersonaList:
        return await ctx.app.accounts.personas()

    runtime.route(accounts_cmd.SavePersonas, lambda app: app.accounts.save_personas)
    runtime.route(PickAccounts, lambda app: app.accounts.pick)
    runtime.route(DescribeAccounts, lambda app: app.accounts.describe)
