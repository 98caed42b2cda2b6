"""The bot-account commands (add, list, remove, send) and rpcs (send-bot-reply,
answer-telegram-callback), each declared on the `BotFleet` method marked `@answers(...)`."""

from __future__ import annotations

from tgm_runtime.routes import route_use_case

from ..app import Runtime
from .service import BotFleet


def register(runtime: Runtime) -> None:
    route_use_case(runtime, BotFleet, lambda app: app.bots)
