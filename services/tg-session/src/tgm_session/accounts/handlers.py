"""The account commands (fleet records, bulk changes, groups, tags, personas, live profile and status) and the pool-wide RPCs `pick-accounts` and `describe-accounts`.

Each is declared once, on the use case method that answers it: `@answers(Cmd)` (`tgm_runtime.routes`).
"""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import Accounts


def register(runtime: Runtime) -> None:
    route_use_case(runtime, Accounts, lambda app: app.accounts)
