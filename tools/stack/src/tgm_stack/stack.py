"""The embedded stack: nats-server, the database server, the services and the gateway as child
processes of one supervisor, with all data in one folder.

Layout of the data folder::

    <data>/master.key    32 random bytes, base64, mode 0600 (secrets at rest are encrypted with it)
    <data>/admin.key     the first admin API key, made here once (mode 0600) and given to the gateway as
                         TGM_ADMIN_KEY_FILE; delete it and restart to get a new admin key
    <data>/nats.passwords  one NATS password per service user (JSON, made here once, mode 0600): the
                         embedded nats-server runs with the users and permissions of tgm_contracts.bus
                         (deploy/k8s/nats/accounts.conf), and each child gets a NATS_URL with its own
    <data>/nats/         JetStream store (and nats-server.conf, 0600: it holds the passwords)
    <data>/db/           database files
    <data>/logs/<name>.log   one log per child    <data>/stack.lock   held while a stack runs
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tgm_contracts import bus
from tgm_testing.procs import ManagedProcess, ProcessError, free_port, port_is_open
from tgm_testing.servers import MongoServer, NatsServer

__all__ = ["DEFAULT_MODULES", "SERVICES", "Child", "Stack", "StackError", "redact_url"]

#: The services of the system, in start order.
SERVICES: tuple[str, ...] = ("tg-session", "campaign", "ai", "analytics", "tailchat")
GATEWAY = "gateway"
#: The Python module each child runs as `python -m <module>`.
DEFAULT_MODULES: dict[str, str] = {
    "tg-session": "tgm_session",
    "campaign": "tgm_campaign",
    "ai": "tgm_ai",
    "analytics": "tgm_analytics",
    "tailchat": "tgm_tailchat",
    GATEWAY: "tgm_gateway",
}
# Variables the stack sets per child; inherited values would make replicas collide.
_PER_CHILD = ("TGM_REPLICA_ID", "TGM_HEALTH_PORT", "TGM_GATEWAY_HOST", "TGM_GATEWAY_PORT")


class _AccountsNats(NatsServer):
    """The embedded nats-server with the accounts, users and permissions of tgm_contracts.bus (the same
    rendering as deploy/k8s/nats/accounts.conf) and the stack's passwords, in a config file only the
    owner may read."""

    def __init__(self, store_dir: Path, passwords: Mapping[str, str], **kwargs: object) -> None:
        self.passwords = dict(passwords)
        super().__init__(store_dir, **kwargs)  # type: ignore[arg-type]

    def _config_file(self) -> Path:
        path = self.data_dir / "nats-server.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"max_payload: {self.MAX_PAYLOAD}\n" + bus.render_accounts_conf(self.passwords))
        os.chmod(path, 0o600)
        return path

    def url_for(self, user: str) -> str:
        """The URL a user connects with (its password in it, as deploy/k8s does)."""
        return f"nats://{user}:{self.passwords[user]}@{self.host}:{self.port}"


class StackError(RuntimeError):
    """The stack could not do what was asked; the message says why (and quotes the failing log)."""


@dataclass
class Child:
    """One service replica or the gateway."""

    name: str  # "campaign-0", "gateway"
    service: str  # "campaign", "gateway"
    replica: int
    process: ManagedProcess
    ready_url: str

    @property
    def is_gateway(self) -> bool:
        return self.service == GATEWAY

    @property
    def base_url(self) -> str:
        """Where the child's HTTP side listens: a service's health port (TGM_HEALTH_PORT), the
        gateway's own address."""
        return self.ready_url.removesuffix("/readyz")

    @property
    def health_url(self) -> str:
        """`/healthz`: 200 while the process lives (`/readyz` beside it: NATS and the database reachable)."""
        return f"{self.base_url}/healthz"

    @property
    def metrics_url(self) -> str:
        """`/metrics`: the child's Prometheus metrics (deploy/METRICS.md)."""
        return f"{self.base_url}/metrics"


