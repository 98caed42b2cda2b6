"""The 14 contacts commands (leads, the funnel, tracked users, a user's timeline), each declared once on
the use case method that answers it (`@answers(Cmd)`, `tgm_runtime.routes`); and the CRM's durable
consumers (replies, tracked users' group messages, keyword matches and trigger runs)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .consumers import CrmConsumers
from .funnel import FunnelService
from .leads import LeadService
from .timeline import TimelineService
from .tracking import TrackingService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, LeadService, lambda app: app.leads)
    route_use_case(runtime, FunnelService, lambda app: app.funnel)
    route_use_case(runtime, TrackingService, lambda app: app.tracking)
    route_use_case(runtime, TimelineService, lambda app: app.timeline)

    # the CRM's consumers: replies, tracked users' group messages, keyword matches, trigger runs
    route_use_case(runtime, CrmConsumers, lambda app: app.crm_consumers)
