"""The inbound callbacks the gateway hands over (`receive-tailchat-callback`), declared on the
`Callbacks` method that answers it (`@answers`)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import Callbacks


def register(runtime: Runtime) -> None:
    route_use_case(runtime, Callbacks, lambda app: app.inbound)
