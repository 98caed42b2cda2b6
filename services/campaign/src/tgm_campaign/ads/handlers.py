"""The 9 ads commands: thin handlers, one use case each (those that change a campaign take who asks);
and the replies to the posts, from campaign's one `message-received` consumer."""

from __future__ import annotations

from tgm_contracts.commands import ads as cmd
from tgm_contracts.events_session import MessageReceived

from ..app import Runtime


def register(runtime: Runtime) -> None:
    runtime.route_with_principal(cmd.CreateAdCampaign, lambda app: app.ads.create)
    runtime.route_with_principal(cmd.UpdateAdCampaign, lambda app: app.ads.update)
    runtime.route_with_principal(cmd.DeleteAdCampaign, lambda app: app.ads.delete)
    runtime.route(cmd.GetAdCampaigns, lambda app: app.ads.list)
    runtime.route_with_principal(cmd.StartAdCampaign, lambda app: app.ads.start)
    runtime.route_with_principal(cmd.StopAdCampaign, lambda app: app.ads.stop)
    runtime.route(cmd.GetAdTemplates, lambda app: app.ads.templates)
    runtime.route(cmd.GetAdStats, lambda app: app.ads.stats)
    runtime.route(cmd.PreviewAd, lambda app: app.ads.preview)

    @runtime.on_event(MessageReceived, "ad_replies")
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.ads.on_message(evt)
