"""The group commands: join, leave, search, members, create, created groups."""

from __future__ import annotations

from tgm_contracts.commands import telegram_ops as telegram_cmd

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route(telegram_cmd.JoinGroup, lambda app: app.groups.join)
    runtime.route(telegram_cmd.LeaveGroup, lambda app: app.groups.leave)
    runtime.route(telegram_cmd.SearchGroups, lambda app: app.groups.search)
    runtime.route(telegram_cmd.GetGroupMembers, lambda app: app.groups.members)
    runtime.route(telegram_cmd.CreateGroup, lambda app: app.groups.create)
    runtime.route(telegram_cmd.GetCreatedGroups, lambda app: app.groups.created)
