"""TG-Matrix embedded stack: nats-server, the database server, the services and the gateway as child
processes with data in one folder (`Stack`), kept running by a `Supervisor`; `tgm-stack up` on the
command line."""

from .stack import DEFAULT_MODULES, SERVICES, Child, Stack, StackError
from .supervisor import Supervisor

__all__ = ["DEFAULT_MODULES", "SERVICES", "Child", "Stack", "StackError", "Supervisor"]
