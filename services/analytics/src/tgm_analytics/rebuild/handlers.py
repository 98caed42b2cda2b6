"""`rebuild-analytics` and `get-analytics-rebuild` (service.py has the rebuild; bootstrap.py starts it
after a restore)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import Rebuild


def register(runtime: Runtime) -> None:
    route_use_case(runtime, Rebuild, lambda app: app.rebuild)
