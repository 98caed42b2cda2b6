"""Child processes for tests and the embedded stack: free ports, polling with a deadline, and a
process that is started, checked for readiness, stopped gracefully and restarted.

Every child runs in its own session (process group): a Ctrl-C in the terminal reaches only the
supervisor, which then stops children in a deliberate order, and stopping a child also stops any
process it spawned. On Linux a child is also sent SIGTERM if the process that started it dies, so a
killed test run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

T = TypeVar("T")

__all__ = [
    "ManagedProcess",
    "ProcessError",
    "ProcessExitedError",
    "ProcessNotReadyError",
    "WaitTimeout",
    "free_port",
    "port_is_open",
    "wait_for",
    "wait_for_async",
    "wait_for_port",
    "wait_for_port_async",
]


# --------------------------------------------------------------------------- ports


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


#: Under pytest-xdist (`make test` runs two workers) each worker takes its ports from its own block
#: below the kernel's ephemeral range (32768-60999 on Linux), so two workers never pick the same
#: free port in the moment between one releasing it and its server binding it, and no outgoing
#: connection's ephemeral port takes one either.
WORKER_PORT_BASE, WORKER_PORT_BLOCK = 20000, 1500


def _worker_block() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return None
    start = WORKER_PORT_BASE + int(worker[2:]) * WORKER_PORT_BLOCK
    if start + WORKER_PORT_BLOCK > 32768:
        return None
    return range(start, start + WORKER_PORT_BLOCK)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now.

    The port is released before it is returned, so another program could still take it; ports
    handed out by this process are remembered and never handed out twice, which matters when a
    stack asks for several ports before starting anything on them. Under pytest-xdist the port
    comes from this worker's own block (`WORKER_PORT_BASE`).
    """
    block = _worker_block()
    if block is not None:
        with _handed_out_lock:
            for port in block:
                if port not in _handed_out and _bindable(host, port):
                    _handed_out.add(port)
                    return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _handed_out_lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return int(port)
    raise RuntimeError(f"could not find a free port on {host}")


def port_is_open(host: str, port: int, timeout: float = 0.25) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- waiting


class WaitTimeout(TimeoutError):
    """A condition did not become true before its deadline."""


class _Deadline:
    """One wait's bookkeeping, shared by `wait_for` and `wait_for_async`: the deadline, the last
    ignored error, and the `WaitTimeout` that says what was awaited."""

    def __init__(self, predicate: object, timeout: float, interval: float, message: str | None) -> None:
        if timeout < 0 or interval <= 0:
            raise ValueError("timeout must be >= 0 and interval > 0")
        self.predicate, self.timeout, self.interval, self.message = predicate, timeout, interval, message
        self.deadline = time.monotonic() + timeout
        self.last_exc: BaseException | None = None

    def pause(self) -> float:
        """How long to sleep before the next try; raises `WaitTimeout` once the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout()
        return min(self.interval, remaining)

    def _timeout(self) -> WaitTimeout:
        what = self.message or f"condition {getattr(self.predicate, '__name__', self.predicate)!r}"
        text = f"{what} not met within {self.timeout:g}s"
        if self.last_exc is not None:
            text += f" (last error: {type(self.last_exc).__name__}: {self.last_exc})"
        return WaitTimeout(text)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    message: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns a truthy value and return that value.

    Raises `WaitTimeout` after `timeout` seconds. Exceptions of the types in `ignore` count as "not
    yet" (the last one is quoted in the timeout message); any other exception propagates at once.
    """
    deadline = _Deadline(predicate, timeout, interval, message)
    while True:
        try:
            value = predicate()
        except ignore as exc:
            deadline.last_exc = exc
        else:
            if value:
                return value
        time.sleep(deadline.pause())


