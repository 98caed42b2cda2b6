"""The 30 automation commands, each declared once on the use case method that answers it
(`@answers(Cmd)`, `tgm_runtime.routes`); and the inbound consumers (group messages and member joins of
monitored chats, from tg-session's events)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .campaign_service import CampaignService
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .monitoring_service import MonitoringService
from .oneclick_service import OneClickService
from .rule_service import TriggerRuleService
from .service import AutomationService
from .system_status import SystemStatusService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, KeywordSetService, lambda app: app.keyword_sets)
    route_use_case(runtime, GroupService, lambda app: app.groups)
    route_use_case(runtime, MonitoringService, lambda app: app.monitoring)
    route_use_case(runtime, OneClickService, lambda app: app.oneclick)
    route_use_case(runtime, SystemStatusService, lambda app: app.system)
    route_use_case(runtime, TriggerRuleService, lambda app: app.triggers)
    route_use_case(runtime, CampaignService, lambda app: app.campaigns)

    # inbound: tg-session's events of monitored chats (group messages, member joins)
    route_use_case(runtime, AutomationService, lambda app: app.automation)
