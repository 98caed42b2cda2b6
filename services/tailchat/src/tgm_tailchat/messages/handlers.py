"""The message commands (send, edit, delete, answer-callback), each declared on the `MessageService`
method that answers it (`@answers`)."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import MessageService


def register(runtime: Runtime) -> None:
    route_use_case(runtime, MessageService, lambda app: app.messages)
