"""The proxy commands: test-proxy and IP binding (bind, unbind, get, all, verify, statistics)."""

from __future__ import annotations

from tgm_contracts.base import Ack, Empty, Page
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.models.session import AccountSelector, IpBindingView

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(accounts_cmd.TestProxy)
    async def test_proxy(req: accounts_cmd.ProxyTestRequest, ctx: Ctx) -> accounts_cmd.ProxyTestResult:
        return await ctx.app.proxies.test(req)

    @runtime.command(accounts_cmd.IpBind)
    async def ip_bind(req: accounts_cmd.IpBindRequest, ctx: Ctx) -> IpBindingView:
        return await ctx.app.proxies.bind(req)

    @runtime.command(accounts_cmd.IpUnbind)
    async def ip_unbind(req: accounts_cmd.IpUnbindRequest, ctx: Ctx) -> Ack:
        return await ctx.app.proxies.unbind(req)

    @runtime.command(accounts_cmd.IpGetBinding)
    async def ip_get_binding(req: AccountSelector, ctx: Ctx) -> accounts_cmd.IpBindingInfo:
        return await ctx.app.proxies.get_binding(req)

    @runtime.command(accounts_cmd.IpGetAllBindings)
    async def ip_get_all_bindings(req: accounts_cmd.IpGetAllBindingsRequest, ctx: Ctx) -> Page[IpBindingView]:
        return await ctx.app.proxies.all_bindings(req)

    @runtime.command(accounts_cmd.IpVerifyBinding)
    async def ip_verify_binding(req: AccountSelector, ctx: Ctx) -> accounts_cmd.IpVerification:
        return await ctx.app.proxies.verify(req)

    @runtime.command(accounts_cmd.IpGetStatistics)
    async def ip_get_statistics(req: Empty, ctx: Ctx) -> accounts_cmd.IpStatistics:
        return await ctx.app.proxies.statistics()
