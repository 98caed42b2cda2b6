"""TG-Matrix contracts: commands, events, subjects and envelopes, declared once.

Imports Pydantic and nothing from FastStream, NATS or any service.
"""

from __future__ import annotations

from . import commands as _commands  # noqa: F401  (registers every command)
from . import events_ai as _events_ai  # noqa: F401
from . import events_analytics as _events_analytics  # noqa: F401
from . import events_campaign as _events_campaign  # noqa: F401
from . import events_channels as _events_channels  # noqa: F401
from . import events_session as _events_session  # noqa: F401
from . import events_system as _events_system  # noqa: F401
from . import rpc_bots as _rpc_bots  # noqa: F401
from . import rpc_channels as _rpc_channels  # noqa: F401
from . import rpc_session as _rpc_session  # noqa: F401
from . import subjects, telemetry
from .base import Ack, Confirmed, Empty, Page, PageRequest, Request, Response, WireModel
from .command import (
    ACCOUNT_RPCS,
    REGISTRY,
    RPCS,
    AccountRpc,
    Command,
    Rpc,
    invalid_payload_message,
    validation_details,
)
from .enums import BACKEND_SERVICES, HTTP_STATUS, Domain, ErrorCode, Role, Service
from .envelope import Headers
from .events import EVENTS, Event

__all__ = [
    "ACCOUNT_RPCS",
    "BACKEND_SERVICES",
    "EVENTS",
    "HTTP_STATUS",
    "REGISTRY",
    "RPCS",
    "AccountRpc",
    "Ack",
    "Command",
    "Confirmed",
    "Domain",
    "Empty",
    "ErrorCode",
    "Event",
    "Headers",
    "Page",
    "PageRequest",
    "Request",
    "Response",
    "Role",
    "Rpc",
    "Service",
    "WireModel",
    "invalid_payload_message",
    "subjects",
    "telemetry",
    "validation_details",
]
