"""The proxy commands: test-proxy and IP binding (bind, unbind, get, all, verify, statistics).

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import Proxies


def register(runtime: Runtime) -> None:
    route_use_case(runtime, Proxies, lambda app: app.proxies)
