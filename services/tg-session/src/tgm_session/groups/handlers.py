"""The group commands: join, leave, search, members, create, created groups.

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import GroupOps


def register(runtime: Runtime) -> None:
    route_use_case(runtime, GroupOps, lambda app: app.groups)
