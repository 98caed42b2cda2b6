"""A JetStream cluster of nats-server processes on loopback, for tests of what survives a node's loss.

`NatsCluster(root, size=3)` makes `size` `NatsServer`s, each with its own client, route and monitor
port (all free ports), its own store folder and log under `root`, one cluster name and routes to the
others. `start()` starts them and waits until JetStream works: every running node names the same meta
leader and that leader knows all the peers (before that, creating a stream with 3 replicas is
refused with "no suitable peers for placement"). A node is an ordinary `NatsServer`: kill, stop or
start it on the same ports and store as any other.

Services connect with `url` (every node's URL, comma-separated, as NATS_URL takes a cluster) or
`urls`. `meta_leader()` and `stream_leader(stream)` read the nodes' monitoring endpoint (`/jsz`), so
a test can kill the node that leads what it cares about.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

from .procs import WaitTimeout, free_port
from .servers import NatsServer

__all__ = ["NatsCluster"]

# Straight to our loopback ports, never through an HTTP proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NatsCluster:
    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        size: int = 3,
        name: str = "tgm",
        host: str = "127.0.0.1",
        start_timeout: float = 20.0,
    ) -> None:
        if size < 1:
            raise ValueError(f"a cluster has at least one node, got size={size}")
        self.root = Path(root).absolute()
        self.name = name
        routes = [free_port(host) for _ in range(size)]
        self.servers: list[NatsServer] = []
        for i, route in enumerate(routes):
            others = ",".join(f"nats://{host}:{r}" for r in routes if r != route)
            cluster_args = ["--cluster_name", name, "--cluster", f"nats://{host}:{route}"]
            self.servers.append(
                NatsServer(
                    self.root / f"n{i}",
                    host=host,
                    monitor_port=free_port(host),
                    log_path=self.root / f"n{i}.log",
                    start_timeout=start_timeout,
                    name=f"nats-{name}-n{i}",
                    server_name=f"{name}-n{i}",
                    extra_args=[*cluster_args, "--routes", others] if others else cluster_args,
                )
            )

    # ----------------------------------------------------------------- addresses

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (what NATS_URL takes for a cluster)."""
        return ",".join(self.urls)

    @property
    def alive(self) -> list[NatsServer]:
        return [s for s in self.servers if s.alive]

    def server(self, server_name: str) -> NatsServer:
        """The node JetStream calls `server_name` (`<cluster name>-n<i>`)."""
        for s in self.servers:
            if s.server_name == server_name:
                return s
        raise KeyError(f"no node named {server_name!r} in {[s.server_name for s in self.servers]}")

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> None:
        """Start every node that is not running and wait until JetStream has a meta leader that knows
        all the peers; on failure every node is stopped again."""
        try:
            for s in self.servers:
                if not s.alive:
                    s.start()
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- JetStream's view

    def jsz(self, server: NatsServer, **query: str) -> dict[str, Any]:
        """The node's `/jsz` monitoring answer (raises OSError/ValueError when it does not answer)."""
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        with _direct.open(f"{server.monitor_url}/jsz{'?' + qs if qs else ''}", timeout=2) as resp:
            return dict(json.loads(resp.read()))

    def meta_leader(self) -> str | None:
        """The server name of the JetStream meta leader when every running node agrees on one."""
        leaders = set()
        for s in self.alive:
            try:
                leaders.add((self.jsz(s).get("meta_cluster") or {}).get("leader") or None)
            except (OSError, ValueError):
                return None
        return leaders.pop() if len(leaders) == 1 else None

    def _peers_known(self, leader: str) -> bool:
        try:
            meta = self.jsz(self.server(leader)).get("meta_cluster") or {}
        except (OSError, ValueError, KeyError):
            return False
        followers = [r for r in meta.get("replicas") or [] if r.get("current") and not r.get("offline")]
        return (
            int(meta.get("cluster_size") or 0) >= len(self.servers) and len(followers) >= len(self.alive) - 1
        )

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Wait until the running nodes agree on a meta leader that sees the others; its name."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.meta_leader()
            if leader is not None and self._peers_known(leader):
                return leader
            if time.monotonic() >= deadline:
                states = {s.server_name: self._meta_or_error(s) for s in self.servers}
                raise WaitTimeout(f"no JetStream meta leader within {timeout:g}s: {states}")
            time.sleep(0.1)

    def _meta_or_error(self, server: NatsServer) -> Any:
        if not server.alive:
            return "not running"
        try:
            return self.jsz(server).get("meta_cluster")
        except (OSError, ValueError) as exc:
            return repr(exc)

    def stream_leader(self, stream: str, account: str = "$G") -> str | None:
        """The server name of `stream`'s leader (a KV bucket's stream is `KV_<bucket>`), as the running
        nodes that hold a copy report it; None while there is none (an election)."""
        for s in self.alive:
            try:
                data = self.jsz(s, accounts="true", streams="true")
            except (OSError, ValueError):
                continue
            for acc in data.get("account_details") or []:
                if acc.get("name") != account and acc.get("id") != account:
                    continue
                for detail in acc.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        leader = (detail.get("cluster") or {}).get("leader")
                        if leader:
                            return str(leader)
        return None
