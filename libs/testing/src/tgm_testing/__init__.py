"""TG-Matrix test infrastructure: real nats-server and database server processes, child processes
with readiness and clean shutdown, polling with deadlines, and pytest fixtures.

The pytest fixtures live in `tgm_testing.fixtures` (a pytest plugin, loaded automatically).
"""

from .procs import (
    ManagedProcess,
    ProcessError,
    ProcessExitedError,
    ProcessNotReadyError,
    WaitTimeout,
    free_port,
    port_is_open,
    wait_for,
    wait_for_async,
    wait_for_port,
    wait_for_port_async,
)
from .servers import MongoServer, NatsServer, find_executable

__all__ = [
    "ManagedProcess",
    "MongoServer",
    "NatsServer",
    "ProcessError",
    "ProcessExitedError",
    "ProcessNotReadyError",
    "WaitTimeout",
    "find_executable",
    "free_port",
    "port_is_open",
    "wait_for",
    "wait_for_async",
    "wait_for_port",
    "wait_for_port_async",
]
