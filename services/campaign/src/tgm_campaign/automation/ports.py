"""What automation needs from outside campaign, as callables injected by `bootstrap.build()`:
a call to another service's command or RPC (tg-session, ai), best-effort event publishing, the
monitored-chats KV writer, and whether the joins consumer has caught up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from tgm_contracts import Command, Event, Rpc
from tgm_contracts.models.campaign import MonitoredChats

Call = Callable[[type[Rpc] | type[Command], BaseModel, float], Awaitable[Any]]
"""`await call(Cmd, request_model, timeout)` -> the parsed response model; raises DomainError
(UNAVAILABLE when nobody serves it, TIMEOUT past the deadline)."""

Emit = Callable[[Event], Awaitable[object]]
"""Best-effort publish (`runtime.emit`): never raises."""

PublishChats = Callable[[MonitoredChats], Awaitable[None]]
"""Write the monitored chats to the KV bucket tg-session watches (raises when NATS is away)."""

JoinsIdle = Callable[[], Awaitable[bool | None]]
"""Whether automation's `member-joined` consumer has recorded every join published so far
(`ServiceRuntime.consumer_idle("automation_joins")`); None when it cannot be told."""
