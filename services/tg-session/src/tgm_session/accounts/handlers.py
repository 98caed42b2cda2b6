"""The account commands (fleet records, bulk changes, groups, tags, personas, live profile and status) and the pool-wide RPCs `pick-accounts` and `describe-accounts`."""

from __future__ import annotations

from tgm_contracts.base import Ack, Empty
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.models.session import AccountSelector, AccountView, BulkResult
from tgm_contracts.rpc_session import (
    AccountBriefs,
    DescribeAccounts,
    DescribeAccountsRequest,
    PickAccounts,
    PickAccountsRequest,
    PickedAccounts,
)

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(accounts_cmd.AddAccount)
    async def add_account(req: accounts_cmd.AddAccountRequest, ctx: Ctx) -> AccountView:
        return await ctx.app.accounts.add(req)

    @runtime.command(accounts_cmd.GetAccounts)
    async def get_accounts(req: accounts_cmd.GetAccountsRequest, ctx: Ctx) -> accounts_cmd.AccountPage:
        return await ctx.app.accounts.list(req)

    @runtime.command(accounts_cmd.UpdateAccount)
    async def update_account(req: accounts_cmd.UpdateAccountRequest, ctx: Ctx) -> AccountView:
        return await ctx.app.accounts.update(req)

    @runtime.command(accounts_cmd.UpdateAccountData)
    async def update_account_data(req: accounts_cmd.UpdateAccountDataRequest, ctx: Ctx) -> AccountView:
        return await ctx.app.accounts.update_data(req)

    @runtime.command(accounts_cmd.SyncAccountInfo)
    async def sync_account_info(req: AccountSelector, ctx: Ctx) -> AccountView:
        return await ctx.app.accounts.sync_info(req)

    @runtime.command(accounts_cmd.RemoveAccount)
    async def remove_account(req: accounts_cmd.RemoveAccountRequest, ctx: Ctx) -> Ack:
        return await ctx.app.accounts.remove(req)

    @runtime.command(accounts_cmd.BulkDeleteAccounts)
    async def bulk_delete_accounts(req: accounts_cmd.BulkDeleteAccountsRequest, ctx: Ctx) -> BulkResult:
        return await ctx.app.accounts.bulk_delete(req)

    @runtime.command(accounts_cmd.BatchUpdateAccounts)
    async def batch_update_accounts(req: accounts_cmd.BatchUpdateAccountsRequest, ctx: Ctx) -> BulkResult:
        return await ctx.app.accounts.batch_update(req)

    @runtime.command(accounts_cmd.BulkAssignGroup)
    async def bulk_assign_group(req: accounts_cmd.BulkAssignGroupRequest, ctx: Ctx) -> BulkResult:
        return await ctx.app.accounts.bulk_assign_group(req)

    @runtime.command(accounts_cmd.BulkAssignRole)
    async def bulk_assign_role(req: accounts_cmd.BulkAssignRoleRequest, ctx: Ctx) -> BulkResult:
        return await ctx.app.accounts.bulk_assign_role(req)

    @runtime.command(accounts_cmd.CheckAccountStatus)
    async def check_account_status(req: AccountSelector, ctx: Ctx) -> accounts_cmd.AccountStatusReport:
        return await ctx.app.accounts.check_status(req)

    @runtime.command(accounts_cmd.GetGroups)
    async def get_groups(req: Empty, ctx: Ctx) -> accounts_cmd.AccountGroupList:
        return await ctx.app.accounts.groups()

    @runtime.command(accounts_cmd.SaveGroups)
    async def save_groups(req: accounts_cmd.SaveGroupsRequest, ctx: Ctx) -> accounts_cmd.AccountGroupList:
        return await ctx.app.accounts.save_groups(req)

    @runtime.command(accounts_cmd.GetTags)
    async def get_tags(req: Empty, ctx: Ctx) -> accounts_cmd.TagList:
        return await ctx.app.accounts.tags()

    @runtime.command(accounts_cmd.SaveTags)
    async def save_tags(req: accounts_cmd.SaveTagsRequest, ctx: Ctx) -> accounts_cmd.TagList:
        return await ctx.app.accounts.save_tags(req)

    @runtime.command(accounts_cmd.GetPersonas)
    async def get_personas(req: Empty, ctx: Ctx) -> accounts_cmd.PersonaList:
        return await ctx.app.accounts.personas()

    @runtime.command(accounts_cmd.SavePersonas)
    async def save_personas(req: accounts_cmd.SavePersonasRequest, ctx: Ctx) -> accounts_cmd.PersonaList:
        return await ctx.app.accounts.save_personas(req)

    @runtime.rpc(PickAccounts)
    async def pick_accounts(req: PickAccountsRequest, ctx: Ctx) -> PickedAccounts:
        return await ctx.app.accounts.pick(req)

    @runtime.rpc(DescribeAccounts)
    async def describe_accounts(req: DescribeAccountsRequest, ctx: Ctx) -> AccountBriefs:
        return await ctx.app.accounts.describe(req)
