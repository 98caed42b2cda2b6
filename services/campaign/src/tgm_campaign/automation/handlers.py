"""The 30 automation commands, each declared once on the use case method that answers it
(`@answers(Cmd)`, `tgm_runtime.routes`); and the inbound consumers (group messages and member joins of
monitored chats, from tg-session's events)."""

from __future__ import annotations

from tgm_contracts.events_session import MemberJoined, MessageReceived
from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .campaign_service import CampaignService
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .monitoring_service import MonitoringService
from .oneclick_service import OneClickService
from .rule_service import TriggerRuleService
from .service import INBOUND_WORKERS
from .system_status import SystemStatusService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, KeywordSetService, lambda app: app.keyword_sets)
    route_use_case(runtime, GroupService, lambda app: app.groups)
    route_use_case(runtime, MonitoringService, lambda app: app.monitoring)
    route_use_case(runtime, OneClickService, lambda app: app.oneclick)
    route_use_case(runtime, SystemStatusService, lambda app: app.system)
    route_use_case(runtime, TriggerRuleService, lambda app: app.triggers)
    route_use_case(runtime, CampaignService, lambda app: app.campaigns)

    # --- inbound: tg-session's events of monitored chats ----------------------------------------

    # concurrent: the inbound path is exact under any interleaving (claims, conditional reservations)
    @runtime.on_event(MessageReceived, "automation_messages", max_workers=INBOUND_WORKERS)
    async def on_message(evt: MessageReceived) -> None:
        await runtime.app.automation.on_message(evt)

    @runtime.subscribe_events(MemberJoined, durable="automation_joins")
    async def on_join(evt: MemberJoined) -> None:
        await runtime.app.automation.on_join(evt)
