"""The tailchat use cases, as handlers see them: `ctx.app` is a `TailchatApp` (built by bootstrap.py at
every start, once the database is there)."""

from __future__ import annotations

from dataclasses import dataclass

from tgm_runtime import ServiceRuntime

from .apps.service import AppService
from .inbound.service import Callbacks
from .messages.service import MessageService


@dataclass(frozen=True)
class TailchatApp:
    #: register/get/remove/check apps, bot info, commands, callback tokens.
    apps: AppService
    #: send/edit/delete messages and answer button presses.
    messages: MessageService
    #: callbacks from Tailchat (via the gateway) as channel-neutral events.
    inbound: Callbacks


Runtime = ServiceRuntime[TailchatApp]
