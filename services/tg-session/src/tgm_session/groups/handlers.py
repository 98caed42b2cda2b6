"""The group commands: join, leave, search, members, create, created groups."""

from __future__ import annotations

from tgm_contracts.base import Page
from tgm_contracts.commands import telegram_ops as telegram_cmd
from tgm_contracts.models.session import CreatedGroupView, GroupMemberView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(telegram_cmd.JoinGroup)
    async def join_group(req: telegram_cmd.JoinGroupRequest, ctx: Ctx) -> telegram_cmd.JoinGroupResult:
        return await ctx.app.groups.join(req)

    @runtime.command(telegram_cmd.LeaveGroup)
    async def leave_group(req: telegram_cmd.LeaveGroupRequest, ctx: Ctx) -> telegram_cmd.LeaveGroupResult:
        return await ctx.app.groups.leave(req)

    @runtime.command(telegram_cmd.SearchGroups)
    async def search_groups(
        req: telegram_cmd.SearchGroupsRequest, ctx: Ctx
    ) -> telegram_cmd.SearchGroupsResult:
        return await ctx.app.groups.search(req)

    @runtime.command(telegram_cmd.GetGroupMembers)
    async def get_group_members(req: telegram_cmd.GetGroupMembersRequest, ctx: Ctx) -> Page[GroupMemberView]:
        return await ctx.app.groups.members(req)

    @runtime.command(telegram_cmd.CreateGroup)
    async def create_group(req: telegram_cmd.CreateGroupRequest, ctx: Ctx) -> CreatedGroupView:
        return await ctx.app.groups.create(req)

    @runtime.command(telegram_cmd.GetCreatedGroups)
    async def get_created_groups(
        req: telegram_cmd.GetCreatedGroupsRequest, ctx: Ctx
    ) -> Page[CreatedGroupView]:
        return await ctx.app.groups.created(req)
