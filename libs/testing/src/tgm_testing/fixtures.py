"""pytest fixtures for real infrastructure.

Installed as a pytest plugin (entry point `tgm_testing.fixtures`), so every test in the workspace
can ask for these fixtures; `pytest_plugins = ["tgm_testing.fixtures"]` in a root conftest works
too (pytest then loads it once). The servers start only when a test asks for them.

- `nats_server` (module) / `mongo_server` (session): a nats-server with JetStream for each test
  module (see the fixture for why) and one secantusd for the session, on free ports with temporary
  data, stopped after them. `.url` / `.uri` give the addresses;
  `nats_url` / `mongo_uri` are shortcuts.
- `mongo_client` (session): a synchronous pymongo client for `mongo_server`.
- `fresh_db_name` (function): a database name unique to the test, dropped after it.
- `make_nats_server` / `make_mongo_server` (function): factories for private servers that a test
  may stop, kill or restart without disturbing other tests; all stopped after the test.
- `nats_cluster` (function): a private 3-node JetStream cluster on loopback (`tgm_testing.cluster`),
  started and with a meta leader; its nodes may be killed; all stopped after the test.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from .cluster import NatsCluster
from .servers import MongoServer, NatsServer, _ServerProcess

__all__ = ["unique_db_name"]

# pytest-xdist's workers (`make test` runs two) start with COLUMNS=80 and LINES=24 set, which a
# serial run does not have; the CLI's console fixes its width from COLUMNS when it is created, so a
# test asking for a wider table (COLUMNS in its own environment) got 80 columns. Tests see the
# environment a serial run sees.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)

ServerT = TypeVar("ServerT", bound=_ServerProcess)


def unique_db_name(hint: str = "test", prefix: str = "t_") -> str:
    """A valid, unique MongoDB database name built from `hint` (e.g. a test's name)."""
    slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40] or "test"
    return f"{prefix}{slug}_{uuid.uuid4().hex[:8]}"


def _running(server: ServerT) -> Iterator[ServerT]:
    """Start `server`, hand it to the fixture's user, and stop it however the user ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One per test module (it starts in ~60 ms). Durable consumers read the event stream from its
    start, so on a server shared with other files (pytest-xdist runs them on a worker in any order)
    a service's first consumer replayed every event those files had published: analytics' alerts
    mixed with other tests' and its counts came after a backlog of thousands (seen in CI)."""
    root = tmp_path_factory.mktemp("nats")
    yield from _running(NatsServer(root / "store", log_path=root / "nats-server.log"))


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    root = tmp_path_factory.mktemp("mongo")
    yield from _running(MongoServer(root / "db", log_path=root / "secantusd.log"))


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def mongo_uri(mongo_server: MongoServer) -> str:
    return mongo_server.uri


@pytest.fixture(scope="session")
def mongo_client(mongo_server: MongoServer) -> Iterator[Any]:
    client = mongo_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fresh_db_name(request: pytest.FixtureRequest, mongo_client: Any) -> Iterator[str]:
    """A database name no other test uses; the database is dropped after the test."""
    name = unique_db_name(request.node.name)
    yield name
    try:
        mongo_client.drop_database(name)
    except Exception as exc:  # the test may have stopped the server on purpose; do not fail it
        warnings.warn(f"could not drop test database {name}: {exc}", stacklevel=1)


def _private_servers(
    tmp_path_factory: pytest.TempPathFactory,
    server_class: Callable[..., ServerT],
    *,
    folder: str,
    data_arg: str,
    data_dir: str,
    log_name: str,
) -> Iterator[Callable[..., ServerT]]:
    """The factory behind `make_nats_server` / `make_mongo_server`: each server gets a temporary
    folder for its data (unless `data_arg` is given) and its log; all are stopped after the test."""
    started: list[ServerT] = []

    def make(**kwargs: Any) -> ServerT:
        root = tmp_path_factory.mktemp(folder)
        kwargs.setdefault("log_path", root / log_name)
        server = server_class(kwargs.pop(data_arg, root / data_dir), **kwargs)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NatsServer]]:
    """Factory: `make_nats_server(**kwargs)` starts a private NatsServer (kwargs as NatsServer)."""
    yield from _private_servers(
        tmp_path_factory,
        NatsServer,
        folder="nats",
        data_arg="store_dir",
        data_dir="store",
        log_name="nats-server.log",
    )


@pytest.fixture
def make_mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MongoServer]]:
    """Factory: `make_mongo_server(**kwargs)` starts a private MongoServer (kwargs as MongoServer)."""
    yield from _private_servers(
        tmp_path_factory,
        MongoServer,
        folder="mongo",
        data_arg="storage_dir",
        data_dir="db",
        log_name="secantusd.log",
    )


@pytest.fixture
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nats-server nodes with JetStream in one cluster, ready (a meta leader that knows all the
    peers); `.url` is every node's URL comma-separated, `.servers` the nodes to kill or restart."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
