"""Wiring of the analytics service: the runtime, its migrations and (as they land) its command handlers.

Commands of the catalogue owned by this service that are not implemented yet are not subscribed, so
the gateway answers them with UNAVAILABLE rather than with a placeholder.
"""

from __future__ import annotations

from tgm_contracts import Service
from tgm_runtime import ServiceRuntime

from . import __version__
from .migrations import MIGRATIONS

runtime = ServiceRuntime(Service.ANALYTICS, __version__, migrations=MIGRATIONS)
