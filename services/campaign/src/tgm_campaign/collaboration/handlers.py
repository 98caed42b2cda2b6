"""The 15 multi-role commands (roles, scripts, scenarios; runs; swarms), each declared once on the use
case method that answers it (`@answers(Cmd)`, `tgm_runtime.routes`); and the consumers of group and
private messages and lead stage changes that runs and swarms react to."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .library import RoleLibrary
from .service import CollaborationService
from .swarm import SwarmService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, RoleLibrary, lambda app: app.library)
    route_use_case(runtime, CollaborationService, lambda app: app.collaboration)
    route_use_case(runtime, SwarmService, lambda app: app.swarms)