# Probes go straight to our own loopback ports, never through an HTTP proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with _direct.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def redact_url(url: str) -> str:
    """The URL without a password, fit for a console or a log (each of a cluster's comma-separated URLs)."""
    if "," in url:
        return ",".join(redact_url(u.strip()) for u in url.split(","))
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _loopback(host: str) -> str:
    """Where to reach a server bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class Stack:
    """A synchronous supervisor of the whole system on one machine (used by `tgm-stack up`, `make up`
    and the e2e tests).

    `nats_url` / `mongodb_uri` (or the env vars `NATS_URL` / `MONGODB_URI`) point the stack at
    existing servers instead of starting its own. `replicas` maps a service to its number of
    processes (default 1). `modules` overrides the Python module a child runs (tests use it to run a
    small stand-in). `gateway_port=0` picks a free port. `wait_for_services` also waits for every
    service replica's `/readyz`, not only the gateway's. `progress` receives one short line per
    step of `start` (for a console).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        gateway_host: str = "127.0.0.1",
        gateway_port: int = 8080,
        nats_url: str | None = None,
        mongodb_uri: str | None = None,
        services: Iterable[str] = SERVICES,
        replicas: Mapping[str, int] | None = None,
        extra_env: Mapping[str, str] | None = None,
        *,
        modules: Mapping[str, str] | None = None,
        python: str = sys.executable,
        ready_timeout: float = 90.0,
        grace: float = 10.0,
        wait_for_services: bool = True,
        nats_port: int | None = None,
        mongo_port: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.gateway_host = gateway_host
        if not 0 <= gateway_port <= 65535:
            raise ValueError(f"gateway_port must be 0..65535, got {gateway_port}")
        self.gateway_port = gateway_port or free_port(_loopback(gateway_host))
        self.modules = {**DEFAULT_MODULES, **(modules or {})}
        self.services = tuple(services)
        for svc in self.services:
            if svc == GATEWAY or svc not in self.modules:
                known = ", ".join(s for s in self.modules if s != GATEWAY)
                raise ValueError(f"unknown service {svc!r}; known: {known}")
        if len(set(self.services)) != len(self.services):
            raise ValueError(f"a service is listed twice in {self.services}")
        self.replicas = dict(replicas or {})
        for svc, n in self.replicas.items():
            if svc not in self.services:
                raise ValueError(
                    f"replicas given for {svc!r}, which is not among the services {self.services}"
                )
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"replicas of {svc!r} must be an integer >= 1, got {n!r}")
        self._nats_url_arg = nats_url
        self._mongodb_uri_arg = mongodb_uri
        self.extra_env = dict(extra_env or {})
        self.python = python
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.wait_for_services = wait_for_services
        self._nats_port = nats_port
        self._mongo_port = mongo_port
        self._progress = progress or (lambda _text: None)

        self.nats: _AccountsNats | None = None
        self.mongo: MongoServer | None = None
        self.nats_url: str | None = None
        self.mongodb_uri: str | None = None
        self.children: dict[str, Child] = {}
        self._lock_file: IO[str] | None = None
        self._started = False

    # ----------------------------------------------------------------- paths and facts

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def nats_passwords_file(self) -> Path:
        return self.data_dir / "nats.passwords"

    def nats_url_for(self, user: str) -> str:
        """The URL `user` (a service, or `sys`) connects with: on the embedded nats-server with its own
        password; an external server's URL as given (its operator's config applies)."""
        if self.nats is None:
            if self.nats_url is None:
                raise StackError("the stack is not started")
            return self.nats_url
        return self.nats.url_for(user)

    @property
    def admin_key(self) -> str:
        """The first admin API key (`admin.key`, which the gateway stores hashed at its start)."""
        try:
            key = self.admin_key_file.read_text().strip()
        except FileNotFoundError:
            raise StackError(
                f"{self.admin_key_file} does not exist: the stack writes it when it starts "
                "(a new one if it was deleted; the gateway then stores it as an admin key)"
            ) from None
        if not key:
            raise StackError(f"{self.admin_key_file} is empty")
        return key

    @property
    def gateway_url(self) -> str:
        return f"http://{_loopback(self.gateway_host)}:{self.gateway_port}"

    @property
    def running(self) -> bool:
        return self._started

    def child(self, service: str, replica: int = 0) -> Child:
        name = GATEWAY if service == GATEWAY else f"{service}-{replica}"
        try:
            return self.children[name]
        except KeyError:
            raise StackError(f"no child {name!r}; running: {', '.join(self.children) or 'none'}") from None

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    # ----------------------------------------------------------------- start

    def start(self) -> None:
        """Bring everything up and wait until the gateway (and every service) is ready.

        On failure everything already started is stopped again and `StackError` says what failed,
        with the tail of that child's log.
        """
        if self._started:
            raise StackError("the stack is already running")
        self._prepare_data_dir()
        self._take_lock()
        self._started = True
        try:
            self._check_gateway_port()
            self._start_infra()
            self._build_children()
            for child in self.children.values():
                child.process.start(wait=False)
            self._progress(f"started {', '.join(self.children)}; waiting until they are ready")
            self._await_ready(list(self.children.values()), self.ready_timeout)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, ProcessError):
                raise StackError(str(exc)) from exc
            raise

    def _prepare_data_dir(self) -> None:
        for path in (self.data_dir, self.data_dir / "nats", self.data_dir / "db", self.logs_dir):
            # Keys, the database and logs (which can quote the admin key) are for the owner only.
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ensure_master_key()
        self._ensure_admin_key()
        self._ensure_nats_passwords()

    def _ensure_master_key(self) -> None:
        path = self.master_key_file
        if path.exists():
            try:
                key = base64.b64decode(path.read_text().strip(), validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise StackError(f"{path} is not a base64-encoded 32-byte key; refusing to replace it")
            return
        text = base64.b64encode(os.urandom(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def _ensure_admin_key(self) -> None:
        """`admin.key` once: a key in the gateway's format `tgm_<8 hex id>_<secret>` (the secret without
        `_`, as tgm_gateway.keys.service.new_key makes it), 0600, never rewritten. The gateway reads it
        as TGM_ADMIN_KEY_FILE and stores its digest (an upsert on the id, so a restart adds nothing)."""
        path = self.admin_key_file
        if path.exists():
            return
        key = f"tgm_{secrets.token_hex(4)}_{secrets.token_urlsafe(32).replace('_', '-')}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")

    def _nats_passwords(self) -> dict[str, str]:
        try:
            data = json.loads(self.nats_passwords_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            raise StackError(
                f"{self.nats_passwords_file} is not JSON; delete it to get new passwords"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) and v.isalnum() for v in data.values()):
            raise StackError(
                f"{self.nats_passwords_file} is not a map of user to password (letters and digits)"
            )
        return data

    def _ensure_nats_passwords(self) -> None:
        """`nats.passwords` once: a random password per NATS user of tgm_contracts.bus (and `sys`), 0600;
        a user added since gets one, the others keep theirs."""
        have = self._nats_passwords()
        users = [u.name for u in bus.USERS] + [bus.SYS_USER]
        if all(u in have for u in users):
            return
        have.update({u: secrets.token_hex(24) for u in users if u not in have})
        path = self.nats_passwords_file
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(have, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)

    def _take_lock(self) -> None:
        lock = (self.data_dir / "stack.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise StackError(f"{self.data_dir} is in use by a running stack (pid {holder})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock_file = lock

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.truncate(0)
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _check_gateway_port(self) -> None:
        host = _loopback(self.gateway_host)
        if port_is_open(host, self.gateway_port):
            raise StackError(
                f"{host}:{self.gateway_port} is already in use (another stack or program?); "
                "choose another port"
            )

    def _start_infra(self) -> None:
        external_nats = self._nats_url_arg or os.environ.get("NATS_URL")
        if external_nats:
            self.nats_url = external_nats
            self._progress(f"using the NATS server at {redact_url(external_nats)}")
        else:
            if self.nats is None:
                self.nats = _AccountsNats(
                    self.data_dir / "nats",
                    self._nats_passwords(),
                    port=self._nats_port,
                    log_path=self.log_path("nats-server"),
                    grace=self.grace,
                )
            self.nats.start()
            self.nats_url = self.nats.url
            self._progress(f"nats-server ready on {self.nats_url} (store {self.nats.store_dir})")
        external_db = self._mongodb_uri_arg or os.environ.get("MONGODB_URI")
        if external_db:
            self.mongodb_uri = external_db
            self._progress(f"using the database server at {redact_url(external_db)}")
        else:
            if self.mongo is None:
                self.mongo = MongoServer(
                    self.data_dir / "db",
                    port=self._mongo_port,
                    log_path=self.log_path("secantusd"),
                    grace=self.grace,
                    name="secantusd",
                )
            self.mongo.start()
            self.mongodb_uri = self.mongo.uri
            self._progress(f"database ready on {self.mongodb_uri} (store {self.mongo.storage_dir})")

    def _base_env(self) -> dict[str, str]:
        assert self.nats_url and self.mongodb_uri
        env = {k: v for k, v in os.environ.items() if k not in _PER_CHILD}
        env.update(
            {
                "MONGODB_URI": self.mongodb_uri,
                "TGM_DATA_DIR": str(self.data_dir),
                "TGM_MASTER_KEY_FILE": str(self.master_key_file),
                "TGM_ADMIN_KEY_FILE": str(self.admin_key_file),
                # Logs reach the file as they happen, not when a buffer fills.
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _build_children(self) -> None:
        if self.children:
            return  # a restart of the whole stack reuses ports and names
        base = self._base_env()
        for svc in self.services:
            for n in range(self.replicas.get(svc, 1)):
                name = f"{svc}-{n}"
                health_port = free_port()
                env = {
                    **base,
                    "NATS_URL": self.nats_url_for(svc),
                    "TGM_REPLICA_ID": name,
                    "TGM_HEALTH_PORT": str(health_port),
                    **self.extra_env,
                }
                self.children[name] = Child(
                    name=name,
                    service=svc,
                    replica=n,
                    process=self._process(name, svc, env),
                    ready_url=f"http://127.0.0.1:{health_port}/readyz",
                )
        env = {
            **base,
            "NATS_URL": self.nats_url_for(GATEWAY),
            "TGM_REPLICA_ID": f"{GATEWAY}-0",
            "TGM_GATEWAY_HOST": self.gateway_host,
            "TGM_GATEWAY_PORT": str(self.gateway_port),
            **self.extra_env,
        }
        self.children[GATEWAY] = Child(
            name=GATEWAY,
            service=GATEWAY,
            replica=0,
            process=self._process(GATEWAY, GATEWAY, env),
            ready_url=f"{self.gateway_url}/readyz",
        )

    def _process(self, name: str, service: str, env: dict[str, str]) -> ManagedProcess:
        return ManagedProcess(
            [self.python, "-m", self.modules[service]],
            name=name,
            env=env,
            inherit_env=False,
            log_path=self.log_path(name),
            ready_timeout=self.ready_timeout,
            grace=self.grace,
        )

    def _await_ready(self, children: list[Child], timeout: float) -> None:
        pending = [c for c in children if c.is_gateway or self.wait_for_services]
        deadline = time.monotonic() + timeout
        while pending:
            for child in list(pending):
                rc = child.process.returncode
                if rc is not None:
                    raise StackError(
                        f"{child.name} exited with status {rc} while starting "
                        f"(log: {child.process.log_path})\n--- last lines ---\n"
                        f"{child.process.log_tail()}\n---"
                    )
                if _http_ok(child.ready_url):
                    pending.remove(child)
            if not pending:
                return
            if time.monotonic() >= deadline:
                names = ", ".join(c.name for c in pending)
                first = pending[0]
                raise StackError(
                    f"not ready within {timeout:g}s: {names} ({first.ready_url} never answered 200; "
                    f"log: {first.process.log_path})\n--- last lines of {first.name} ---\n"
                    f"{first.process.log_tail()}\n---"
                )
            time.sleep(0.1)

    # ----------------------------------------------------------------- control

    def wait_ready(self, service: str, replica: int = 0, timeout: float | None = None) -> None:
        """Wait until one child answers its `/readyz` with 200."""
        self._await_ready([self.child(service, replica)], self.ready_timeout if timeout is None else timeout)

    def kill(self, service: str, replica: int = 0) -> int | None:
        """SIGKILL one child (a crash, as far as the rest of the system can tell)."""
        return self.child(service, replica).process.kill()

    def restart(self, service: str, replica: int = 0, *, wait: bool = True) -> None:
        """Stop one child gracefully if it runs, start it again (same ports and environment) and, with
        `wait`, wait until it is ready."""
        child = self.child(service, replica)
        child.process.terminate()
        child.process.start(wait=False)
        if wait:
            self._await_ready([child], self.ready_timeout)

    def _embedded_nats(self) -> NatsServer:
        if self.nats is None:
            raise StackError(f"NATS is external ({self.nats_url}); the stack does not run it")
        return self.nats

    def stop_infra_nats(self) -> None:
        """Stop the embedded nats-server (gracefully); services lose their connection."""
        self._embedded_nats().stop()

    def start_infra_nats(self) -> None:
        """Start the embedded nats-server again on the same port with the same store."""
        self._embedded_nats().start()

    def stop_infra_db(self) -> None:
        if self.mongo is None:
            raise StackError(f"the database is external ({self.mongodb_uri}); the stack does not run it")
        self.mongo.stop()

    def start_infra_db(self) -> None:
        if self.mongo is None:
            raise StackError(f"the database is external ({self.mongodb_uri}); the stack does not run it")
        self.mongo.start()

    def stop(self) -> None:
        """Stop everything: the gateway first, then the services (SIGTERM together, SIGKILL whoever
        is still there after the grace period), then the database, then NATS. Idempotent."""
        gateway = self.children.get(GATEWAY)
        services = [c for c in self.children.values() if not c.is_gateway]
        if gateway is not None:
            gateway.process.terminate()
        for child in services:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in services:
            child.process.terminate(grace=max(0.1, deadline - time.monotonic()))
        if self.mongo is not None:
            self.mongo.stop()
        if self.nats is not None:
            self.nats.stop()
        self._release_lock()
        self._started = False

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Stack {self.data_dir} gateway={self.gateway_url} running={self._started}>"
