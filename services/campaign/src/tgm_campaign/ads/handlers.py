"""The 9 ads commands: thin handlers, one use case each."""

from __future__ import annotations

from tgm_contracts.base import Ack
from tgm_contracts.commands import ads as cmd

from ..app import Ctx, Runtime


def register(runtime: Runtime) -> None:
    @runtime.command(cmd.CreateAdCampaign)
    async def create_ad_campaign(req: cmd.CreateAdCampaignRequest, ctx: Ctx) -> cmd.AdCampaignView:
        return await ctx.app.ads.create(req, ctx.principal)

    @runtime.command(cmd.UpdateAdCampaign)
    async def update_ad_campaign(req: cmd.UpdateAdCampaignRequest, ctx: Ctx) -> cmd.AdCampaignView:
        return await ctx.app.ads.update(req, ctx.principal)

    @runtime.command(cmd.DeleteAdCampaign)
    async def delete_ad_campaign(req: cmd.AdCampaignIdRequest, ctx: Ctx) -> Ack:
        return await ctx.app.ads.delete(req, ctx.principal)

    runtime.route(cmd.GetAdCampaigns, lambda app: app.ads.list)

    @runtime.command(cmd.StartAdCampaign)
    async def start_ad_campaign(req: cmd.AdCampaignIdRequest, ctx: Ctx) -> cmd.AdCampaignView:
        return await ctx.app.ads.start(req, ctx.principal)

    @runtime.command(cmd.StopAdCampaign)
    async def stop_ad_campaign(req: cmd.StopAdCampaignRequest, ctx: Ctx) -> cmd.AdCampaignView:
        return await ctx.app.ads.stop(req, ctx.principal)

    runtime.route(cmd.GetAdTemplates, lambda app: app.ads.templates)
    runtime.route(cmd.GetAdStats, lambda app: app.ads.stats)
    runtime.route(cmd.PreviewAd, lambda app: app.ads.preview)
