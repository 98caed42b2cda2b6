"""TG-Matrix test infrastructure: real nats-server (one, or a 3-node cluster) and database server
processes, child processes with readiness and clean shutdown, polling with deadlines, and pytest
fixtures.

The pytest fixtures live in `tgm_testing.fixtures` (a pytest plugin, loaded automatically).
"""

from . import procs
from .cluster import NatsCluster
from .procs import *  # noqa: F403 (procs.__all__ lists its public names)
from .servers import MongoServer, NatsServer, find_executable

__all__ = ["MongoServer", "NatsCluster", "NatsServer", "find_executable"]
__all__ += procs.__all__
