"""The proxy commands: test-proxy and IP binding (bind, unbind, get, all, verify, statistics)."""

from __future__ import annotations

from tgm_contracts.base import Empty
from tgm_contracts.commands import accounts as accounts_cmd

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    runtime.route(accounts_cmd.TestProxy, lambda app: app.proxies.test)
    runtime.route(accounts_cmd.IpBind, lambda app: app.proxies.bind)
    runtime.route(accounts_cmd.IpUnbind, lambda app: app.proxies.unbind)
    runtime.route(accounts_cmd.IpGetBinding, lambda app: app.proxies.get_binding)
    runtime.route(accounts_cmd.IpGetAllBindings, lambda app: app.proxies.all_bindings)
    runtime.route(accounts_cmd.IpVerifyBinding, lambda app: app.proxies.verify)

    @runtime.command(accounts_cmd.IpGetStatistics)
    async def ip_get_statistics(req: Empty, ctx: Ctx) -> accounts_cmd.IpStatistics:
        return await ctx.app.proxies.statistics()
