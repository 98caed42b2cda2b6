"""The member extraction commands: start, status, cancel, collected users, export.

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import Extractions


def register(runtime: Runtime) -> None:
    route_use_case(runtime, Extractions, lambda app: app.extractions)
