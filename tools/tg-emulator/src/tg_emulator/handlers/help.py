"""help.*: configuration the client asks for at connect time."""

from __future__ import annotations

from telethon.tl import functions, types

from ..world.render import ts
from . import Ctx, handler


@handler(functions.help.GetConfigRequest, auth=False)
def get_config(ctx: Ctx, req) -> types.Config:
    world = ctx.world
    now = world.now()
    server = ctx.conn.server
    return types.Config(
        date=ts(now),
        expires=ts(now + 3600),
        test_mode=False,
        this_dc=2,
        dc_options=[types.DcOption(id=2, ip_address=server.host, port=server.port, this_port_only=True)],
        dc_txt_domain_name="emulator.invalid",
        chat_size_max=world.limits.chat_size_max,
        megagroup_size_max=world.limits.megagroup_size_max,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=world.limits.message_length_max,
        webfile_dc_id=2,
    )


@handler(functions.help.GetNearestDcRequest, auth=False)
def get_nearest_dc(ctx: Ctx, req) -> types.NearestDc:
    return types.NearestDc(country="ZZ", this_dc=2, nearest_dc=2)
