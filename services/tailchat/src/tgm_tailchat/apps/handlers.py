"""The app commands (register, list, check, remove, bot info, commands, callback token), each declared
on the `AppService` method that answers it (`@answers`)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import AppService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, AppService, lambda app: app.apps)
