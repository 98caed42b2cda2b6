"""TG-Matrix service runtime shared by every service (not a domain library: no business rules here)."""

from .config import RuntimeSettings
from .errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from .migrations import Migration
from .runtime import CallContext, ServiceRuntime
from .secrets import SecretBox, mask

__all__ = [
    "CallContext",
    "Conflict",
    "DomainError",
    "Invalid",
    "Migration",
    "NotFound",
    "RuntimeSettings",
    "SecretBox",
    "ServiceRuntime",
    "Unavailable",
    "mask",
]