@overload
async def wait_for_async(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = ...,
    interval: float = ...,
    *,
    message: str | None = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...
@overload
async def wait_for_async(
    predicate: Callable[[], T],
    timeout: float = ...,
    interval: float = ...,
    *,
    message: str | None = ...,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...
async def wait_for_async(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    message: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """The async twin of `wait_for`; `predicate` may be a plain or an async callable."""
    deadline = _Deadline(predicate, timeout, interval, message)
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            deadline.last_exc = exc
        else:
            if value:
                return value
        await asyncio.sleep(deadline.pause())


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP connections on host:port."""
    wait_for(lambda: port_is_open(host, port), timeout, message=f"a listener on {host}:{port}")


async def wait_for_port_async(host: str, port: int, timeout: float = 10.0) -> None:
    async def is_open() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.25)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    await wait_for_async(is_open, timeout, message=f"a listener on {host}:{port}")


# --------------------------------------------------------------------------- processes


class ProcessError(RuntimeError):
    """A managed process could not be started or did not become ready; carries its log's tail."""

    def __init__(self, message: str, *, name: str, log_tail: str = "") -> None:
        self.name = name
        self.log_tail = log_tail
        full = message
        if log_tail.strip():
            full += f"\n--- last lines of the log of {name} ---\n{log_tail.rstrip()}\n---"
        super().__init__(full)


class ProcessExitedError(ProcessError):
    """The process exited while we waited for it to become ready."""


class ProcessNotReadyError(ProcessError):
    """The process kept running but did not become ready before the deadline."""


_live: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - safety net at interpreter exit
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.terminate(grace=3)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ManagedProcess:
    """One child process: started with an environment, its output appended to a log file, waited on
    until ready, stopped with SIGTERM and then SIGKILL after a grace period, restartable.

    `ready` is a callable returning True once the child serves; exceptions it raises count as "not
    ready yet". Without it the child is ready as soon as it has been spawned.

    `die_with_parent` (Linux) makes the kernel SIGTERM the child when this process dies, so a
    killed test run or supervisor leaves nothing behind. It applies to children started from the
    main thread only (the kernel ties it to the starting thread, whose end would kill the child).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 30.0,
        grace: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        if not argv:
            raise ValueError("argv must name a program")
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = Path(cwd) if cwd is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.die_with_parent = die_with_parent
        self.starts = 0
        self.started_at: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- state

    @property
    def pid(self) -> int | None:
        """The pid of the current (or last) child, None if never started."""
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last child (negative: killed by that signal); None while it runs."""
        return self._popen.poll() if self._popen is not None else None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and return its status (TimeoutExpired after `timeout`)."""
        if self._popen is None:
            raise ProcessError("was never started", name=self.name)
        return self._popen.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log file ('' without a log)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
        return "\n".join(data.splitlines()[-lines:])

    # ----------------------------------------------------------------- lifecycle

    def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Spawn the child; with `wait`, block until it is ready (see `wait_ready`)."""
        with self._lock:
            if self.alive:
                raise ProcessError(f"{self.name} is already running (pid {self.pid})", name=self.name)
            env = {**os.environ, **self.env} if self.inherit_env else dict(self.env)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = self.log_path.open("ab")
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                log.write(f"--- {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
                log.flush()
            else:
                log = None
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    env=env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log if log is not None else subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_parent_death_signal() if self._die_with_parent_now() else None,
                )
            except OSError as exc:
                raise ProcessError(f"cannot start {self.name}: {exc}", name=self.name) from exc
            finally:
                # The child holds its own descriptor; ours is not needed any more.
                if log is not None:
                    log.close()
            self.starts += 1
            self.started_at = time.monotonic()
            _live.add(self)
        if wait:
            self.wait_ready(timeout)

    def _die_with_parent_now(self) -> bool:
        # Linux ties the parent-death signal to the starting *thread*: a child started from a
        # short-lived thread would be killed when that thread ends. Only the main thread is
        # known to live as long as the process.
        return self.die_with_parent and threading.current_thread() is threading.main_thread()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until `ready()` is true; raise `ProcessExitedError` if the child exits first and
        `ProcessNotReadyError` at the deadline, both with the tail of the log."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while True:
            rc = self.returncode
            if rc is not None:
                raise ProcessExitedError(
                    f"{self.name} exited with status {rc} before it was ready",
                    name=self.name,
                    log_tail=self.log_tail(),
                )
            if self.ready is None:
                return
            try:
                if self.ready():
                    return
            except Exception as exc:  # readiness probes fail with connection errors until ready
                last_exc = exc
            if time.monotonic() >= deadline:
                detail = f" (last probe error: {type(last_exc).__name__}: {last_exc})" if last_exc else ""
                raise ProcessNotReadyError(
                    f"{self.name} (pid {self.pid}) was not ready within {timeout:g}s{detail}",
                    name=self.name,
                    log_tail=self.log_tail(),
                )
            time.sleep(0.05)

    def _signal_group(self, sig: int) -> None:
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:  # pragma: no cover - the group id was reused by someone else's process
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def send_signal(self, sig: int) -> None:
        """Send `sig` to the child's process group if it runs (e.g. SIGTERM to many before waiting)."""
        with self._lock:
            if self.alive:
                self._signal_group(sig)

    def terminate(self, grace: float | None = None) -> int | None:
        """SIGTERM the child's process group, SIGKILL it after `grace` seconds; return the status.

        Returns None if it was never started; safe to call on a child that already exited.
        """
        grace = self.grace if grace is None else grace
        with self._lock:
            if self._popen is None:
                return None
            if self._popen.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    self._popen.wait(grace)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self._popen.wait()
            # Anything the child spawned and left behind in its group goes too.
            self._signal_group(signal.SIGKILL)
            _live.discard(self)
            return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the child's process group at once (a crash, as far as anyone can tell)."""
        with self._lock:
            if self._popen is None:
                return None
            self._signal_group(signal.SIGKILL)
            self._popen.wait()
            _live.discard(self)
            return self._popen.returncode

    def restart(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Stop (gracefully) if running, then start again with the same command and environment."""
        with self._lock:
            self.terminate()
            self.start(wait=wait, timeout=timeout)

    stop = terminate

    def __enter__(self) -> ManagedProcess:
        if not self.alive:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.returncode}" if self._popen else "not started"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"
